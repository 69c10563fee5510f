r"""Two-component Gaussian mixture with a Beta prior on the mixing weight: a *global* latent variable.

Model (Wang, Blei & Cunningham 2021, the talk's "posterior collapse in a Gaussian mixture model")::

    α ~ Beta(a, b),        x_i | α ~ α N(μ1, σ1²) + (1 − α) N(μ2, σ2²),   i = 1, …, n  (i.i.d.)

With θ = (μ1, μ2, σ1, σ2) fixed, the posterior p(α | x; θ) ∝ p(α) Π_i p(x_i | α; θ) is a density on [0, 1], so it is
computed *exactly* by 1-D quadrature in log space (:meth:`BetaMixtureGMM.posterior`); no MCMC is needed. When
μ1 = μ2 and σ1 = σ2 the likelihood does not depend on α, α is non-identifiable, and the posterior equals the prior.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from scipy.special import expit, log1p, logit

from .. import config
from .._checks import as_finite_array, check_int, check_positive, check_seed, check_unit_interval
from .grid import GridPosterior

__all__ = ["BetaMixtureGMM", "MLEFit", "GMMDataset", "paper_datasets"]

#: Below this α (> 0) the fast path's 1/r = (1 − α)/α would approach overflow; such α take the logaddexp path.
_TINY_ALPHA = 1e-290


def _pair(value, name: str, *, positive: bool) -> tuple[float, float]:
    """Validate a pair of reals (two finite numbers; both > 0 when ``positive``)."""
    arr = as_finite_array(value, name, ndim=1)
    if arr.shape != (2,):
        raise ValueError(f"{name} must be a pair of numbers (shape (2,)), got shape {arr.shape}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 entrywise, got {tuple(arr.tolist())}")
    return float(arr[0]), float(arr[1])


def _data(x, name: str = "x") -> np.ndarray:
    """Validate a 1-D, non-empty, finite data vector."""
    arr = as_finite_array(x, name, ndim=1)
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one data point")
    return arr


class MLEFit(tuple):
    """Result of :meth:`BetaMixtureGMM.fit_mle`: unpacks as ``mu, sigma = fit``.

    Attributes
    ----------
    mu, sigma : tuple of float
        The fitted component means and standard deviations.
    alpha : float
        The fitted mixing weight (or the fixed value when α was held fixed).
    loglik : float
        Σ_i log p(x_i | α̂; μ̂, σ̂) at the optimum.
    alpha_fixed : bool
        Whether α was held fixed during the fit.
    success : bool
        Whether the best optimiser run reported convergence.
    """

    def __new__(cls, mu, sigma, alpha, loglik, alpha_fixed, success):
        obj = super().__new__(cls, (tuple(mu), tuple(sigma)))
        obj.mu, obj.sigma = tuple(mu), tuple(sigma)
        obj.alpha, obj.loglik = float(alpha), float(loglik)
        obj.alpha_fixed, obj.success = bool(alpha_fixed), bool(success)
        return obj

    def __repr__(self):
        return (f"MLEFit(mu=({self.mu[0]:.4f}, {self.mu[1]:.4f}), sigma=({self.sigma[0]:.4f}, {self.sigma[1]:.4f}), "
                f"alpha={self.alpha:.4f}, loglik={self.loglik:.4f}, alpha_fixed={self.alpha_fixed})")


class BetaMixtureGMM:
    r"""Two-component 1-D Gaussian mixture whose weight α has a Beta(a, b) prior.

    p(α) = Beta(α; a, b),  p(x_i | α; θ) = α N(x_i; μ1, σ1²) + (1 − α) N(x_i; μ2, σ2²), with θ = (μ1, μ2, σ1, σ2).
    α is the weight of component 1.

    Parameters
    ----------
    mu : pair of float
        Component means (μ1, μ2).
    sigma : pair of float
        Component standard deviations (σ1, σ2), both > 0.
    prior : pair of float
        Beta prior parameters (a, b), both > 0. Default (5, 5), as in the paper.
    """

    def __init__(self, mu=(-1.0, 1.0), sigma=(1.0, 1.0), prior=(5.0, 5.0)):
        self.mu = _pair(mu, "mu", positive=False)
        self.sigma = _pair(sigma, "sigma", positive=True)
        self.prior = _pair(prior, "prior", positive=True)

    def __repr__(self):
        return f"BetaMixtureGMM(mu={self.mu}, sigma={self.sigma}, prior={self.prior})"

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, alpha: float, seed: int = config.DEFAULT_SEED) -> np.ndarray:
        """Draw x_1, …, x_n i.i.d. from α N(μ1, σ1²) + (1 − α) N(μ2, σ2²).

        Each point picks component 1 with probability α (z_i ~ Bernoulli(α)), then x_i = μ_{z_i} + σ_{z_i} ε_i,
        ε_i ~ N(0, 1). Reproducible: the same ``seed`` gives the same draws.

        Returns
        -------
        x : ndarray of shape (n,)
        """
        n = check_int(n, "n", minimum=1)
        a = check_unit_interval(alpha, "alpha")
        if a.ndim != 0:
            raise ValueError(f"alpha must be a scalar in [0, 1], got shape {a.shape}")
        rng = np.random.default_rng(check_seed(seed))
        first = rng.random(n) < float(a)
        eps = rng.standard_normal(n)
        mu = np.where(first, self.mu[0], self.mu[1])
        sd = np.where(first, self.sigma[0], self.sigma[1])
        return mu + sd * eps

    # ------------------------------------------------------------------ likelihood
    def log_components(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Per-point component log densities (log N(x_i; μ1, σ1²), log N(x_i; μ2, σ2²)), each of shape (n,)."""
        x = _data(x)
        return (stats.norm.logpdf(x, self.mu[0], self.sigma[0]),
                stats.norm.logpdf(x, self.mu[1], self.sigma[1]))

    def loglik(self, alpha, x, *, chunk_size: int = 256):
        r"""log p(x | α; θ) = Σ_i log(α N(x_i; μ1, σ1²) + (1 − α) N(x_i; μ2, σ2²)), vectorised over α.

        Exact in log space, including α ∈ {0, 1} (where it is Σ_i log N(x_i; μ2, σ2²), resp. μ1, σ1²).
        See :func:`_loglik_sum` for the (n × len(α)) computation, chunked over the data.

        Parameters
        ----------
        alpha : float or array
            Values in [0, 1] (any shape).
        x : array of shape (n,)
            Data.
        chunk_size : int
            Data points processed at a time; memory is O(chunk_size × alpha.size).

        Returns
        -------
        float or ndarray with the shape of ``alpha``.
        """
        al = check_unit_interval(alpha, "alpha")
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
        a, b = self.log_components(x)
        out = _loglik_sum(a, b, al.ravel(), chunk_size).reshape(al.shape)
        return float(out) if out.ndim == 0 else out

    def prior_logpdf(self, alpha):
        """log Beta(α; a, b) (−inf where the density is 0, e.g. at α ∈ {0, 1} when a, b > 1)."""
        al = check_unit_interval(alpha, "alpha")
        return stats.beta.logpdf(al, *self.prior)

    # ------------------------------------------------------------------ exact posterior
    def posterior(self, x, grid_size: int = 2001, *, chunk_size: int = 256) -> GridPosterior:
        r"""The exact posterior p(α | x; θ) on a uniform grid of ``grid_size`` points over [0, 1].

        log p̃(α_j) = log Beta(α_j; a, b) + log p(x | α_j; θ), normalised by the trapezoid rule (in log space) by
        :class:`~identkit.classical.grid.GridPosterior`, which also carries the prior for ``kl_to_prior()``.
        Requires a, b ≥ 1 so that the prior density is bounded on [0, 1] (a Beta with a < 1 or b < 1 has an
        integrable singularity at an end point that a trapezoid grid cannot represent).

        Parameters
        ----------
        x : array of shape (n,)
        grid_size : int, ≥ 3
        chunk_size : int
            Data points per chunk of the n × grid log-likelihood sum (bounds memory).

        Returns
        -------
        GridPosterior
            ``.mean()``, ``.sd()``, ``.kl_to_prior()``, ``.density``, ``.prior_density``, ``.quantile(q)``.
        """
        grid_size = check_int(grid_size, "grid_size", minimum=3)
        if min(self.prior) < 1:
            raise ValueError(f"prior: posterior() needs Beta parameters >= 1 (bounded density), got {self.prior}")
        grid = np.linspace(0.0, 1.0, grid_size)
        log_prior = stats.beta.logpdf(grid, *self.prior)
        ll = self.loglik(grid, x, chunk_size=chunk_size)
        return GridPosterior(grid, ll + log_prior, log_prior=log_prior)

    # ------------------------------------------------------------------ maximum likelihood
    def fit_mle(self, x, alpha=None, *, n_init: int = 4, seed: int = config.DEFAULT_SEED) -> MLEFit:
        r"""Maximum-likelihood (μ1, μ2, σ1, σ2) for data x, with α free (default) or held at a given value.

        Maximises (1/n) Σ_i log(α N(x_i; μ1, σ1²) + (1 − α) N(x_i; μ2, σ2²)) by L-BFGS-B with the analytic
        gradient, over the unconstrained parameters (μ1, μ2, log σ1, log σ2[, logit α]). With α free this is the
        joint maximiser over (α, θ); for large n it agrees with the maximiser of the marginal likelihood
        ∫ p(x | α; θ) p(α) dα to O(1/n). The prior (a, b) is not used.

        Starts (deterministic): one from the data quartiles (μ = 25 % and 75 % quantiles, σ = sd/2, α = 0.5 or the
        fixed value) and ``n_init − 1`` seeded random ones (means drawn from the data, σ = sd, α ~ U(0.2, 0.8)); the
        best optimum wins. σ is bounded below by 1e-3 × sd(x) to keep away from the degenerate (unbounded)
        optima that put one component on a single point.

        Parameters
        ----------
        x : array of shape (n,), n ≥ 2
        alpha : float in [0, 1], optional
            Fixed mixing weight; None (default) fits α too.
        n_init : int
            Number of optimiser starts.
        seed : int
            Seed for the random starts.

        Returns
        -------
        MLEFit
            Unpacks as ``mu, sigma``; also has ``.alpha``, ``.loglik``, ``.alpha_fixed``, ``.success``.
        """
        x = _data(x)
        if x.size < 2:
            raise ValueError("x must contain at least two data points to fit a mixture")
        n_init = check_int(n_init, "n_init", minimum=1)
        rng = np.random.default_rng(check_seed(seed))
        fixed = alpha is not None
        if fixed:
            a_fix = check_unit_interval(alpha, "alpha")
            if a_fix.ndim != 0:
                raise ValueError(f"alpha must be a scalar in [0, 1] or None, got shape {a_fix.shape}")
            a_fix = float(a_fix)
        sd = float(np.std(x)) or 1.0
        log_sd_min = np.log(1e-3 * sd)

        def unpack(p):
            al = a_fix if fixed else float(expit(p[4]))
            return p[0], p[1], np.exp(p[2]), np.exp(p[3]), al

        def objective(p):
            m1, m2, s1, s2, al = unpack(p)
            z1, z2 = (x - m1) / s1, (x - m2) / s2
            l1 = -0.5 * z1**2 - np.log(s1) - 0.5 * np.log(2 * np.pi)
            l2 = -0.5 * z2**2 - np.log(s2) - 0.5 * np.log(2 * np.pi)
            with np.errstate(divide="ignore"):
                t1, t2 = np.log(al) + l1, log1p(-al) + l2
            li = np.logaddexp(t1, t2)
            g = np.exp(t1 - li)  # responsibility of component 1
            h = 1.0 - g
            grad = [np.mean(g * z1 / s1), np.mean(h * z2 / s2), np.mean(g * (z1**2 - 1)), np.mean(h * (z2**2 - 1))]
            if not fixed:
                grad.append(np.mean(g) - al)  # d/d logit α of the mean log-likelihood
            return -float(np.mean(li)), -np.asarray(grad)

        q25, q75 = np.quantile(x, [0.25, 0.75])
        starts = [[q25, q75, np.log(sd / 2), np.log(sd / 2)] + ([] if fixed else [0.0])]
        for _ in range(n_init - 1):
            m = np.sort(rng.choice(x, 2, replace=False))
            extra = [] if fixed else [float(logit(rng.uniform(0.2, 0.8)))]
            starts.append([m[0], m[1], np.log(sd), np.log(sd)] + extra)
        bounds = [(None, None), (None, None), (log_sd_min, None), (log_sd_min, None)] + ([] if fixed else [(-30, 30)])
        best = None
        for p0 in starts:
            res = optimize.minimize(objective, np.asarray(p0, float), jac=True, method="L-BFGS-B", bounds=bounds,
                                    options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10})
            if best is None or res.fun < best.fun:
                best = res
        m1, m2, s1, s2, al = unpack(best.x)
        return MLEFit((float(m1), float(m2)), (float(s1), float(s2)), al, -best.fun * x.size, fixed, best.success)

    def with_params(self, mu=None, sigma=None, prior=None) -> "BetaMixtureGMM":
        """A copy with some of (mu, sigma, prior) replaced, e.g. ``model.with_params(*model.fit_mle(x))``."""
        return BetaMixtureGMM(self.mu if mu is None else mu, self.sigma if sigma is None else sigma,
                              self.prior if prior is None else prior)


def _loglik_sum(a: np.ndarray, b: np.ndarray, alpha: np.ndarray, chunk_size: int = 256) -> np.ndarray:
    r"""L(α_j) = Σ_i log(α_j e^{a_i} + (1 − α_j) e^{b_i}) for every α_j, exactly and with one log per (i, j).

    With m_i = max(a_i, b_i) and d_i = a_i − b_i the points split into
      * ties (d_i = 0): the term is exactly m_i for every α;
      * A (d_i > 0): α e^{a} + (1 − α) e^{b} = e^{m_i} (1 − α) (v_i + r), v_i = e^{−d_i} ∈ (0, 1), r = α/(1 − α);
      * B (d_i < 0): α e^{a} + (1 − α) e^{b} = e^{m_i} α (u_i + 1/r),    u_i = e^{d_i} ∈ (0, 1);
    so L(α) = Σ_i m_i + |A| log(1 − α) + |B| log α + Σ_A log(v_i + r) + Σ_B log(u_i + 1/r).
    Each sum is a positive sum (no cancellation), so the result is accurate to a few ulp per term, and the inner
    n × G work is one add and one log per element (cheaper than logaddexp's max/exp/log1p). The sums run over
    chunks of ``chunk_size`` points (memory O(chunk_size × G)). α = 0 and α = 1 are Σ_i b_i and Σ_i a_i exactly;
    0 < α < 1e-290 (where 1/r overflows) uses logaddexp directly.
    """
    alpha = np.asarray(alpha, dtype=float)
    out = np.empty(alpha.shape)
    d = a - b
    is_a, is_b = d > 0, d < 0
    base = float(np.sum(np.maximum(a, b)))
    zero, one = alpha == 0, alpha == 1
    tiny = (alpha > 0) & (alpha < _TINY_ALPHA)
    reg = ~(zero | one | tiny)
    out[zero] = np.sum(b)
    out[one] = np.sum(a)
    if np.any(tiny):
        at = alpha[tiny]
        out[tiny] = np.logaddexp(np.log(at)[None, :] + a[:, None], log1p(-at)[None, :] + b[:, None]).sum(axis=0)
    if np.any(reg):
        ar = alpha[reg]
        r, rinv = ar / (1.0 - ar), (1.0 - ar) / ar
        total = base + np.count_nonzero(is_a) * log1p(-ar) + np.count_nonzero(is_b) * np.log(ar)
        total += _sum_log_outer(np.exp(-d[is_a]), r, chunk_size)
        total += _sum_log_outer(np.exp(d[is_b]), rinv, chunk_size)
        out[reg] = total
    return out


def _sum_log_outer(v: np.ndarray, r: np.ndarray, chunk_size: int) -> np.ndarray:
    """S_j = Σ_i log(v_i + r_j), over chunks of ``chunk_size`` values of v (one reused buffer)."""
    acc = np.zeros(r.shape)
    if v.size == 0:
        return acc
    buf = np.empty((r.size, min(chunk_size, v.size)))
    for start in range(0, v.size, chunk_size):
        vc = v[start:start + chunk_size]
        blk = buf[:, :vc.size]
        np.add.outer(r, vc, out=blk)
        np.log(blk, out=blk)
        acc += blk.sum(axis=1)
    return acc


@dataclass(frozen=True)
class GMMDataset:
    """One of the paper's three data sets: the data ``x``, the model with its generating θ, and the generating α.

    ``alpha`` is None for the one-cluster data (μ1 = μ2, σ1 = σ2): every α generates the same distribution.
    """

    name: str
    label: str
    x: np.ndarray
    model: BetaMixtureGMM
    alpha: float | None


def paper_datasets(n: int = 10_000, seed: int = config.DEFAULT_SEED,
                   prior=(5.0, 5.0)) -> dict[str, GMMDataset]:
    """The three data sets of the paper's GMM example, seeded (n points each).

    * ``"one_cluster"``: x ~ N(−1, 1), i.e. μ = (−1, −1), σ = (1, 1) (α non-identifiable);
    * ``"overlapping"``: μ = (−0.5, 0.5), σ = (1, 1), α = 0.85;
    * ``"separated"``: μ = (−10, 10), σ = (1, 1), α = 0.85.

    Data set k is drawn with seed ``seed + k`` (k = 0, 1, 2).

    Returns
    -------
    dict name → :class:`GMMDataset` (in the order above).
    """
    n = check_int(n, "n", minimum=1)
    seed = check_seed(seed)
    specs = [
        ("one_cluster", "one cluster", (-1.0, -1.0), (1.0, 1.0), None),
        ("overlapping", "overlapping", (-0.5, 0.5), (1.0, 1.0), 0.85),
        ("separated", "separated", (-10.0, 10.0), (1.0, 1.0), 0.85),
    ]
    out = {}
    for k, (name, label, mu, sigma, alpha) in enumerate(specs):
        model = BetaMixtureGMM(mu=mu, sigma=sigma, prior=prior)
        x = model.sample(n, 0.5 if alpha is None else alpha, seed=seed + k)
        out[name] = GMMDataset(name, label, x, model, alpha)
    return out
