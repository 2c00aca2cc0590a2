from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpo.exceptions import PrunerError
from hpo.pruners._base import BasePruner, check_bool, check_int, score
from hpo.trial import Direction, FrozenTrial

if TYPE_CHECKING:
    from hpo.pruners._hyperband import Hyperband

__all__ = ["ASHA", "rungs", "successive_halving_prune"]


def rungs(
    min_resource: int, reduction_factor: int, max_resource: int | None, up_to: int
) -> list[int]:
    """The rung steps ``min_resource * reduction_factor**k`` up to step ``up_to``: those whose
    survivors can train ``reduction_factor`` times longer within ``max_resource``
    (``rung * reduction_factor <= max_resource``), as in successive halving. A rung closer to
    the end would save little (a trial judged at epoch 4 of 5 has cost 80 % already) and
    would stop near-finished trials that could still be the best."""
    out = []
    r = min_resource
    while (max_resource is None or r * reduction_factor <= max_resource) and r <= up_to:
        out.append(r)
        r *= reduction_factor
    return out


def _value_at(t: FrozenTrial, rung: int) -> float | None:
    """The trial's value at its first reported step at or past ``rung`` (None: not reached)."""
    steps = [s for s in t.intermediate if s >= rung]
    return t.intermediate[min(steps)] if steps else None


def successive_halving_prune(
    trial: FrozenTrial,
    rivals: Sequence[FrozenTrial],
    *,
    min_resource: int,
    reduction_factor: int,
    max_resource: int | None,
    direction: Direction,
    pause: bool = False,
) -> bool:
    """Asynchronous successive halving: is ``trial`` stopped at a rung its last report crossed?

    A trial is judged at a rung once, by the report that first reaches it (the rung's value is
    the one reported at that step). With ``n`` trials at the rung — itself and every rival that
    has reported at or past the rung, in whatever state — it goes on when it ranks among the
    best ``ceil(n / reduction_factor)`` of them (ties go its way), and is stopped otherwise.
    Promotion is final: a later, better trial at the same rung does not stop it afterwards.

    With ``pause``, the rule is ASHA's promotion rule (Li et al. 2020, Algorithm 2): a trial
    goes on only when it ranks among the best ``floor(n / reduction_factor)``, so a rung
    promotes nobody until ``reduction_factor`` trials have reached it, and never more than one
    in ``reduction_factor`` of them. A trial stopped this way waits, paused, and is judged
    again at the same rung each time a worker is free: it goes on from its checkpoint once
    enough worse trials have reached the rung.
    """
    step = trial.last_step
    if step is None:
        return False
    before = [s for s in trial.intermediate if s < step]
    prev = max(before) if before else None
    mine = score(trial.intermediate[step], direction)
    for rung in rungs(min_resource, reduction_factor, max_resource, step):
        if prev is not None and prev >= rung:
            continue  # judged at this rung by an earlier report
        others = [v for v in (_value_at(t, rung) for t in rivals) if v is not None]
        n = len(others) + 1
        keep = n // reduction_factor if pause else -(-n // reduction_factor)
        better = sum(1 for v in others if score(v, direction) < mine)
        if better >= keep:
            return True
    return False


def check_resources(
    name: str, reduction_factor: Any, min_resource: Any, max_resource: Any
) -> tuple[int, int, int | None]:
    eta = check_int(
        name,
        "reduction_factor",
        reduction_factor,
        2,
        "each rung keeps the best 1/reduction_factor of its trials; 3 or 4 are usual",
    )
    r = check_int(name, "min_resource", min_resource, 1, "the step of the first rung")
    big: int | None = None
    if max_resource is not None:
        big = check_int(name, "max_resource", max_resource, 2, "the step a full trial reaches")
        if r >= big:
            raise PrunerError(
                f"pruner {name!r}: `min_resource` must be below `max_resource` (the rungs lie "
                f"between them), got min_resource={r}, max_resource={big}; lower min_resource "
                "or raise max_resource."
            )
        check_first_rung(name, r, eta, big, "max_resource")
    return eta, r, big


def check_pause(name: str, pause: Any) -> bool:
    return check_bool(name, "pause", pause, "pause trials at a rung instead of stopping them")


def resource_options(pruner: ASHA | Hyperband) -> dict[str, Any]:
    """The options of ASHA and Hyperband; ``pause`` only when on, so studies stored before it
    existed read back as they were."""
    out: dict[str, Any] = {
        "reduction_factor": pruner.reduction_factor,
        "min_resource": pruner.min_resource,
        "max_resource": pruner.max_resource,
    }
    if pruner.pauses:
        out["pause"] = True
    return out


def check_first_rung(name: str, r: int, eta: int, big: int, what: str) -> None:
    """The first rung must leave its survivors room to train ``eta`` times longer."""
    if r * eta > big:
        raise PrunerError(
            f"pruner {name!r}: no rung fits, since a trial that passes a rung goes on to "
            f"reduction_factor times its steps: min_resource × reduction_factor must be <= "
            f"{what}, got {r} × {eta} = {r * eta} > {big}; lower reduction_factor or "
            "min_resource, or train longer."
        )


def resolve_max(
    name: str, min_resource: int, eta: int, max_resource: int | None, budget: int | None
) -> int | None:
    """``max_resource`` defaulted to the epoch budget, and ``min_resource`` checked against it."""
    if budget is not None and min_resource >= budget:
        raise PrunerError(
            f"pruner {name!r}: `min_resource` must be below the epoch budget ({budget}) so that "
            f"a trial meets a rung before it ends, got min_resource={min_resource}; use a value "
            f"from 1 to {budget - 1}."
        )
    if max_resource is not None:
        return max_resource
    if budget is not None:
        check_first_rung(name, min_resource, eta, budget, f"the epoch budget ({budget})")
    return budget


class ASHA(BasePruner):
    """Asynchronous successive halving (Li et al. 2020, "A System for Massively Parallel
    Hyperparameter Tuning"; Ray Tune's ``ASHAScheduler``, Optuna's
    ``SuccessiveHalvingPruner``).

    Rungs lie at steps ``min_resource * reduction_factor**k`` that leave survivors room to
    train ``reduction_factor`` times longer (``rung * reduction_factor <= max_resource``): with
    the defaults, at epoch 1 of a 5-epoch budget, at epochs 1 and 4 of 16. When a trial
    reaches a rung, it is compared with every trial that reached that rung before it: it goes
    on if it ranks in the best ``ceil(n / reduction_factor)`` of the ``n`` trials there (itself
    included), else it is pruned. No trial ever waits for others, so workers never idle; about
    one trial in ``reduction_factor`` passes each rung, and only those train to the end.

    Args:
        reduction_factor: η, the inverse of the fraction kept at each rung (integer >= 2,
            default 4, as Ray Tune's and Optuna's ASHA; Hyperband's default is 3).
        min_resource: The step of the first rung (default 1: judged after one epoch).
        max_resource: The step a full trial reaches; rungs lie at or below
            ``max_resource / reduction_factor``. Default: the study's epoch budget
            (``budget: {epochs: N}`` or the top of a searched ``epochs`` parameter); with
            neither, rungs continue without end.
        pause: Pause instead of stop (default False): a trial that does not (yet) rank among
            the best ``floor(n / reduction_factor)`` at its rung keeps its checkpoint and waits;
            it goes on from there when later, worse trials lift it into that share (ASHA's
            promotion, as in Ray Tune's HyperBand scheduler). Fewer epochs than stopping, for
            the same best (``benchmarks/bench_pause.py``); needs checkpoints and an
            objective that resumes from them (the built-in training loop does).
    """

    name = "asha"

    def __init__(
        self,
        reduction_factor: int = 4,
        min_resource: int = 1,
        max_resource: int | None = None,
        pause: bool = False,
    ) -> None:
        self.reduction_factor, self.min_resource, self.max_resource = check_resources(
            self.name, reduction_factor, min_resource, max_resource
        )
        self.pauses = check_pause(self.name, pause)

    def options(self) -> dict[str, Any]:
        return resource_options(self)

    def for_budget(self, budget: int | None) -> ASHA:
        big = resolve_max(
            self.name, self.min_resource, self.reduction_factor, self.max_resource, budget
        )
        return ASHA(self.reduction_factor, self.min_resource, big, self.pauses)

    def describe(self) -> str:
        if self.max_resource is None:
            steps = rungs(self.min_resource, self.reduction_factor, None, self.min_resource * 9)
            where = ", ".join(map(str, steps)) + ", ... (no max_resource)"
        else:
            where = ", ".join(map(str, self.rung_steps())) + f" of {self.max_resource}"
        rule = (
            f"the best 1/{self.reduction_factor} at each rung go on, the others wait (paused)"
            if self.pauses
            else f"the best 1/{self.reduction_factor} at each rung go on"
        )
        return f"asha: rungs at steps {where}; {rule}"

    def rung_steps(self, up_to: int | None = None) -> list[int]:
        """The steps at which trials are judged (up to ``up_to`` when rungs have no end)."""
        if up_to is None:
            if self.max_resource is None:
                raise PrunerError("pruner 'asha' has no max_resource: pass up_to.")
            up_to = self.max_resource
        return rungs(self.min_resource, self.reduction_factor, self.max_resource, up_to)

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        seed: int,
    ) -> bool:
        return successive_halving_prune(
            trial,
            [t for t in trials if t.number != trial.number],
            min_resource=self.min_resource,
            reduction_factor=self.reduction_factor,
            max_resource=self.max_resource,
            direction=direction,
            pause=self.pauses,
        )
