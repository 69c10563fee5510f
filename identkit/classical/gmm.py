r"""Two-component Gaussian mixture with a Beta prior on the mixing weight: a *global* latent variable.

Model (Wang, Blei & Cunningham 2021, the talk's "posterior collapse in a Gaussian mixture model")::

    α ~ Beta(a, b),        x_i | α ~ α N(μ1, σ1²) + (1 − α) N(μ2, σ2²),   i = 1, …, n  (i.i.d.)

With θ = (μ1, μ2, σ1, σ2) fixed, the posterior p(α | x; θ) ∝ p(α) Π_i p(x_i | α; θ) is a density on [0, 1], so it is
computed *exactly* by 1-D quadrature in log space (:meth:`BetaMixtureGMM.posterior`); no MCMC is needed. When
μ1 = μ2 and σ1 = σ2 the likelihood does not depend on α, α is non-identifiable, and the posterior equals the prior.
The posterior is log-concave (for a Beta prior with a, b ≥ 1), so its mean, sd, log evidence and KL to the prior can
also be had to a stated, reported tolerance from a few dozen likelihood evaluations, by a Gauss rule fitted to where
its mass is (:meth:`BetaMixtureGMM.posterior_quadrature`).
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, optimize, stats
from scipy.linalg import eigh_tridiagonal
from scipy.special import betaln, erfcx, expit, log1p, logit, roots_jacobi, roots_legendre, xlog1py, xlogy

from .. import config
from .._checks import as_finite_array, check_int, check_positive, check_seed, check_unit_interval
from .grid import GridPosterior, QuadratureError

__all__ = ["BetaMixtureGMM", "MLEFit", "GMMDataset", "paper_datasets", "QuadraturePosterior",
           "quad_posterior_summary"]

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

        See Also
        --------
        posterior_quadrature : the same posterior's mean, sd, log evidence and KL to a stated tolerance, from a
            Gauss rule fitted to where the posterior has its mass (about 40 likelihood evaluations instead of
            ``grid_size`` for a narrow posterior); use the grid for plotting a density over all of [0, 1].
        """
        grid_size = check_int(grid_size, "grid_size", minimum=3)
        if min(self.prior) < 1:
            raise ValueError(f"prior: posterior() needs Beta parameters >= 1 (bounded density), got {self.prior}")
        grid = np.linspace(0.0, 1.0, grid_size)
        log_prior = stats.beta.logpdf(grid, *self.prior)
        ll = self.loglik(grid, x, chunk_size=chunk_size)
        return GridPosterior(grid, ll + log_prior, log_prior=log_prior)

    def posterior_quadrature(self, x, *, tol: float = 1e-10, max_nodes: int = 1024) -> "QuadraturePosterior":
        r"""The exact posterior p(α | x; θ), summarised to a stated tolerance by a Gauss rule fitted to its mass.

        Gives the posterior mean and sd, the log evidence log p(x) = log ∫ p(α) p(x | α) dα and KL(p(α | x) ‖ p(α)),
        with a reported error estimate, from about 40 likelihood evaluations when the posterior is narrow
        (:meth:`posterior` makes ``grid_size`` of them, 2001 by default), and
        :meth:`QuadraturePosterior.density_on` for the normalised density at any α.

        Write ℓ(α) = log Beta(α; a, b) + L(α), with L(α) = Σ_i log(α e^{a_i} + (1 − α) e^{b_i}) and a_i, b_i the
        component log densities of x_i (:meth:`log_components`); d_i = a_i − b_i.

        1. **Concavity.** Each term of L is the log of a positive affine function of α, hence concave, and
           (a − 1) log α + (b − 1) log(1 − α) is concave for a, b ≥ 1. So ℓ is concave on (0, 1) (strictly,
           unless every d_i = 0), and the posterior is log-concave and unimodal.
        2. **Mode.** With v_i = e^{−|d_i|} and w_i = 1 − v_i (no overflow for any d_i),

           ℓ'(α) = (a − 1)/α − (b − 1)/(1 − α) + Σ_{d_i>0} w_i/(v_i + α w_i) − Σ_{d_i<0} w_i/(v_i + (1 − α) w_i),

           and ℓ''(α) = −(a − 1)/α² − (b − 1)/(1 − α)² − Σ_i (the same terms)². ℓ' decreases, so the mode α* is
           its root, found by Newton's method safeguarded by bisection of a bracket (O(n) per step, no logs);
           when a = 1 and ℓ'(0) ≤ 0 (b = 1 and ℓ'(1) ≥ 0) the mode is the end point 0 (1).
        3. **Interval and tail bound.** A concave ℓ lies below its tangents: for t > α*, ℓ'(t) < 0 and
           ℓ(α) ≤ ℓ(t) + ℓ'(t)(α − t), so the unnormalised mass beyond t is at most
           e^{ℓ(t)} (1 − e^{ℓ'(t)(1 − t)}) / |ℓ'(t)|, and its first and second absolute moments about the mean
           at most those of the same exponential, e.g. e^{ℓ(t)} (D/λ + 1/λ²) with λ = |ℓ'(t)|, D = |t − mean|
           (mirrored for t < α*). Dividing by the mass found bounds how much the dropped tails can move the mean
           and sd (relative to the sd) and the log evidence. [lo, hi] starts where the quadratic model
           ℓ(α*) − |ℓ'(α*)| u − |ℓ''(α*)| u²/2 has fallen by log(1/tol) + 3 nats; an end within 5 % of the
           width of 0 (1) is moved onto it (no tail there). An end whose tail bound exceeds tol/4 (first against
           the quadratic model's mass and sd, then against the rule's) is moved out by the distance over which
           its tangent falls by the missing factor, so the bound holds after at most a few moves.
        4. **Rule.** When both ends lie inside (0, 1), a Gauss rule for the weight e^{−κ(α − α*)²} on
           [lo, hi], with κ fitted to the higher of ℓ(lo), ℓ(hi) (so the weight never falls faster than the
           posterior at the ends); its nodes and weights come from the Lanczos (Stieltjes) recurrence of that
           weight discretised on the 8N-point Gauss–Legendre rule, and Golub–Welsch. The integrand left over,
           e^{ℓ − c}/weight, is then nearly constant for a near-Gaussian posterior, and 12 or 24 nodes suffice.
           When an end is 0 (1), Gauss–Jacobi with weight α^{a−1} ((1 − α)^{b−1}) there, so the prior's power
           law is in the weight and what is left is analytic (p(x | α) = Π_i (α e^{a_i} + (1 − α) e^{b_i}) is a
           polynomial in α). The order N is doubled from 12 until mean and sd (relative to the sd) and log
           evidence change by at most tol/2, and KL = E_post[L(α)] − log p(x) too, as far as ``max_nodes``
           allows; the larger rule's values are returned.

        ``error_bound`` (≤ ``tol``) is the largest change of mean, sd and log evidence on the last doubling plus
        the tail bound; ``kl_error`` is the KL's last change. When the likelihood does not depend on α (every
        d_i = 0) the posterior is the prior: the Beta's closed form is returned, with no quadrature. The log
        evidence is a sum of n terms, so it carries a rounding error of about one ulp of its own size too.

        Departures from the grid method (:meth:`posterior`): the grid integrates by the trapezoid rule on 2001
        fixed points of [0, 1], with an error that is neither controlled nor reported (a posterior with sd 0.004
        spans some 8 grid steps per sd); this method places its nodes where the mass is, bounds what it leaves
        out, and reports the error. It returns numbers, not a density on a grid: no CDF or quantiles (use
        :meth:`QuadraturePosterior.density_on`, or the grid, for plots).

        Parameters
        ----------
        x : array of shape (n,)
        tol : float in (0, 1)
            Target error: mean and sd relative to the sd, log evidence and KL absolute. Default 1e-10. Much below
            1e-12 the rounding of L (a sum of n logs) is the floor, and the rule may grow to ``max_nodes``.
        max_nodes : int, ≥ 24
            Largest order of the Gauss rule (default 1024).

        Returns
        -------
        QuadraturePosterior

        Raises
        ------
        ValueError
            For a bad ``x``, ``tol`` or ``max_nodes``, or a prior with a < 1 or b < 1 (not log-concave).
        QuadratureError
            When mean, sd and log evidence do not reach ``tol`` with at most ``max_nodes`` nodes.
        """
        x = _data(x).copy()
        x.flags.writeable = False  # kept by the result for density_on
        tol = check_positive(tol, "tol")
        if tol >= 1:
            raise ValueError(f"tol must be < 1, got {tol!r}")
        max_nodes = check_int(max_nodes, "max_nodes", minimum=2 * _QUAD_START)
        if min(self.prior) < 1:
            raise ValueError(f"prior: posterior_quadrature() needs Beta parameters >= 1 (a log-concave posterior), "
                             f"got {self.prior}")
        pa, pb = self.prior
        la, lb = self.log_components(x)
        d = la - lb
        if not np.any(d):  # the likelihood is constant in α: the posterior is the prior
            return QuadraturePosterior._closed_form(self, x, float(np.sum(la)), tol)

        pos, neg = d > 0, d < 0
        v, w = np.exp(-np.abs(d)), -np.expm1(-np.abs(d))
        vp, wp, vn, wn = v[pos], w[pos], v[neg], w[neg]

        def slope(al: float) -> tuple[float, float]:
            """ℓ'(α) and ℓ''(α) (at α = 0 only when a = 1, at α = 1 only when b = 1)."""
            with np.errstate(divide="ignore", over="ignore"):
                tp, tn = wp / (vp + al * wp), wn / (vn + (1.0 - al) * wn)
                g, h = float(tp.sum() - tn.sum()), -float(tp @ tp + tn @ tn)
            if pa > 1:
                g, h = g + (pa - 1) / al, h - (pa - 1) / al**2
            if pb > 1:
                g, h = g - (pb - 1) / (1.0 - al), h - (pb - 1) / (1.0 - al) ** 2
            return g, h

        base, n_pos, n_neg = float(np.sum(np.maximum(la, lb))), vp.size, vn.size

        def log_post(al: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """ℓ(α) and log Beta(α; a, b) at the points ``al`` (one likelihood evaluation each).

            L(α) is :func:`_loglik_sum`'s sum, term for term, with its per-call set-up (v_i, counts) done once here.
            """
            nonlocal n_eval
            n_eval += al.size
            lp = xlogy(pa - 1, al) + xlog1py(pb - 1, -al) - betaln(pa, pb)
            chunk = max(256, 2**16 // al.size)
            if al.min() < _TINY_ALPHA or al.max() >= 1.0:  # end points and α < 1e-290: the general routine
                return _loglik_sum(la, lb, al, chunk) + lp, lp
            total = base + n_pos * log1p(-al) + n_neg * np.log(al)
            total += _sum_log_outer(vp, al / (1.0 - al), chunk)
            total += _sum_log_outer(vn, (1.0 - al) / al, chunk)
            return total + lp, lp

        n_eval = 0
        if pa == 1 and slope(0.0)[0] <= 0:
            mode = 0.0
        elif pb == 1 and slope(1.0)[0] >= 0:
            mode = 1.0
        else:
            mode = _concave_argmax(slope)
        g_m, h_m = slope(mode)
        gm, hm = abs(g_m), max(-h_m, 1e-300)
        c = None  # ℓ(α*): the shift that keeps exp() in range (evaluated with the first ends)
        # guesses of the mass (relative to e^c) and sd from the quadratic model, to place [lo, hi] before any rule
        z = (1.0 if 0 < mode < 1 else 0.5) * np.sqrt(2 * np.pi / hm) * erfcx(gm / np.sqrt(2 * hm))
        mean, sd = mode, 1.0 / (gm + np.sqrt(hm))
        # [lo, hi]: where the quadratic model ℓ(α*) − |ℓ'(α*)| u − |ℓ''(α*)| u²/2 has fallen by `drop` nats
        drop = np.log(1.0 / tol) + 3.0
        u = 2 * drop / (gm + np.sqrt(gm**2 + 2 * hm * drop))
        lo, hi = mode - u, mode + u
        ends = {}  # inner end t of a dropped tail → (ℓ(t) − c, ℓ'(t))

        def tail_error(sides, z, mean, sd):
            """Bound on the change of mean, sd (relative to sd) or log evidence from dropping the tails."""
            t0 = t1 = t2 = 0.0
            for t, room in sides:
                m0, m1, m2 = _tail_moments(t, *ends[t], mean, room)
                t0, t1, t2 = t0 + m0 / z, t1 + m1 / z, t2 + m2 / z
            return max(t1 / sd, (t2 + sd**2 * t0 + t1**2) / sd**2, float(log1p(t0))), t0

        for _ in range(_MAX_WIDENINGS):
            width = hi - lo  # an end close to 0 (1) goes onto it: no tail there, the prior's power in the weight
            lo, hi = (0.0 if lo < 0.05 * width else lo), (1.0 if 1.0 - hi < 0.05 * width else hi)
            new = [t for t in (lo, hi) if 0.0 < t < 1.0 and t not in ends]
            if new or c is None:
                ell_new = log_post(np.array(new + ([mode] if c is None else [])))[0]
                c = float(ell_new[-1]) if c is None else c
                ends.update({t: (float(e) - c, slope(t)[0]) for t, e in zip(new, ell_new)})
            sides = {s: (t, room) for s, t, room in (("lo", lo, lo), ("hi", hi, 1.0 - hi)) if 0.0 < t < 1.0}
            # widen an end whose tail alone could exceed tol/4 (with the guesses, or the last rule's values)
            wide = {s: e for s in sides if (e := tail_error([sides[s]], z, mean, sd)[0]) > tol / 4}
            if not wide:
                p, q = (pa - 1 if lo == 0.0 else 0.0), (pb - 1 if hi == 1.0 else 0.0)
                # Gaussian weight e^{−κ(α − α*)²} through the higher of ℓ(lo), ℓ(hi) (when both ends lie in (0, 1))
                kappa = (min(-ends[lo][0] / (lo - mode) ** 2, -ends[hi][0] / (hi - mode) ** 2) if len(sides) == 2
                         else 0.0)
                prev, order = None, _QUAD_START
                while True:
                    cur = _gauss_moments(log_post, c, _quadrature_rule(order, lo, hi, p, q, mode, kappa))
                    if prev is not None:
                        change = max(abs(cur[1] - prev[1]) / cur[2], abs(cur[2] - prev[2]) / cur[2],
                                     abs(cur[0] - prev[0]))
                        kl_change = abs(cur[3] - prev[3])
                        # the KL is refined too, as far as max_nodes allows (E[L] may converge slowly: L has log
                        # singularities just outside [0, 1])
                        if change <= tol / 2 and (kl_change <= tol / 2 or 2 * order > max_nodes):
                            break
                    if 2 * order > max_nodes:
                        last = "" if prev is None else f" (change on the last doubling: {change:.2g})"
                        raise QuadratureError(
                            f"posterior_quadrature did not reach tol={tol:g} with at most max_nodes={max_nodes} "
                            f"Gauss nodes on [{lo:.6g}, {hi:.6g}]{last}; raise max_nodes or loosen tol")
                    prev, order = cur, 2 * order
                log_z, mean, sd, kl = cur
                z = np.exp(log_z)
                tail_err, tail_mass = tail_error(list(sides.values()), z, mean, sd) if sides else (0.0, 0.0)
                if tail_err <= tol / 2:
                    break
                errs = {s: tail_error([sides[s]], z, mean, sd)[0] for s in sides}
                wide = {s: e for s, e in errs.items() if e > tol / 8} or errs
            for s, err in wide.items():  # move the end out to where its tangent has fallen by the missing factor
                t = sides[s][0]
                step = np.log(16 * max(err / (tol / 4), 1.0)) / abs(ends[t][1])
                lo, hi = (max(lo - step, 0.0), hi) if s == "lo" else (lo, min(hi + step, 1.0))
        else:
            raise QuadratureError(f"posterior_quadrature could not bound the tails to tol={tol:g} in "
                                           f"{_MAX_WIDENINGS} widenings of [{lo:.6g}, {hi:.6g}]")
        return QuadraturePosterior(
            mean=mean, sd=sd, mode=float(mode), log_evidence=c + log_z, kl_to_prior=kl,
            error_bound=float(change + tail_err), kl_error=float(kl_change), tail_mass=float(tail_mass),
            interval=(float(lo), float(hi)), n_nodes=order, n_evaluations=n_eval, rule=_rule_name(order, p, q, kappa),
            tol=tol, model=self, x=x)

    # ------------------------------------------------------------------ maximum likelihood
    def fit_mle(self, x, alpha=None, *, n_init: int = 4, seed: int = config.DEFAULT_SEED) -> MLEFit:
        r"""A local maximum of the likelihood in (μ1, μ2, σ1, σ2) for data x, with α free (default) or held fixed.

        Ascends (1/n) Σ_i log(α N(x_i; μ1, σ1²) + (1 − α) N(x_i; μ2, σ2²)) by L-BFGS-B with the analytic
        gradient, over the unconstrained parameters (μ1, μ2, log σ1, log σ2[, logit α]), and returns the best end
        point of its starts. It is not "the" maximum-likelihood estimate: with free σ this likelihood is unbounded
        (σ → 0 on one data point), so there is no global maximum, only local ones. With α free it is a joint local
        maximiser over (α, θ); near a well-separated optimum and for large n it agrees with a maximiser of the
        marginal likelihood ∫ p(x | α; θ) p(α) dα to O(1/n). The prior (a, b) is not used.

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
class QuadraturePosterior:
    r"""Summary of the exact posterior p(α | x; θ) from :meth:`BetaMixtureGMM.posterior_quadrature`.

    Unlike :class:`~identkit.classical.grid.GridPosterior`, the summaries are attributes (numbers), not methods.

    Attributes
    ----------
    mean, sd : float
        Posterior mean and standard deviation of α.
    mode : float
        The maximiser α* of the (log-concave) posterior density; 0 or 1 for a mode at an end point. For a
        constant likelihood and a uniform prior every α is a mode, and 0.5 is reported.
    log_evidence : float
        log p(x) = log ∫_0^1 Beta(α; a, b) p(x | α; θ) dα (the exact normaliser).
    kl_to_prior : float
        KL(p(α | x) ‖ p(α)) = E_post[log p(x | α)] − log p(x), in nats.
    error_bound : float
        Estimated error of mean and sd (relative to ``sd``) and log evidence (absolute): the largest change on
        the last doubling of the rule plus the tangent-line bound on what the dropped tails could change; ≤ ``tol``.
    kl_error : float
        Change of ``kl_to_prior`` on the last doubling (its estimated error; no tail term). ≤ ``tol`` unless the
        rule reached ``max_nodes`` first, which can happen when much posterior mass lies at an end point (the
        integrand of E_post[log p(x | α)] then has a log singularity just outside [0, 1]).
    tail_mass : float
        Upper bound on the posterior mass outside ``interval`` (0 when the interval is [0, 1]).
    interval : (float, float)
        The integration interval [lo, hi].
    n_nodes : int
        Order of the final Gauss rule (0 for the closed form).
    n_evaluations : int
        Number of α at which the full log-likelihood Σ_i log p(x_i | α) was evaluated (n logs each); the O(n)
        derivative passes of the mode search, which take no logs, are not counted.
    rule : str
        ``"Gauss (fitted Gaussian weight)"``, ``"Gauss-Legendre"``, ``"Gauss-Jacobi"`` (the prior's power at an
        end point in the weight) or ``"closed form"``.
    tol : float
        The tolerance asked for.
    model : BetaMixtureGMM
        The model; with ``x``, used by :meth:`density_on`.
    x : ndarray
        The data (a read-only copy).
    """

    mean: float
    sd: float
    mode: float
    log_evidence: float
    kl_to_prior: float
    error_bound: float
    kl_error: float
    tail_mass: float
    interval: tuple[float, float]
    n_nodes: int
    n_evaluations: int
    rule: str
    tol: float
    model: BetaMixtureGMM = field(repr=False, compare=False)
    x: np.ndarray = field(repr=False, compare=False)

    @classmethod
    def _closed_form(cls, model: BetaMixtureGMM, x: np.ndarray, log_lik: float, tol: float) -> "QuadraturePosterior":
        """The posterior when the likelihood is the constant e^{log_lik}: the Beta(a, b) prior itself."""
        a, b = model.prior
        s = a + b
        mode = (a - 1) / (s - 2) if s > 2 else 0.5
        return cls(mean=a / s, sd=float(np.sqrt(a * b / (s * s * (s + 1)))), mode=mode, log_evidence=log_lik,
                   kl_to_prior=0.0, error_bound=0.0, kl_error=0.0, tail_mass=0.0, interval=(0.0, 1.0), n_nodes=0,
                   n_evaluations=0, rule="closed form", tol=tol, model=model, x=x)

    def log_density_on(self, alpha):
        """log p(α | x) at the points ``alpha`` in [0, 1] (any shape; −inf where the prior density is 0)."""
        al = check_unit_interval(alpha, "alpha")
        with np.errstate(divide="ignore"):
            out = self.model.prior_logpdf(al) + self.model.loglik(al, self.x) - self.log_evidence
        return float(out) if np.ndim(out) == 0 else np.asarray(out)

    def density_on(self, alpha):
        """The normalised posterior density p(α | x) at the points ``alpha`` in [0, 1] (any shape), e.g. to plot."""
        out = np.exp(self.log_density_on(alpha))
        return float(out) if np.ndim(out) == 0 else out


_QUAD_START = 12  # first order of the Gauss rule; doubled until converged
_MAX_WIDENINGS = 8  # times the interval may be widened when the tail bound is too large
_FIT_MAX = 128  # largest order built for the fitted Gaussian weight (beyond it, plain Gauss–Legendre)
_FIT_BASE = 8  # the fitted rule of order N comes from a discrete measure on the 8N-point Gauss–Legendre rule


@functools.lru_cache(maxsize=64)
def _gauss_rule(order: int, p: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes on [−1, 1] and log weights for the weight (1 + x)^p (1 − x)^q (Gauss–Legendre when p = q = 0)."""
    x, w = roots_legendre(order) if p == q == 0 else roots_jacobi(order, q, p)
    logw = np.log(w)
    x.flags.writeable = logw.flags.writeable = False
    return x, logw


def _lanczos_rule(x: np.ndarray, w: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule (nodes, log weights) of ``order`` for the discrete measure Σ_i w_i δ(x_i) (w_i ≥ 0).

    Lanczos (the Stieltjes procedure with orthonormal vectors, fully reorthogonalised) on diag(x) from the start
    vector √w gives the Jacobi matrix; its eigenvalues are the nodes and μ0 times the squared first components of
    its eigenvectors the weights (Golub–Welsch).
    """
    mu0 = float(w.sum())
    basis = np.empty((order, x.size))
    diag, off = np.empty(order), np.empty(order - 1)
    basis[0] = np.sqrt(w / mu0)
    for k in range(order):
        r = x * basis[k]
        diag[k] = basis[k] @ r
        if k == order - 1:
            break
        r -= basis[:k + 1].T @ (basis[:k + 1] @ r)  # full reorthogonalisation (keeps the basis orthonormal)
        off[k] = np.linalg.norm(r)
        if off[k] <= 1e-14:  # the measure has (numerically) only k + 1 support points: its rule is exact with k + 1
            diag, off = diag[:k + 1], off[:k]
            break
        basis[k + 1] = r / off[k]
    nodes, vec = eigh_tridiagonal(diag, off)
    with np.errstate(divide="ignore"):
        return nodes, np.log(mu0) + 2 * np.log(np.abs(vec[0]))


def _quadrature_rule(order: int, lo: float, hi: float, p: float, q: float, mode: float, kappa: float):
    r"""Nodes α_j in (lo, hi) and log weights log W_j with ∫_lo^hi F(α) dα ≈ Σ_j W_j F(α_j).

    The rule is Gaussian for the weight ω(x) = (1 + x)^p (1 − x)^q e^{−κ(α(x) − mode)²} in x = 2(α − lo)/(hi − lo) − 1,
    so exact when F/ω is a polynomial of degree < 2·order. κ = 0 (or order > 128): Gauss–Legendre (p = q = 0) or
    Gauss–Jacobi; κ > 0: the rule is built by :func:`_lanczos_rule` from ω on the 8·order-point Gauss–Legendre
    rule (p = q = 0 then), so that a larger order also refines the discretisation of ω.
    """
    half = 0.5 * (hi - lo)
    if kappa > 0 and order <= _FIT_MAX:
        xb, lwb = _gauss_rule(_FIT_BASE * order, 0.0, 0.0)
        lwb = lwb - kappa * (lo + half * (xb + 1.0) - mode) ** 2
        top = lwb.max()
        x, logw = _lanczos_rule(xb, np.exp(lwb - top), order)
        logw = logw + top + kappa * (lo + half * (x + 1.0) - mode) ** 2
    else:
        x, logw = _gauss_rule(order, p, q)
        if p:
            logw = logw - p * log1p(x)
        if q:
            logw = logw - q * log1p(-x)
    return lo + half * (x + 1.0), logw + np.log(half)


def _rule_name(order: int, p: float, q: float, kappa: float) -> str:
    """How :func:`_quadrature_rule` built its rule, in words."""
    if kappa > 0 and order <= _FIT_MAX:
        return "Gauss (fitted Gaussian weight)"
    return "Gauss-Legendre" if p == q == 0 else "Gauss-Jacobi"


def _gauss_moments(log_post, c: float, rule) -> tuple[float, float, float, float]:
    r"""(log ∫ e^{ℓ − c}, mean, sd, KL) of the posterior restricted to the interval of ``rule`` = (nodes, log W)."""
    al, logw = rule
    ell, lp = log_post(al)
    lw = logw + (ell - c)
    top = float(lw.max())
    pj = np.exp(lw - top)
    log_z = top + float(np.log(pj.sum()))
    pj /= pj.sum()
    mean = float(pj @ al)
    sd = float(np.sqrt(pj @ (al - mean) ** 2))
    kl = float(pj @ (ell - c - lp)) - log_z  # E[L] − log Z, with L = ℓ − log prior, both shifted by c
    return log_z, mean, sd, kl


def _tail_moments(t: float, ell_t: float, slope_t: float, mean: float, room: float) -> tuple[float, float, float]:
    r"""Bounds on ∫ e^{ℓ − c} |α − mean|^k dα, k = 0, 1, 2, over the tail beyond t (of length ``room``).

    By concavity ℓ(α) − c ≤ ell_t − λ s at distance s past t, λ = |ℓ'(t)|, and |α − mean| ≤ D + s, D = |t − mean|:
    k = 0: e^{ell_t} (1 − e^{−λ room})/λ;  k = 1: e^{ell_t} (D/λ + 1/λ²);  k = 2: e^{ell_t} (D²/λ + 2D/λ² + 2/λ³),
    the last two also capped by (D + room)^k times the k = 0 bound.
    """
    lam, e, dist = abs(slope_t), np.exp(ell_t), abs(t - mean)
    if lam == 0:
        m0 = e * room
        return m0, (dist + room) * m0, (dist + room) ** 2 * m0
    m0 = e * -np.expm1(-lam * room) / lam
    m1 = min(e * (dist / lam + 1 / lam**2), (dist + room) * m0)
    m2 = min(e * (dist**2 / lam + 2 * dist / lam**2 + 2 / lam**3), (dist + room) ** 2 * m0)
    return float(m0), float(m1), float(m2)


def _concave_argmax(slope, max_iter: int = 200) -> float:
    """Root in (0, 1) of the decreasing ℓ' (``slope(α)`` gives ℓ', ℓ''): Newton's method inside a bisection bracket.

    Needs ℓ'(0+) > 0 > ℓ'(1−). Stops when the Newton step is below 1e-12 Laplace sds (1/√|ℓ''|) or the bracket has
    shrunk to adjacent floats.
    """
    lo, hi, al = 0.0, 1.0, 0.5
    for _ in range(max_iter):
        g, h = slope(al)
        if g == 0:
            return al
        lo, hi = (al, hi) if g > 0 else (lo, al)
        if h < 0 and np.isfinite(h):
            step = -g / h
            if abs(step) * np.sqrt(-h) <= 1e-12:  # converged: ℓ' is zero to rounding
                return al + step if lo <= al + step <= hi else al
            new = al + step if lo < al + step < hi else 0.5 * (lo + hi)
        else:
            new = 0.5 * (lo + hi)
        if new in (lo, hi, al):
            return al
        al = new
    return al


def quad_posterior_summary(model: BetaMixtureGMM, x, mode: float) -> tuple[float, float, float, float]:
    """(mean, sd, log evidence, KL to prior) of p(α | x; θ) by scipy.integrate.quad: a slow, independent reference.

    Shares no code with :meth:`BetaMixtureGMM.posterior_quadrature` or the grid: the log-likelihood is the direct
    Σ_i logaddexp(log α + log N1(x_i), log(1 − α) + log N2(x_i)), the prior is ``scipy.stats.beta`` and the
    integrator adaptive Gauss–Kronrod (QUADPACK, relative tolerance 1e-12), on [0, 1] split at ``mode`` (where
    the integrand, shifted by its value there, is largest). Tests and benchmarks check the fast methods against it.
    """
    x = _data(x)
    l1 = stats.norm.logpdf(x, model.mu[0], model.sigma[0])
    l2 = stats.norm.logpdf(x, model.mu[1], model.sigma[1])

    def loglik(a):
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log(a) + l1, np.log1p(-a) + l2).sum()

    shift, l_mode = loglik(mode) + stats.beta.logpdf(mode, *model.prior), loglik(mode)

    def unnorm(a):
        return np.exp(loglik(a) + stats.beta.logpdf(a, *model.prior) - shift)

    opts = dict(limit=500, epsabs=0, epsrel=1e-12, points=[mode] if 0 < mode < 1 else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        z = integrate.quad(unnorm, 0, 1, **opts)[0]
        m = integrate.quad(lambda a: a * unnorm(a), 0, 1, **opts)[0] / z
        v = integrate.quad(lambda a: (a - m) ** 2 * unnorm(a), 0, 1, **opts)[0] / z
        e_ll = integrate.quad(lambda a: (loglik(a) - l_mode) * unnorm(a), 0, 1, **opts)[0] / z + l_mode
    log_z = shift + np.log(z)
    return float(m), float(np.sqrt(v)), float(log_z), float(e_ll - log_z)


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
