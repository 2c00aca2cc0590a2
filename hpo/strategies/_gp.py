"""A small Gaussian-process regressor in NumPy/SciPy, for the ``bayes`` strategy.

Matérn-5/2 kernel with one length scale per input (ARD), a signal variance and a noise
variance, fitted by maximising the marginal likelihood plus a weak prior (MAP; Snoek et al.
2012 integrate the hyper-parameters out: averaging EI over 8 slice-sampled hyper-parameter
sets was measured no better than MAP on Hartmann-6 at 40 trials, at 8 times the cost; the
priors are in :func:`_log_prior`). Categorical inputs use the Hamming distance, numeric inputs
the squared distance, both scaled by their own inverse squared length scale.

Why NumPy with hand-written gradients rather than torch autograd: the matrices are at most a
few hundred rows, so a proposal is thousands of tiny operations, and autograd's bookkeeping
cost more than the arithmetic (the same fit and local searches took 4-10x longer in torch;
benchmarks/README.md). The gradients are the textbook ones (Rasmussen & Williams 2006, eq.
5.9 for the marginal likelihood) and are checked against finite differences in the tests.
Everything is float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.optimize
from scipy import special

__all__ = ["GP", "Acquisition", "fit_gp", "log_ei_and_grad", "log_expected_improvement"]

_MIN_NOISE = 1e-6
_JITTERS = (0.0, 1e-8, 1e-6, 1e-4, 1e-2)  # added to the diagonal, in turn, when Cholesky fails

# Bounds of the raw (log-space) hyper-parameters during the fit. Unbounded, a fit on many
# close points drove 1/l^2 past 1e300: the kernel overflowed to inf * 0 = NaN and the study
# died (issue 14). Length scales stay within [0.005, 200] box widths (categoricals: 1/l^2 in
# [e^-6, e^6]), the signal variance within [1e-3, 1e2], the noise within [1e-6, 1] (values are
# standardised, so a larger noise means "no signal" and a larger scale means nothing).
_LS_BOUNDS = (math.log(1.0 / 200.0**2), math.log(1.0 / 0.005**2))
_CAT_BOUNDS = (-6.0, 6.0)
_SCALE_BOUNDS = (math.log(1e-3), math.log(1e2))
_NOISE_BOUNDS = (math.log(1e-9), math.log(1.0))
_SQRT5 = math.sqrt(5.0)
_BLOCK = 1 << 22  # elements of a (points, trials, dims) block when scoring many points


def jittered_cholesky(k: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of ``k``, adding a growing jitter (relative to the mean of
    the diagonal) to the diagonal until the factorisation succeeds.

    Raises:
        numpy.linalg.LinAlgError: not positive definite even with the largest jitter, or not
            finite.
    """
    if not np.all(np.isfinite(k)):
        raise np.linalg.LinAlgError("the kernel matrix is not finite")
    level = max(float(np.mean(np.diagonal(k))), 1e-12)
    for jitter in _JITTERS:
        a = k if jitter == 0.0 else k + np.eye(len(k)) * (jitter * level)
        try:
            return scipy.linalg.cholesky(a, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("the kernel matrix is not positive definite, even with jitter")


def _matern52(r2: np.ndarray) -> np.ndarray:
    """Matérn-5/2 as a function of the squared (scaled) distance."""
    r = np.sqrt(r2)
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * np.exp(-_SQRT5 * r)


def _matern52_and_grad(r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matérn-5/2 and its derivative with respect to r2 (finite at 0, unlike a derivative
    taken through sqrt(r2))."""
    r = np.sqrt(r2)
    e = np.exp(-_SQRT5 * r)
    lin = 1.0 + _SQRT5 * r
    return (lin + (5.0 / 3.0) * r2) * e, -(5.0 / 6.0) * lin * e


def _dists(a: np.ndarray, b: np.ndarray, is_cat: np.ndarray) -> np.ndarray:
    """Per-dimension distances, shape (n1, n2, d): squared for numeric, 0/1 for categorical."""
    diff = a[:, None, :] - b[None, :, :]
    return np.where(is_cat, (diff != 0).astype(float), diff * diff)


def _scaled_dist(a: np.ndarray, b: np.ndarray, is_cat: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``_dists(a, b, is_cat) @ w`` without the (n1, n2, d) intermediate: the numeric part as
    ``|a|^2 + |b|^2 - 2 a.b`` on inputs scaled by ``sqrt(w)`` (one matrix product), the
    categorical part one input at a time. Several times faster for many points; the rounding
    it adds near a zero distance (~1e-16) moves the kernel by less than that."""
    num = ~is_cat
    sw = np.sqrt(w[num])
    an, bn = a[:, num] * sw, b[:, num] * sw
    out = (an * an).sum(1)[:, None] + (bn * bn).sum(1)[None, :] - 2.0 * (an @ bn.T)
    np.maximum(out, 0.0, out=out)
    for j in np.flatnonzero(is_cat):
        out += w[j] * (a[:, j, None] != b[None, :, j])
    return out


class GP:
    """A fitted GP: posterior mean and variance (and their gradients) at new points.

    Args:
        x: Inputs, (n, d), in the unit box (categoricals as their choice index).
        y: Standardised targets, (n,).
        is_cat: Which inputs are categorical, (d,).
        inv_sq_ls: One inverse squared length scale per input, (d,).
        scale: Signal variance.
        noise: Noise variance.
        n_exact: The last ``n_exact`` rows are fantasies, conditioned on without noise.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        is_cat: np.ndarray,
        inv_sq_ls: np.ndarray,
        scale: float,
        noise: float,
        n_exact: int = 0,
    ) -> None:
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.is_cat = np.asarray(is_cat, dtype=bool)
        self.inv_sq_ls = np.asarray(inv_sq_ls, dtype=float)
        self.scale = float(scale)
        self.noise = float(noise)
        self.n_exact = n_exact
        # Set by fit_gp: the fit's log marginal likelihood plus log hyper-prior (its evidence).
        self.log_posterior = -math.inf
        k = self.kernel(self.x, self.x)
        diag = np.full(len(self.x), self.noise + 1e-10)
        if n_exact:
            diag[-n_exact:] = 1e-8
        k[np.diag_indices_from(k)] += diag
        self._chol = jittered_cholesky(k)
        self._alpha = scipy.linalg.cho_solve((self._chol, True), self.y)
        if not (np.all(np.isfinite(self._alpha)) and np.all(np.isfinite(self._chol))):
            raise np.linalg.LinAlgError("the GP's linear system has no finite solution")

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.scale * _matern52(_scaled_dist(a, b, self.is_cat, self.inv_sq_ls))

    def correlation(self, x: np.ndarray, others: np.ndarray) -> float:
        """The kernel's largest correlation between ``x`` and any of ``others`` (1: same)."""
        return float(_matern52(_scaled_dist(x[None, :], others, self.is_cat, self.inv_sq_ls)).max())

    def condition_on(self, x_new: np.ndarray, y_new: np.ndarray) -> GP:
        """The same kernel conditioned on fantasised observations, taken as exact."""
        return GP(
            np.concatenate([self.x, x_new]),
            np.concatenate([self.y, y_new]),
            self.is_cat,
            self.inv_sq_ls,
            self.scale,
            self.noise,
            n_exact=self.n_exact + len(x_new),
        )

    def posterior(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (of the latent function) at ``xq`` (m, d)."""
        xq = np.atleast_2d(xq)
        rows = max(1, _BLOCK // max(1, len(self.x) * xq.shape[1]))
        means, variances = [], []
        for i in range(0, len(xq), rows):  # blocks: (m, n, d) distances for many points
            kxq = self.kernel(xq[i : i + rows], self.x)  # (m, n)
            v = scipy.linalg.solve_triangular(self._chol, kxq.T, lower=True)  # (n, m)
            means.append(kxq @ self._alpha)
            variances.append(np.maximum(self.scale - (v * v).sum(0), 1e-12))
        return np.concatenate(means), np.concatenate(variances)

    def posterior_grad(
        self, xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients with respect to the numeric inputs of ``xq``
        (m, d); a categorical input's gradient is 0 (it moves only in discrete steps)."""
        xq = np.atleast_2d(xq)
        diff = xq[:, None, :] - self.x[None, :, :]  # (m, n, d)
        d2 = np.where(self.is_cat, (diff != 0).astype(float), diff * diff)
        r2 = d2 @ self.inv_sq_ls
        m52, m52_grad = _matern52_and_grad(r2)
        kxq = self.scale * m52  # (m, n)
        # d k / d x_j = scale * M'(r2) * inv_sq_ls_j * 2 (x_j - x_ij), for numeric j.
        w_num = np.where(self.is_cat, 0.0, 2.0 * self.inv_sq_ls)
        dk = (self.scale * m52_grad)[..., None] * diff * w_num  # (m, n, d)
        mean = kxq @ self._alpha
        v = scipy.linalg.solve_triangular(self._chol, kxq.T, lower=True)  # (n, m)
        raw_var = self.scale - (v * v).sum(0)
        var = np.maximum(raw_var, 1e-12)
        kinv_k = scipy.linalg.solve_triangular(self._chol, v, lower=True, trans="T")  # (n, m)
        dmean = np.einsum("mnd,n->md", dk, self._alpha)
        dvar = -2.0 * np.einsum("mnd,nm->md", dk, kinv_k)
        dvar[raw_var < 1e-12] = 0.0  # clamped: flat there
        return mean, var, dmean, dvar


def _log_prior(
    raw: np.ndarray, is_cat: np.ndarray, deterministic: bool
) -> tuple[float, np.ndarray]:
    """Log prior density of the raw (log-space) hyper-parameters, and its gradient.

    Weak priors that keep the fit sane with few points (inputs live in the unit box, values
    are standardised):

    * a numeric input's length scale l ~ Gamma(3, 6): mode 1/3, mean 1/2 of the box, little
      mass above 1 (BoTorch's long-standing default). A flatter prior centred on l = 1
      (Optuna's) lets a handful of points fit one smooth trend across the whole box; EI then
      exploits the first bump it finds and rarely looks elsewhere. Shorter length scales keep
      the model's uncertainty up away from the data, so a multi-modal function gets explored,
      and a smooth one is still fitted well once points accumulate;
    * a categorical input (Hamming distance 0 or 1) keeps a prior centred on 1/l^2 = 1, a
      correlation of about 0.5 between two choices: short length scales would make every
      choice a separate function to learn from a few points;
    * a signal variance near that of the standardised data, a small noise.
    """
    d = len(is_cat)
    r_ls, r_scale, r_noise = raw[:d], raw[d], raw[d + 1]
    grad = np.zeros_like(raw)
    # numeric: Gamma(3, 6) on l = exp(-r/2): 2 log l - 6 l = -r - 6 exp(-r/2)
    half = np.exp(-0.5 * r_ls)
    numeric, d_numeric = -r_ls - 6.0 * half, -1.0 + 3.0 * half
    # categorical: -(0.1 / lambda + 0.1 lambda), lambda = exp(r)
    e_ls = np.exp(r_ls)
    categorical, d_categorical = -0.1 / e_ls - 0.1 * e_ls, 0.1 / e_ls - 0.1 * e_ls
    logp = float(np.where(is_cat, categorical, numeric).sum())
    grad[:d] = np.where(is_cat, d_categorical, d_numeric)
    # signal variance: Gamma(2, 1) on s = exp(r): r - exp(r)
    logp += r_scale - math.exp(r_scale)
    grad[d] = 1.0 - math.exp(r_scale)
    # noise: Gamma(1.1, 30) on _MIN_NOISE + exp(r) (or the fixed minimum)
    noise = _MIN_NOISE if deterministic else _MIN_NOISE + math.exp(r_noise)
    logp += 0.1 * math.log(noise) - 30.0 * noise
    if not deterministic:
        grad[d + 1] = (0.1 / noise - 30.0) * math.exp(r_noise)
    return logp, grad


def _neg_log_posterior(
    x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, deterministic: bool
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The fit's objective: minus (log marginal likelihood + log prior), and its gradient."""
    n, d = x.shape
    dists = _dists(x, x, is_cat).reshape(n * n, d)  # fixed during the fit
    diag = np.diag_indices(n)
    const = 0.5 * n * math.log(2 * math.pi)
    potri = scipy.linalg.get_lapack_funcs("potri", (x,))

    def f(raw: np.ndarray) -> tuple[float, np.ndarray]:
        inv_sq_ls = np.exp(raw[:d])
        scale = math.exp(raw[d])
        noise = _MIN_NOISE if deterministic else _MIN_NOISE + math.exp(raw[d + 1])
        m52, m52_grad = _matern52_and_grad((dists @ inv_sq_ls).reshape(n, n))
        k = scale * m52
        k[diag] += noise + 1e-10
        if not np.all(np.isfinite(k)):
            return 1e10, np.zeros_like(raw)
        try:
            chol = scipy.linalg.cholesky(k, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(raw)
        alpha = scipy.linalg.cho_solve((chol, True), y, check_finite=False)
        mll = -0.5 * float(y @ alpha) - float(np.log(np.diagonal(chol)).sum()) - const
        # d mll / d theta = 1/2 tr((alpha alpha^T - K^-1) dK/dtheta)  (R&W eq. 5.9)
        k_inv, info = potri(chol, lower=True)  # the lower triangle of K^-1
        if info != 0:
            return 1e10, np.zeros_like(raw)
        k_inv = np.tril(k_inv) + np.tril(k_inv, -1).T
        w = np.outer(alpha, alpha) - k_inv
        grad = np.zeros_like(raw)
        grad[:d] = 0.5 * inv_sq_ls * ((w * (scale * m52_grad)).reshape(-1) @ dists)
        grad[d] = 0.5 * float((w * m52).sum() * scale)
        if not deterministic:
            grad[d + 1] = 0.5 * math.exp(raw[d + 1]) * float(np.trace(w))
        logp, dlogp = _log_prior(raw, is_cat, deterministic)
        value, g = -(mll + logp), -(grad + dlogp)
        if not (math.isfinite(value) and np.all(np.isfinite(g))):
            return 1e10, np.zeros_like(raw)
        return value, g

    return f


def _bounds(is_cat: np.ndarray) -> list[tuple[float, float]]:
    """Bounds of the raw hyper-parameters: per-input, signal variance, noise."""
    return [_CAT_BOUNDS if c else _LS_BOUNDS for c in is_cat] + [_SCALE_BOUNDS, _NOISE_BOUNDS]


def _gp_from_raw(
    x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, raw: np.ndarray, deterministic: bool
) -> GP:
    d = x.shape[1]
    noise = _MIN_NOISE if deterministic else _MIN_NOISE + math.exp(raw[d + 1])
    return GP(x, y, is_cat, np.exp(raw[:d]), math.exp(raw[d]), noise)


def fit_gp(x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, *, deterministic: bool = False) -> GP:
    """Fit kernel hyper-parameters (MAP, within bounds) to ``x`` (n, d) and standardised ``y``.

    Robust by construction (issue 14): the hyper-parameters are bounded (see ``_LS_BOUNDS``),
    the objective reports a non-finite value as a wall (1e10) rather than NaN, the Cholesky
    factorisation adds jitter when it fails, and a fit that still ends somewhere unusable is
    refitted from the prior's centre and then from a noisier start. Only when every refit
    fails does it raise.

    Raises:
        numpy.linalg.LinAlgError: no usable model (the strategy then falls back to a seeded
            random proposal).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    is_cat = np.asarray(is_cat, dtype=bool)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise np.linalg.LinAlgError("the GP's data are not finite")
    d = x.shape[1]
    bounds = _bounds(is_cat)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    starts = []
    for noise in (1e-2, 1e-1):
        raw0 = np.zeros(d + 2)
        raw0[d + 1] = math.log(noise)
        starts.append(raw0)
    objective = _neg_log_posterior(x, y, is_cat, deterministic)
    last: Exception | None = None
    for raw0 in starts:
        try:
            with np.errstate(all="ignore"):
                res = scipy.optimize.minimize(
                    # gtol 1e-2: the fit only needs to be good, not converged to the last
                    # digit (as in Optuna's GPSampler); most of a proposal's time used to go
                    # into that last digit.
                    objective,
                    raw0,
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"maxiter": 200, "gtol": 1e-2},
                )
            raw = np.clip(res.x, lo, hi)
            if not np.all(np.isfinite(raw)) or not res.fun < 1e10:
                raise np.linalg.LinAlgError("the hyper-parameter fit did not converge")
            gp = _gp_from_raw(x, y, is_cat, raw, deterministic)
            gp.log_posterior = -float(res.fun)
            return gp
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as e:
            last = e
    # The prior's centre with a generous noise: a crude but well-conditioned model.
    try:
        return _gp_from_raw(x, y, is_cat, starts[-1], False)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as e:
        raise np.linalg.LinAlgError(f"no usable GP: {last or e}") from e


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log_h(z: np.ndarray) -> np.ndarray:
    """log(z Φ(z) + φ(z)), accurate for very negative z (where EI underflows)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    pos = z >= 0
    zp = z[pos]
    out[pos] = np.log(zp * special.ndtr(zp) + np.exp(-0.5 * zp * zp - _LOG_SQRT_2PI))
    zn = np.maximum(z[~pos], -1e4)
    log_phi = -0.5 * zn * zn - _LOG_SQRT_2PI
    # z Φ(z) + φ(z) = φ(z) (1 + z Φ(z)/φ(z)) and Φ(z)/φ(z) = sqrt(π/2) erfcx(-z/√2).
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = 1.0 + zn * math.sqrt(math.pi / 2) * special.erfcx(-zn / math.sqrt(2))
        # Once cancellation takes over: 1 + z m(z) = 1/z² - 3/z⁴ + O(z⁻⁶).
        asym = -2.0 * np.log(-zn) + np.log1p(-3.0 / (zn * zn))
        out[~pos] = log_phi + np.where(zn > -20, np.log(np.maximum(inner, 1e-300)), asym)
    return out


def log_expected_improvement(mean: np.ndarray, var: np.ndarray, best: float) -> np.ndarray:
    """log E[max(best - f, 0)] for f ~ N(mean, var) (we minimise)."""
    sigma = np.sqrt(var)
    return _log_h((best - mean) / sigma) + np.log(sigma)


def log_ei_and_grad(gp: GP, xq: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
    """log expected improvement at ``xq`` (m, d) and its gradient (m, d) with respect to the
    numeric inputs.

    With z = (best - mean) / sigma and h(z) = z Φ(z) + φ(z): d log EI / d mean = -Φ(z) /
    (sigma h(z)) and d log EI / d sigma = φ(z) / (sigma h(z)); both ratios are taken in log
    space, so they stay finite where EI itself underflows.
    """
    mean, var, dmean, dvar = gp.posterior_grad(xq)
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    log_h = _log_h(z)
    value = log_h + np.log(sigma)
    cdf_over_h = np.exp(special.log_ndtr(z) - log_h)
    pdf_over_h = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_h)
    d_mean = -cdf_over_h / sigma
    d_var = pdf_over_h / sigma / (2.0 * sigma)
    return value, d_mean[:, None] * dmean + d_var[:, None] * dvar


class Acquisition:
    """log expected improvement under ``gp`` below ``best`` (we minimise), for many points at
    once, and with its gradient for the local searches."""

    def __init__(self, gp: GP, best: float) -> None:
        self.gp = gp
        self.best = best

    def __call__(self, xq: np.ndarray) -> np.ndarray:
        value = log_expected_improvement(*self.gp.posterior(np.atleast_2d(xq)), self.best)
        return np.where(np.isnan(value), -np.inf, value)  # NaN never wins an argmax

    def value_and_grad(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return log_ei_and_grad(self.gp, np.atleast_2d(xq), self.best)


class CostAwareAcquisition(Acquisition):
    """log expected improvement *per second* (Snoek et al. 2012, section 3.2): log EI under
    ``gp`` minus the log duration a second GP, ``cost``, predicts (its posterior mean of the
    standardised log seconds, times ``cost_sd``). Where trials cost the same it ranks points
    exactly as log EI does; where big networks take ten times longer, it prefers the cheap
    region until the expensive one promises ten times the improvement."""

    def __init__(self, gp: GP, best: float, cost: GP, cost_sd: float) -> None:
        super().__init__(gp, best)
        self.cost = cost
        self.cost_sd = cost_sd

    def __call__(self, xq: np.ndarray) -> np.ndarray:
        xq = np.atleast_2d(xq)
        return super().__call__(xq) - self.cost_sd * self.cost.posterior(xq)[0]

    def value_and_grad(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xq = np.atleast_2d(xq)
        value, grad = log_ei_and_grad(self.gp, xq, self.best)
        mean, _, dmean, _ = self.cost.posterior_grad(xq)
        return value - self.cost_sd * mean, grad - self.cost_sd * dmean
