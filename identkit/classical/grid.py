"""A normalised density on a 1-D grid: the exact posterior of a scalar latent by quadrature, in log space."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import integrate
from scipy.special import logsumexp

from .._checks import as_finite_array

__all__ = ["GridPosterior", "trapezoid_log_weights", "QuadratureError"]


class QuadratureError(ArithmeticError):
    """An adaptive quadrature did not reach its tolerance within its node budget (the message names the knobs)."""


def trapezoid_log_weights(grid: np.ndarray) -> np.ndarray:
    """Log of the trapezoid-rule weights w_j on ``grid``, so that ∫ f ≈ Σ_j w_j f(grid_j)."""
    g = np.asarray(grid, dtype=float)
    dx = np.diff(g)
    w = np.zeros_like(g)
    w[:-1] += dx / 2
    w[1:] += dx / 2
    return np.log(w)


@dataclass(frozen=True)
class GridPosterior:
    r"""Density p(u) known up to a constant at the points of a strictly increasing grid, normalised there.

    From unnormalised log values ℓ_j = log p̃(u_j) it stores
    log p(u_j) = ℓ_j − log Σ_k w_k exp(ℓ_k) with trapezoid weights w_k, so that Σ_j w_j p(u_j) = 1 exactly.
    Expectations are trapezoid sums E[f] ≈ Σ_j w_j p(u_j) f(u_j).

    Parameters
    ----------
    grid : array of shape (G,)
        Strictly increasing points, G ≥ 3.
    log_unnormalised : array of shape (G,)
        log p̃ at the grid points; −inf is allowed (zero density), NaN and +inf are not.
    log_prior : array of shape (G,), optional
        The log prior density at the grid points (normalised or not), used by :meth:`kl_to_prior`.
    """

    grid: np.ndarray
    log_unnormalised: np.ndarray
    log_prior: np.ndarray | None = None
    log_density: np.ndarray = field(init=False, repr=False)
    log_weights: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        g = as_finite_array(self.grid, "grid", ndim=1)
        if g.size < 3 or np.any(np.diff(g) <= 0):
            raise ValueError("grid must be strictly increasing with at least 3 points")
        lu = self._log_values(self.log_unnormalised, "log_unnormalised", g.size)
        if np.all(np.isneginf(lu)):
            raise ValueError("log_unnormalised is -inf everywhere: the density has no mass on the grid")
        logw = trapezoid_log_weights(g)
        object.__setattr__(self, "grid", g)
        object.__setattr__(self, "log_weights", logw)
        object.__setattr__(self, "log_unnormalised", lu)
        object.__setattr__(self, "log_density", lu - logsumexp(lu + logw))
        if self.log_prior is not None:
            lp = self._log_values(self.log_prior, "log_prior", g.size)
            object.__setattr__(self, "log_prior", lp - logsumexp(lp + logw))

    @staticmethod
    def _log_values(values, name: str, size: int) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        if v.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},) like grid, got {v.shape}")
        if np.any(np.isnan(v) | np.isposinf(v)):
            raise ValueError(f"{name} contains NaN or +inf")
        return v

    @property
    def density(self) -> np.ndarray:
        """p(u_j), normalised so that the trapezoid rule integrates it to 1."""
        return np.exp(self.log_density)

    @property
    def prior_density(self) -> np.ndarray:
        """The prior density on the grid (normalised the same way)."""
        self._need_prior()
        return np.exp(self.log_prior)

    def expect(self, f) -> float:
        """E[f(u)] = ∫ f(u) p(u) du by the trapezoid rule."""
        vals = np.asarray(f(self.grid), dtype=float)
        return float(np.sum(np.exp(self.log_weights + self.log_density) * vals))

    def mean(self) -> float:
        """Posterior mean ∫ u p(u) du."""
        return self.expect(lambda u: u)

    def sd(self) -> float:
        """Posterior standard deviation (∫ (u − mean)² p(u) du)^{1/2}."""
        m = self.mean()
        return float(np.sqrt(max(self.expect(lambda u: (u - m) ** 2), 0.0)))

    def cdf(self) -> np.ndarray:
        """The cumulative distribution at the grid points (cumulative trapezoid, ends at 1)."""
        return integrate.cumulative_trapezoid(self.density, self.grid, initial=0.0)

    def quantile(self, q) -> np.ndarray:
        """Quantiles by linear interpolation of :meth:`cdf`; q in [0, 1]."""
        qs = as_finite_array(q, "q")
        if np.any((qs < 0) | (qs > 1)):
            raise ValueError("q must lie in [0, 1]")
        return np.interp(qs, self.cdf(), self.grid)

    def kl_to_prior(self) -> float:
        r"""KL(posterior ‖ prior) = ∫ p(u) [log p(u) − log π(u)] du, computed in log space (0·log 0 = 0)."""
        self._need_prior()
        p = np.exp(self.log_weights + self.log_density)
        mask = p > 0
        if np.any(mask & np.isneginf(self.log_prior)):
            return float("inf")
        return float(np.sum(p[mask] * (self.log_density[mask] - self.log_prior[mask])))

    def _need_prior(self):
        if self.log_prior is None:
            raise ValueError("log_prior was not given: this GridPosterior has no prior to compare with")
