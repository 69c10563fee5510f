r"""The theorem: latent non-identifiability ⇔ posterior collapse, with exact toys.

Definition (Wang, Blei & Cunningham 2021). Given p(x, z; θ), a value θ̂ and data x, the latent z is
*non-identifiable* when p(x | z = z̃'; θ̂) = p(x | z = z̃; θ̂) for all z̃, z̃'.

Theorem. z is non-identifiable at θ̂ ⇔ p(z | x; θ̂) = p(z).
Proof (Bayes' rule): p(z | x; θ̂) ∝ p(z) p(x | z; θ̂) = p(z) p(x; θ̂) ∝ p(z); conversely, if the posterior is the
prior then p(x | z; θ̂) = p(x; θ̂) p(z | x; θ̂) / p(z) = p(x; θ̂) for every z in the prior's support.

Nothing here needs a neural network or approximate inference: the posteriors are computed exactly, by
log-sum-exp over a finite support, in closed form, or by quadrature on a grid.
"""
from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import logsumexp, rel_entr

from ._checks import as_finite_array, check_int, check_positive
from .classical.grid import GridPosterior

__all__ = [
    "log_posterior",
    "kl_discrete",
    "kl_gaussian",
    "is_collapsed",
    "likelihood_spread",
    "DiscreteToy",
    "GaussianToy",
    "location_mixture_population_loglik",
]


def log_posterior(log_prior, log_lik) -> np.ndarray:
    r"""Exact log posterior on a finite support by Bayes' rule in log space.

    log p(z | x) = log p(z) + log p(x | z) − logsumexp_z' [log p(z') + log p(x | z')].

    Parameters
    ----------
    log_prior : array of shape (K,)
        log p(z) for each value of z (normalised or not).
    log_lik : array of shape (..., K)
        log p(x | z) for each value of z, for one or more observations (leading axes).

    Returns
    -------
    array of shape (..., K), each row normalised (logsumexp = 0).
    """
    lp = np.asarray(log_prior, dtype=float)
    ll = np.asarray(log_lik, dtype=float)
    if lp.ndim != 1:
        raise ValueError(f"log_prior must be 1-D, got shape {lp.shape}")
    if ll.shape[-1:] != lp.shape:
        raise ValueError(f"log_lik's last axis must have length {lp.size} like log_prior, got shape {ll.shape}")
    for name, arr in (("log_prior", lp), ("log_lik", ll)):
        if np.any(np.isnan(arr) | np.isposinf(arr)):
            raise ValueError(f"{name} contains NaN or +inf")
    # shifting log p(x|z) by its maximum over z first keeps a constant likelihood exactly constant (zero)
    joint = lp - logsumexp(lp) + (ll - ll.max(axis=-1, keepdims=True))
    return joint - logsumexp(joint, axis=-1, keepdims=True)


def kl_discrete(log_p, log_q) -> np.ndarray:
    r"""KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) for distributions given by their logs (last axis).

    Terms with p_k = 0 contribute 0 (scipy.special.rel_entr). Returns an array over the leading axes.
    """
    lp, lq = np.broadcast_arrays(np.asarray(log_p, dtype=float), np.asarray(log_q, dtype=float))
    return np.sum(rel_entr(np.exp(lp), np.exp(lq)), axis=-1)


def kl_gaussian(mean0, cov0, mean1=None, cov1=None) -> float:
    r"""KL(N(m0, S0) ‖ N(m1, S1)) = ½[tr(S1⁻¹S0) + (m1−m0)ᵀS1⁻¹(m1−m0) − k + log det S1 − log det S0].

    ``mean1``/``cov1`` default to the standard normal N(0, I). Cholesky factorisations, no inverses.
    """
    m0 = as_finite_array(mean0, "mean0", ndim=1)
    k = m0.size
    m1 = np.zeros(k) if mean1 is None else as_finite_array(mean1, "mean1", ndim=1)
    s0 = as_finite_array(cov0, "cov0", ndim=2)
    s1 = np.eye(k) if cov1 is None else as_finite_array(cov1, "cov1", ndim=2)
    if m1.shape != (k,) or s0.shape != (k, k) or s1.shape != (k, k):
        raise ValueError(f"shapes disagree: mean0 {m0.shape}, cov0 {s0.shape}, mean1 {m1.shape}, cov1 {s1.shape}")
    try:
        l0 = np.linalg.cholesky(s0)
    except np.linalg.LinAlgError as exc:
        raise ValueError("cov0 must be symmetric positive definite") from exc
    try:
        l1 = np.linalg.cholesky(s1)
    except np.linalg.LinAlgError as exc:
        raise ValueError("cov1 must be symmetric positive definite") from exc
    a = np.linalg.solve(l1, l0)
    d = np.linalg.solve(l1, m1 - m0)
    logdet = 2 * (np.sum(np.log(np.diag(l1))) - np.sum(np.log(np.diag(l0))))
    return float(0.5 * (np.sum(a * a) + d @ d - k + logdet))


def is_collapsed(posterior_kl, tol: float = 1e-10):
    r"""Whether the posterior has collapsed to the prior: KL(p(z|x) ‖ p(z)) ≤ ``tol``.

    Parameters
    ----------
    posterior_kl : float or array
        KL(posterior ‖ prior), one value per data point or latent.
    tol : float
        Numerical tolerance (> 0). KL is ≥ 0 up to rounding; values below ``-tol`` are rejected.

    Returns
    -------
    bool, or a boolean array of the same shape.
    """
    tol = check_positive(tol, "tol")
    kl = as_finite_array(posterior_kl, "posterior_kl")
    if np.any(kl < -tol):
        raise ValueError(f"posterior_kl must be >= 0 (KL divergences), got minimum {kl.min():.3g}")
    out = kl <= tol
    return bool(out) if out.ndim == 0 else out


def likelihood_spread(log_lik) -> np.ndarray:
    r"""max_z log p(x|z) − min_z log p(x|z) over the last axis: 0 exactly when z is non-identifiable there."""
    ll = as_finite_array(log_lik, "log_lik")
    if ll.ndim == 0:
        raise ValueError("log_lik must have at least one axis (the values of z)")
    return ll.max(axis=-1) - ll.min(axis=-1)


class DiscreteToy:
    r"""A discrete latent with a Gaussian likelihood whose dependence on z is set by a *strength* a.

    z ∈ {0, …, K−1} with prior π (any, not necessarily uniform), x | z ~ N(a·(z − c), 1), c = (K−1)/2.
    At a = 0 the likelihood is constant in z (non-identifiable) so p(z|x) = π exactly; for a ≠ 0 it is
    identifiable and the posterior moves away from the prior.

    Parameters
    ----------
    prior : array of shape (K,)
        Prior probabilities (positive, summing to 1).
    """

    def __init__(self, prior=(0.5, 0.3, 0.2)):
        p = as_finite_array(prior, "prior", ndim=1)
        if p.size < 2 or np.any(p <= 0) or abs(p.sum() - 1) > 1e-12:
            raise ValueError("prior must have >= 2 positive entries summing to 1")
        self.prior = p
        self.support = np.arange(p.size)

    def loglik(self, x, strength: float) -> np.ndarray:
        """log p(x | z) for each observation (rows) and each z (columns): shape (n, K)."""
        s = float(as_finite_array(strength, "strength", ndim=0))
        xs = as_finite_array(x, "x", ndim=(0, 1)).reshape(-1, 1)
        centre = (self.prior.size - 1) / 2
        return stats.norm.logpdf(xs, loc=s * (self.support - centre), scale=1.0)

    def posterior(self, x, strength: float) -> np.ndarray:
        """p(z | x) for each observation: shape (n, K), rows summing to 1."""
        return np.exp(log_posterior(np.log(self.prior), self.loglik(x, strength)))

    def kl_to_prior(self, x, strength: float) -> np.ndarray:
        """KL(p(z | x) ‖ p(z)) per observation, shape (n,)."""
        lpost = log_posterior(np.log(self.prior), self.loglik(x, strength))
        return kl_discrete(lpost, np.log(self.prior))

    def expected_kl(self, strength: float, n: int = 4000, seed: int = 0) -> float:
        r"""E_x[KL(p(z|x) ‖ p(z))] under the model's own marginal p(x) — the mutual information I(x; z).

        Monte Carlo with ``n`` seeded draws (z ~ π, x ~ N(a(z − c), 1)).
        """
        n = check_int(n, "n")
        rng = np.random.default_rng(seed)
        z = rng.choice(self.support, size=n, p=self.prior)
        centre = (self.prior.size - 1) / 2
        x = strength * (z - centre) + rng.standard_normal(n)
        return float(np.mean(self.kl_to_prior(x, strength)))


class GaussianToy:
    r"""A continuous latent: z ~ N(0, 1), x | z ~ N(a·z, σ²), the strength a setting how much x says about z.

    Closed-form posterior z | x ~ N(a x / (a² + σ²), σ² / (a² + σ²)); at a = 0 it is the prior N(0, 1) exactly.
    :meth:`grid_posterior` computes the same by quadrature, as an independent check.
    """

    def __init__(self, sigma: float = 1.0):
        self.sigma = check_positive(sigma, "sigma")

    def posterior(self, x, strength: float) -> tuple[np.ndarray, float]:
        """Closed-form posterior (means of shape (n,), shared variance)."""
        s = float(as_finite_array(strength, "strength", ndim=0))
        xs = as_finite_array(x, "x", ndim=(0, 1)).reshape(-1)
        denom = s**2 + self.sigma**2
        return s * xs / denom, self.sigma**2 / denom

    def kl_to_prior(self, x, strength: float) -> np.ndarray:
        r"""KL(N(m, v) ‖ N(0, 1)) = ½(v + m² − 1 − log v) per observation, shape (n,)."""
        m, v = self.posterior(x, strength)
        return 0.5 * (v + m**2 - 1.0 - np.log(v))

    def grid_posterior(self, x: float, strength: float, grid=None) -> GridPosterior:
        """The posterior of z for one observation by quadrature on ``grid``.

        The default grid (6001 points) spans [−12, 12] and at least 12 posterior standard deviations on either side
        of the likelihood's peak in z, x a/(a² + σ²) (a strong, far observation moves the posterior out of
        [−12, 12]).
        """
        s = float(as_finite_array(strength, "strength", ndim=0))
        xv = float(as_finite_array(x, "x", ndim=0))
        if grid is None:
            centre = xv * s / (s**2 + self.sigma**2)
            half = 12.0 * self.sigma / np.sqrt(s**2 + self.sigma**2)
            g = np.linspace(min(-12.0, centre - half), max(12.0, centre + half), 6001)
        else:
            g = as_finite_array(grid, "grid", ndim=1)
        log_prior = stats.norm.logpdf(g)
        return GridPosterior(g, log_prior + stats.norm.logpdf(xv, loc=s * g, scale=self.sigma), log_prior)

    def mutual_information(self, strength: float) -> float:
        r"""I(x; z) = E_x KL(p(z|x) ‖ p(z)) = ½ log(1 + a²/σ²) (a the strength), in nats."""
        s = float(as_finite_array(strength, "strength", ndim=0))
        return float(0.5 * np.log1p(s**2 / self.sigma**2))


def location_mixture_population_loglik(separation, weight: float = 0.5, order: int = 80) -> np.ndarray:
    r"""Population log-likelihood of a two-component location mixture fitted to N(0, 1) data.

    Data x ~ N(0, 1); model p(x; δ) = π N(x; m1, 1) + (1−π) N(x; m2, 1), π = ``weight`` the prior probability of
    the cluster label w = 1, with the means placed so that the model's mean matches the data's (m1 = (1−π)δ,
    m2 = −πδ), δ the separation. Returns
    E_{x∼N(0,1)}[log p(x; δ)] for each δ by Gauss–Hermite quadrature of ``order`` nodes. It is maximal, equal to
    −½ log(2π) − ½ (the entropy bound), exactly at δ = 0, where the cluster label is non-identifiable: the global
    optimum is a collapsed model.
    """
    d = as_finite_array(separation, "separation", ndim=(0, 1))
    w = float(as_finite_array(weight, "weight", ndim=0))
    if not 0 < w < 1:
        raise ValueError(f"weight must lie in (0, 1), got {weight}")
    order = check_int(order, "order", minimum=2)
    nodes, wts = np.polynomial.hermite_e.hermegauss(order)  # ∫ f(x) e^{−x²/2} dx ≈ Σ w_j f(x_j)
    wts = wts / np.sqrt(2 * np.pi)
    dd = np.atleast_1d(d)[:, None]
    logp = np.logaddexp(np.log(w) + stats.norm.logpdf(nodes, loc=(1 - w) * dd),
                        np.log1p(-w) + stats.norm.logpdf(nodes, loc=-w * dd))
    out = logp @ wts
    return out if d.ndim else out[0]
