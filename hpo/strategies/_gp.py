"""A small Gaussian-process regressor in torch, for the ``bayes`` strategy.

Matérn-5/2 kernel with one length scale per input (ARD), a signal variance and a noise
variance, fitted by maximising the marginal likelihood plus a weak prior (MAP; Snoek et al.
2012 integrate the hyper-parameters out: averaging EI over 8 slice-sampled hyper-parameter
sets was measured no better than MAP on Hartmann-6 at 40 trials, at 8 times the cost; the
priors are in :func:`_log_prior`). Categorical inputs use the Hamming distance, numeric inputs
the squared distance, both scaled by their own inverse squared length scale.

Everything is float64 and runs on the CPU: the matrices are at most a few hundred rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize
import torch

__all__ = ["GP", "fit_gp", "log_expected_improvement"]

_MIN_NOISE = 1e-6
_SQRT5 = math.sqrt(5.0)


class _Matern52(torch.autograd.Function):
    """Matérn-5/2 as a function of the squared distance, with its exact derivative.

    Written as an autograd function because the textbook form differentiates through
    ``sqrt(d2)``, whose derivative is infinite at 0 although the kernel's is finite.
    """

    @staticmethod
    def forward(ctx: Any, d2: torch.Tensor) -> torch.Tensor:
        r = torch.sqrt(d2)
        e = torch.exp(-_SQRT5 * r)
        ctx.save_for_backward(r, e)
        return (1.0 + _SQRT5 * r + (5.0 / 3.0) * d2) * e

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        r, e = ctx.saved_tensors
        return grad * (-(5.0 / 6.0) * (1.0 + _SQRT5 * r) * e)


def _sqdist(x1: torch.Tensor, x2: torch.Tensor, is_cat: torch.Tensor) -> torch.Tensor:
    """Per-dimension distances, shape (n1, n2, d): squared for numeric, 0/1 for categorical."""
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    return torch.where(is_cat, (diff != 0).to(diff.dtype), diff * diff)


@dataclass
class GP:
    """A fitted GP: posterior mean and variance at new points."""

    x: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)
    is_cat: torch.Tensor  # (d,) bool
    inv_sq_ls: torch.Tensor  # (d,)
    scale: torch.Tensor  # ()
    noise: torch.Tensor  # ()
    n_exact: int = 0  # the last n_exact rows are fantasies, conditioned on without noise

    def __post_init__(self) -> None:
        self._factor()

    def kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = _sqdist(a, b, self.is_cat) @ self.inv_sq_ls
        return self.scale * _Matern52.apply(d2)

    def _factor(self) -> None:
        k = self.kernel(self.x, self.x)
        diag = torch.full((len(self.x),), float(self.noise) + 1e-10, dtype=k.dtype)
        if self.n_exact:
            diag[-self.n_exact :] = 1e-8
        k = k + torch.diag(diag)
        self._chol = torch.linalg.cholesky(k)
        self._alpha = torch.cholesky_solve(self.y.unsqueeze(-1), self._chol).squeeze(-1)

    def condition_on(self, x_new: torch.Tensor, y_new: torch.Tensor) -> GP:
        """The same kernel conditioned on fantasised observations, taken as exact."""
        return GP(
            torch.cat([self.x, x_new]),
            torch.cat([self.y, y_new]),
            self.is_cat,
            self.inv_sq_ls,
            self.scale,
            self.noise,
            n_exact=self.n_exact + len(x_new),
        )

    def posterior(self, xq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance (of the latent function) at ``xq`` (m, d)."""
        kxq = self.kernel(xq, self.x)  # (m, n)
        mean = kxq @ self._alpha
        v = torch.linalg.solve_triangular(self._chol, kxq.T, upper=False)  # (n, m)
        var = (self.scale - (v * v).sum(0)).clamp_min(1e-12)
        return mean, var


def _log_prior(
    inv_sq_ls: torch.Tensor, scale: torch.Tensor, noise: torch.Tensor, is_cat: torch.Tensor
) -> torch.Tensor:
    # Weak priors that keep the fit sane with few points (inputs live in the unit box, values
    # are standardised):
    # * a numeric input's length scale l ~ Gamma(3, 6): mode 1/3, mean 1/2 of the box, little
    #   mass above 1 (BoTorch's long-standing default). A flatter prior centred on l = 1
    #   (Optuna's) lets a handful of points fit one smooth trend across the whole box; EI then
    #   exploits the first bump it finds and rarely looks elsewhere. Shorter length scales keep
    #   the model's uncertainty up away from the data, so a multi-modal function gets explored,
    #   and a smooth one is still fitted well once points accumulate;
    # * a categorical input (Hamming distance 0 or 1) keeps a prior centred on 1/l^2 = 1, a
    #   correlation of about 0.5 between two choices: short length scales would make every
    #   choice a separate function to learn from a few points;
    # * a signal variance near that of the standardised data, a small noise.
    def gamma(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
        return (a - 1.0) * torch.log(x) - b * x

    numeric = gamma(torch.rsqrt(inv_sq_ls), 3.0, 6.0)
    categorical = -(0.1 / inv_sq_ls + 0.1 * inv_sq_ls)
    return (
        torch.where(is_cat, categorical, numeric).sum()
        + gamma(scale, 2.0, 1.0)
        + gamma(noise, 1.1, 30.0)
    )


def fit_gp(x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, *, deterministic: bool = False) -> GP:
    """Fit kernel hyper-parameters (MAP) to ``x`` (n, d) and standardised ``y`` (n,)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    cat = torch.as_tensor(is_cat, dtype=torch.bool)
    n, d = xt.shape
    d2 = _sqdist(xt, xt, cat)  # (n, n, d): fixed during the fit
    eye = torch.eye(n, dtype=torch.float64)

    def unpack(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inv_sq_ls = torch.exp(raw[:d])
        scale = torch.exp(raw[d])
        noise = (
            torch.tensor(_MIN_NOISE, dtype=torch.float64)
            if deterministic
            else _MIN_NOISE + torch.exp(raw[d + 1])
        )
        return inv_sq_ls, scale, noise

    def loss_and_grad(raw_np: np.ndarray) -> tuple[float, np.ndarray]:
        raw = torch.tensor(raw_np, dtype=torch.float64, requires_grad=True)
        inv_sq_ls, scale, noise = unpack(raw)
        k = scale * _Matern52.apply(d2 @ inv_sq_ls) + (noise + 1e-10) * eye
        try:
            chol = torch.linalg.cholesky(k)
        except torch.linalg.LinAlgError:
            return 1e10, np.zeros_like(raw_np)
        alpha = torch.cholesky_solve(yt.unsqueeze(-1), chol).squeeze(-1)
        mll = (
            -0.5 * (yt @ alpha)
            - torch.log(torch.diagonal(chol)).sum()
            - 0.5 * n * math.log(2 * math.pi)
        )
        loss = -(mll + _log_prior(inv_sq_ls, scale, noise, cat))
        loss.backward()
        assert raw.grad is not None
        return float(loss.item()), raw.grad.numpy().copy()

    x0 = np.zeros(d + 2)
    x0[d + 1] = math.log(1e-2)
    res = scipy.optimize.minimize(
        # gtol 1e-2: the fit only needs to be good, not converged to the last digit (as in
        # Optuna's GPSampler); most of a proposal's time used to go into that last digit.
        loss_and_grad,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 200, "gtol": 1e-2},
    )
    raw = torch.tensor(res.x, dtype=torch.float64)
    inv_sq_ls, scale, noise = unpack(raw)
    return GP(xt, yt, cat, inv_sq_ls.detach(), scale.detach(), noise.detach())


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log_h(z: torch.Tensor) -> torch.Tensor:
    """log(z Φ(z) + φ(z)), accurate for very negative z (where EI underflows)."""
    log_phi = -0.5 * z * z - _LOG_SQRT_2PI
    pos = z >= 0
    zp = torch.where(pos, z, torch.zeros_like(z))
    out_pos = torch.log(zp * torch.special.ndtr(zp) + torch.exp(-0.5 * zp * zp - _LOG_SQRT_2PI))
    zn = torch.where(pos, -torch.ones_like(z), z).clamp_min(-1e4)
    # z Φ(z) + φ(z) = φ(z) (1 + z Φ(z)/φ(z)) and Φ(z)/φ(z) = sqrt(π/2) erfcx(-z/√2).
    inner = 1.0 + zn * math.sqrt(math.pi / 2) * torch.special.erfcx(-zn / math.sqrt(2))
    # Once cancellation takes over: 1 + z m(z) = 1/z² - 3/z⁴ + O(z⁻⁶).
    asym = -2.0 * torch.log(-zn) + torch.log1p(-3.0 / (zn * zn))
    out_neg = log_phi + torch.where(zn > -20, torch.log(inner.clamp_min(1e-300)), asym)
    return torch.where(pos, out_pos, out_neg)


def log_expected_improvement(mean: torch.Tensor, var: torch.Tensor, best: float) -> torch.Tensor:
    """log E[max(best - f, 0)] for f ~ N(mean, var) (we minimise)."""
    sigma = torch.sqrt(var)
    z = (best - mean) / sigma
    return _log_h(z) + torch.log(sigma)
