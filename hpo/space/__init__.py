"""Search spaces: parameter types, conditions, YAML loading."""

from hpo.space._params import Categorical, Condition, Float, Int, Param
from hpo.space._space import SearchSpace
from hpo.space._yaml import available_spaces, load_space, space_from_yaml

__all__ = [
    "Categorical",
    "Condition",
    "Float",
    "Int",
    "Param",
    "SearchSpace",
    "available_spaces",
    "load_space",
    "space_from_yaml",
]
