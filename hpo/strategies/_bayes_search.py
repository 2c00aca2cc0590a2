"""Maximising ``bayes``'s acquisition: candidates, local searches, and no repeats.

Steps 5 and 6 of :mod:`hpo.strategies._bayes`: log expected improvement scored on uniform
candidates, then local searches (preconditioned L-BFGS-B over the float coordinates
alternating with sweeps over the discrete ones) from the best candidate, from candidates drawn
in proportion to their expected improvement and from the best point observed; the best
configuration no trial holds wins. A small all-discrete space is scored exactly instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.exceptions import SearchExhausted
from hpo.space import Float
from hpo.strategies._bayes_codec import _Codec, _Table

if TYPE_CHECKING:
    from hpo.strategies._gp import Acquisition

__all__ = ["local_search", "maximise"]

_MAX_SWEEPS = 4  # rounds of discrete sweeps + continuous search per local search


def maximise(
    codec: _Codec,
    acqf: Acquisition,
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    avoid: set[bytes],
    table: _Table | None,
    *,
    n_candidates: int,
    n_local: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """The params of highest acquisition that no trial holds yet, and their encoding."""
    if table is not None:
        # A small all-discrete space: every configuration no trial holds, scored exactly.
        free = np.array([k not in avoid for k in table.keys])
        idx = np.flatnonzero(free)
        if idx.size == 0:
            raise SearchExhausted("bayes: every configuration of the space is taken.")
        acq = acqf(table.x[idx])
        best = int(idx[int(np.argmax(acq))])
        return dict(table.params[best]), table.x[best]
    space = codec.space
    cands = codec.sample(n_candidates, rng)
    acq = acqf(cands)
    order = np.argsort(-acq)
    # Local searches start from the best candidate, from others drawn with probability
    # proportional to their expected improvement (diverse starts rather than one cluster;
    # the roulette of Optuna's GPSampler), and from the best point observed (fine
    # convergence near an incumbent needs a start there; one is enough: a second start
    # next to an incumbent mostly repeats the first, while a start drawn from the EI
    # roulette is a chance to find a different basin).
    top = acq[order[0]]
    p_sel = np.exp(acq - top) if math.isfinite(top) else np.zeros(len(acq))
    p_sel[~np.isfinite(p_sel)] = 0.0
    p_sel[order[0]] = 0.0
    n_more = min(n_local - 1, int(np.count_nonzero(p_sel > 0)))
    picks = [int(order[0])]
    if n_more > 0:
        more = rng.choice(len(cands), size=n_more, replace=False, p=p_sel / p_sel.sum())
        picks += [int(i) for i in more]
    starts = [cands[i] for i in picks]
    starts.append(x[int(np.argmin(y))])
    refined: list[tuple[float, dict[str, Any], np.ndarray]] = []
    for x0 in starts:
        params, xc = codec.canonical(local_search(codec, acqf, x0, rng), rng)
        refined.append((float(acqf(xc)[0]), params, xc))
    refined.sort(key=lambda t: -t[0])
    for _a, params, xc in refined:
        if codec.key(params) not in avoid:
            return params, xc
    # Every local optimum is a configuration some trial holds (a stepped, discrete
    # landscape near the incumbent): the best *new* configuration among their
    # one-parameter neighbours and the candidates wins.
    rows = [_neighbours(codec, xc, rng) for _a, _p, xc in refined[:3]]
    pool = np.concatenate([*rows, cands[order[: max(64, n_local)]]])
    acq_pool = acqf(pool)
    for k in np.argsort(-acq_pool):
        params, xc = codec.canonical(pool[k], rng)
        if codec.key(params) not in avoid:
            return params, xc
    for k in order:
        params = codec.decode(cands[k], rng)
        if codec.key(params) not in avoid:
            return params, codec.encode(params)
    params = space.sample(rng)
    return params, codec.encode(params)


def local_search(
    codec: _Codec, acqf: Acquisition, x0: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Maximise EI from ``x0``: L-BFGS-B over the continuous coordinates, then a sweep
    over each discrete one (integers and categoricals), repeated while the sweep moves.

    Integers are searched on their own grid rather than relaxed to reals and rounded:
    rounding a relaxed optimum moves the point off the optimum of every continuous
    coordinate that interacts with the integer (the best learning rate depends on the
    number of layers), which cost the mixed benchmark most of its final regret."""
    x = _lbfgs(codec, acqf, x0, rng)
    for _ in range(_MAX_SWEEPS):
        x, moved = _sweep(codec, acqf, x, rng)
        if not moved:
            break
        x = _lbfgs(codec, acqf, x, rng)
    return x


def _neighbours(codec: _Codec, x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every point that differs from ``x0`` in one active discrete parameter."""
    params = codec.decode(x0, rng)
    rows = [x0[None, :]]
    for i, name in enumerate(codec.names):
        units = codec.discrete_units(i, x0) if name in params else None
        if units is None:
            continue
        block = np.repeat(x0[None, :], len(units), axis=0)
        block[:, i] = units
        if codec.is_parent[i]:
            block = np.array([codec.canonical(r, rng)[1] for r in block])
        rows.append(block)
    return np.concatenate(rows)


def _sweep(
    codec: _Codec, acqf: Acquisition, x0: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """One pass over the discrete coordinates of ``x0`` (in space order), each set to the
    value of highest EI with the others fixed. Categoricals and integers with at most
    ``_EXHAUSTIVE`` values try every value; larger integers their neighbours up to 4
    steps away and ``_EXHAUSTIVE`` values spread over the range."""
    params, x = codec.canonical(x0, rng)
    current = float(acqf(x)[0])
    moved = False
    for i in range(codec.dim):
        units = codec.discrete_units(i, x) if codec.names[i] in params else None
        if units is None:
            continue  # continuous, or inactive here
        rows = np.repeat(x[None, :], len(units), axis=0)
        rows[:, i] = units
        if codec.is_parent[i]:  # other parameters may switch on or off
            rows = np.array([codec.canonical(r, rng)[1] for r in rows])
        a = acqf(rows)
        j = int(np.argmax(a))
        if a[j] > current and not np.array_equal(rows[j], x):
            x, current, moved = rows[j], float(a[j]), True
            if codec.is_parent[i]:
                params = codec.decode(x, rng)
    return x, moved


def _lbfgs(
    codec: _Codec, acqf: Acquisition, x0: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """L-BFGS-B on the active float coordinates of ``x0``; the rest stay fixed.

    Preconditioned: it works in ``z = x / lengthscale``, where the kernel (and so the
    acquisition) is equally curved in every direction, which makes L-BFGS converge in
    far fewer steps when length scales differ by orders of magnitude.
    """
    import scipy.optimize

    active = set(codec.space.active_names(codec.decode(x0, rng)))
    free = np.array(
        [
            i
            for i, (name, p) in enumerate(zip(codec.names, codec.params, strict=True))
            if isinstance(p, Float) and name in active
        ],
        dtype=int,
    )
    if free.size == 0:
        return x0
    ls = 1.0 / np.sqrt(acqf.gp.inv_sq_ls[free])  # length scales of the free coordinates
    xt = x0.copy()

    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        xt[free] = z * ls
        value, grad = acqf.value_and_grad(xt[None, :])
        return -float(value[0]), -grad[0, free] * ls

    res = scipy.optimize.minimize(
        f,
        x0[free] / ls,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0 / s) for s in ls],
        options={"maxiter": 200, "gtol": 1e-2},
    )
    out = x0.copy()
    if np.all(np.isfinite(res.x)):
        out[free] = np.clip(res.x * ls, 0.0, 1.0)
    return out
