"""Search spaces: parameter types, conditions, YAML loading, the experiment a space is for."""

from hpo.space._params import Categorical, Condition, Float, Int, Param
from hpo.space._space import SearchSpace
from hpo.space._spec import ExperimentSpec
from hpo.space._yaml import available_spaces, load_space, space_from_yaml

__all__ = [
    "Categorical",
    "Condition",
    "ExperimentSpec",
    "Float",
    "Int",
    "Param",
    "SearchSpace",
    "available_spaces",
    "load_space",
    "space_from_yaml",
]
