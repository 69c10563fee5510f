r"""Gaussian-mixture VAE with the **exact** cluster posterior p(w | x), by Gauss–Hermite quadrature over z.

The model of the talk (Wang, Blei & Cunningham 2021), in the tutorial's notation (w the cluster label, z the
continuous latent; the talk's GMVAE slide swaps the two letters, and so do the variable names of this module:
in the code ``z`` holds cluster labels and ``w`` continuous latents)::

    w_i ~ Categorical(1/K),   z_i | w_i ~ N(μ_{w_i}, Σ_{w_i}),   x_i | z_i ~ N(f(z_i), σ² I_m),

with z ∈ R^d (d ∈ {1, 2}) and any decoder f: R^d → R^m. The cluster label w is the latent whose
identifiability is at stake: w is non-identifiable at f exactly when p(x | w = k) is the same for every k,
and then (Bayes) p(w | x) = 1/K for every x — posterior collapse with exact inference.

The per-cluster marginal

.. math:: p(x | w = k) = ∫ N(z; μ_k, Σ_k) N(x; f(z), σ² I_m) dz

is computed by the Gauss–Hermite rule transformed by the Cholesky factor L_k of Σ_k (tensor grid for d = 2):
with Hermite nodes t_j and weights ω_j (``numpy.polynomial.hermite.hermgauss``),

.. math:: p(x | w = k) ≈ π^{-d/2} Σ_j ω_j N(x; f(μ_k + √2 L_k t_j), σ² I_m),

evaluated in log space (logsumexp over nodes, then over k). For an affine f(z) = A z + b the marginal is
Gaussian in closed form, x | w = k ~ N(A μ_k + b, A Σ_k Aᵀ + σ² I) (:func:`affine_cluster_log_likelihood`).

Nodes placed by the prior miss a likelihood that is narrow compared with it (small σ, a steep decoder), so by
default (``order=None``) every (x_i, k) gets its own rule, centred where its integrand
h_ik(z) = N(z; μ_k, Σ_k) N(x_i; f(z), σ² I) has its mass (:func:`adaptive_rule`): the modes of h_ik and their
Laplace covariances, a Gauss–Hermite rule on each, glued by a partition of unity, and the order doubled until
neither p(w | x_i) nor log p(x_i) changes by more than ``tol``. A fixed ``order=`` gives the prior-centred rule
above.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.polynomial.hermite import hermgauss
from scipy.special import kl_div, logsumexp, roots_hermite
from scipy.stats import multivariate_normal

from .._checks import as_finite_array, check_int, check_positive, check_psd, check_seed
from .grid import QuadratureError

__all__ = [
    "GMVAE",
    "AffineDecoder",
    "ClusterPosterior",
    "gauss_hermite_rule",
    "cluster_nodes",
    "affine_cluster_log_likelihood",
    "affine_cluster_posterior",
    "adaptive_rule",
    "AdaptiveRule",
    "QuadratureError",
    "DEFAULT_ORDER",
    "DEFAULT_TOL",
]

#: Order of the prior-centred rule per latent dimension (d = 1: 96 nodes; d = 2: 48 × 48 = 2 304 per cluster),
#: used when a fixed ``order`` is asked for and by :func:`identkit.neural.exact_gmvae.gh_log_marginal`.
DEFAULT_ORDER = {1: 96, 2: 48}
#: Default tolerance of the adaptive rule: doubling its order changes no p(w = k | x) and no log p(x) by more.
DEFAULT_TOL = 1e-8
_HERMGAUSS_MAX = 150  # above this order the nodes come from scipy.special.roots_hermite
_CHUNK_ELEMENTS = 2**22  # cap on the (n_chunk, K, Q, m) residual array (32 MiB of float64)


# ----------------------------------------------------------------------------------------------------------------
# Argument checks shared with identkit.neural.exact_gmvae
# ----------------------------------------------------------------------------------------------------------------
def check_mixture(means, covs) -> tuple[np.ndarray, np.ndarray]:
    """Validate mixture parameters; return ``means`` (K, d) and ``covs`` (K, d, d) as float arrays.

    For d = 1, ``means`` of shape (K,) and ``covs`` of shape (K,) (variances) are accepted too.
    Raises ``ValueError`` naming ``means`` or ``covs``.
    """
    mu = as_finite_array(means, "means", ndim=(1, 2))
    if mu.ndim == 1:
        mu = mu[:, None]
    K, d = mu.shape
    if K < 1:
        raise ValueError("means must hold at least one cluster (shape (K, d) with K >= 1)")
    if d not in (1, 2):
        raise ValueError(f"means must have shape (K, d) with d in {{1, 2}}, got d = {d}")
    cov = as_finite_array(covs, "covs", ndim=(1, 3))
    if cov.ndim == 1:
        if d != 1:
            raise ValueError(f"covs must have shape (K, d, d) = ({K}, {d}, {d}), got {cov.shape}")
        cov = cov[:, None, None]
    if cov.shape[0] != K:
        raise ValueError(f"covs holds {cov.shape[0]} clusters but means holds K = {K}")
    if cov.shape[1:] != (d, d):
        raise ValueError(f"covs must have shape (K, d, d) = ({K}, {d}, {d}), got {cov.shape}")
    check_psd(cov, "covs")
    return mu, 0.5 * (cov + np.swapaxes(cov, -1, -2))


def gauss_hermite_rule(d: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """See :func:`_gauss_hermite_rule`; cached (the arrays returned are read-only)."""
    return _gauss_hermite_rule(d, check_int(order, "order", minimum=1))


@functools.lru_cache(maxsize=64)
def _gauss_hermite_rule(d: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Tensor Gauss–Hermite rule for ∫ e^{-|t|²} g(t) dt over R^d.

    Returns nodes ``t`` of shape (order**d, d) and ``log ω`` of shape (order**d,), the log of the product
    weights (``numpy.polynomial.hermite.hermgauss``; ``scipy.special.roots_hermite`` above order 150, where
    numpy's recursion overflows). Nodes and weights are exactly symmetric (numpy symmetrises them), which makes
    symmetric fold decoders give bit-for-bit equal cluster likelihoods.
    """
    order = check_int(order, "order", minimum=1)
    if d not in (1, 2):
        raise ValueError(f"d must be 1 or 2, got {d!r}")
    if order <= _HERMGAUSS_MAX:
        t, w = hermgauss(order)
    else:  # numpy's recursion overflows for high orders; scipy switches to an asymptotic method there
        t, w = roots_hermite(order)
        t, w = 0.5 * (t - t[::-1]), 0.5 * (w + w[::-1])  # symmetrise exactly, as numpy does
    with np.errstate(divide="ignore"):  # weights of very high orders underflow to 0 → log ω = −inf, harmless
        logw = np.log(w)
    if d == 1:
        return _frozen(t[:, None].copy()), _frozen(logw)
    t1, t2 = np.meshgrid(t, t, indexing="ij")
    l1, l2 = np.meshgrid(logw, logw, indexing="ij")
    return _frozen(np.stack([t1.ravel(), t2.ravel()], axis=1)), _frozen((l1 + l2).ravel())


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def cluster_nodes(means: np.ndarray, covs: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Quadrature nodes in the space of the continuous latent z for every cluster, and the shared log weights.

    Returns the nodes, of shape (K, Q, d), z_{kj} = μ_k + √2 L_k t_j (L_k the Cholesky factor of Σ_k) and
    ``log_weights`` of shape (Q,) equal to log ω_j − (d/2) log π, so that
    E_{N(μ_k, Σ_k)}[g(z)] ≈ Σ_j exp(log_weights_j) g(z_{kj}).
    """
    means, covs = check_mixture(means, covs)
    d = means.shape[1]
    t, logw = gauss_hermite_rule(d, order)
    chol = np.linalg.cholesky(covs)  # (K, d, d)
    w = means[:, None, :] + np.sqrt(2.0) * np.einsum("kab,qb->kqa", chol, t)
    return w, logw - 0.5 * d * np.log(np.pi)


# ----------------------------------------------------------------------------------------------------------------
# Decoders
# ----------------------------------------------------------------------------------------------------------------
class AffineDecoder:
    r"""The affine decoder f(z) = A z + b (A of shape (m, d), b of shape (m,)), for which
    p(x | w = k) = N(x; A μ_k + b, A Σ_k Aᵀ + σ² I) in closed form."""

    def __init__(self, A, b=None):
        self.A = as_finite_array(A, "A", ndim=2)
        m = self.A.shape[0]
        self.b = np.zeros(m) if b is None else as_finite_array(b, "b", ndim=1)
        if self.b.shape != (m,):
            raise ValueError(f"b must have shape ({m},) to match A of shape {self.A.shape}, got {self.b.shape}")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """Return A z + b for each row of the continuous latent z (argument ``w``; shape (N, d) → (N, m))."""
        return np.asarray(w, dtype=float) @ self.A.T + self.b

    def __repr__(self) -> str:
        return f"AffineDecoder(A={self.A.tolist()}, b={self.b.tolist()})"


def _is_torch_module(obj) -> bool:
    torch = sys.modules.get("torch")  # a torch module cannot exist unless torch has been imported
    return torch is not None and isinstance(obj, torch.nn.Module)


class _TorchDecoder:
    """Wrap a ``torch.nn.Module`` as a numpy callable (float64 in and out, under ``torch.no_grad``)."""

    def __init__(self, module):
        self.module = module

    def __call__(self, w: np.ndarray) -> np.ndarray:
        import torch  # lazily: identkit.classical stays importable without torch

        params = list(self.module.parameters())
        dtype = params[0].dtype if params else torch.float64
        device = params[0].device if params else torch.device("cpu")
        with torch.no_grad():
            out = self.module(torch.as_tensor(np.asarray(w, dtype=float), dtype=dtype, device=device))
        return out.detach().to("cpu", torch.float64).numpy()

    def __repr__(self) -> str:
        return f"_TorchDecoder({self.module.__class__.__name__})"


def _as_decoder(decoder) -> Callable[[np.ndarray], np.ndarray]:
    if _is_torch_module(decoder):
        return _TorchDecoder(decoder)
    if not callable(decoder):
        raise ValueError("decoder must be a callable f(z) mapping continuous latents of shape (N, d) to means of "
                         f"shape (N, m), got {type(decoder).__name__}")
    return decoder


# ----------------------------------------------------------------------------------------------------------------
# Closed form for affine decoders (the reference the quadrature is tested against)
# ----------------------------------------------------------------------------------------------------------------
def affine_cluster_log_likelihood(x, means, covs, A, b, sigma) -> np.ndarray:
    r"""log p(x_i | w = k) for the affine decoder f(z) = A z + b, in closed form.

    x | w = k ~ N(A μ_k + b, A Σ_k Aᵀ + σ² I_m). Returns an array of shape (n, K).
    """
    means, covs = check_mixture(means, covs)
    dec = AffineDecoder(A, b)
    if dec.A.shape[1] != means.shape[1]:
        raise ValueError(f"A must have shape (m, {means.shape[1]}) to act on the continuous latent z of dimension "
                         f"d = {means.shape[1]}, got {dec.A.shape}")
    sigma = check_positive(sigma, "sigma")
    m = dec.A.shape[0]
    x = _check_x(x, m)
    out = np.empty((x.shape[0], means.shape[0]))
    for k, (mu, cov) in enumerate(zip(means, covs)):
        out[:, k] = multivariate_normal(dec(mu[None])[0], dec.A @ cov @ dec.A.T + sigma**2 * np.eye(m)).logpdf(x)
    return out


def affine_cluster_posterior(x, means, covs, A, b, sigma) -> np.ndarray:
    r"""p(w = k | x_i) ∝ p(x_i | w = k) for the affine decoder, in closed form; shape (n, K)."""
    ll = affine_cluster_log_likelihood(x, means, covs, A, b, sigma)
    return np.exp(ll - logsumexp(ll, axis=1, keepdims=True))


@dataclass(frozen=True)
class ClusterPosterior:
    """Everything :class:`GMVAE` infers about data x from one quadrature pass (:meth:`GMVAE.evaluate`).

    ``log_likelihood`` (n, K): log p(x_i | w = k); ``log_marginal`` (n,): log p(x_i); ``posterior`` (n, K):
    p(w = k | x_i); ``kl`` (n,): KL(p(w | x_i) ‖ Uniform(K)); ``quadrature_error`` and ``log_marginal_error``:
    the largest change of p(w | x_i) and of log p(x_i) on the last doubling of the order.
    """

    log_likelihood: np.ndarray
    log_marginal: np.ndarray
    posterior: np.ndarray
    kl: np.ndarray
    quadrature_error: float
    log_marginal_error: float


def _check_x(x, m: int) -> np.ndarray:
    arr = as_finite_array(x, "x", ndim=(1, 2))
    if arr.ndim == 1:
        if m != 1:
            raise ValueError(f"x must have shape (n, m) = (n, {m}), got {arr.shape}")
        arr = arr[:, None]
    if arr.shape[1] != m:
        raise ValueError(f"x must have shape (n, m) = (n, {m}), got {arr.shape}")
    return arr


# ----------------------------------------------------------------------------------------------------------------
# The adaptive rule: nodes placed where each integrand h_ik(z) = N(z; μ_k, Σ_k) N(x_i; f(z), σ² I) has its mass
# ----------------------------------------------------------------------------------------------------------------
_PILOT_ORDER = {1: 64, 2: 24}   # prior-centred pilot rule that locates the modes of h_ik (shared decoder calls)
_START_ORDER = {1: 8, 2: 6}     # first order of the adapted rule; doubled until converged
_MAX_ORDER = {1: 8192, 2: 128}
_MAX_MODES = 3                  # Laplace components per (i, k)
_MODE_WINDOW = 40.0             # a pilot local maximum this many nats below the best still seeds a mode
_NEGLIGIBLE_SHARE = 37.0        # modes with a Laplace mass below e^-37 ≈ 1e-16 of the largest are dropped
_GN_STEPS = 30
_ADAPT_CHUNK = 2**19            # cap on points x components x nodes per chunk of data


@dataclass(frozen=True)
class AdaptiveRule:
    r"""Per-(x_i, k) quadrature for p(x_i | w = k) = ∫ h_ik(z) dz, h_ik(z) = N(z; μ_k, Σ_k) N(x_i; f(z), σ² I).

    The integral is written with a mixture q_ik(z) = Σ_c π_c N(z; m_c, S_c) whose components sit on the modes
    of h_ik (Laplace approximations), and the partition of unity r_c = π_c N_c / q_ik:

    .. math:: ∫ h = Σ_c E_{N(m_c, S_c)}\big[h(z)\,π_c / q(z)\big]
              ≈ Σ_c Σ_j ω_j π^{-d/2}\, h(z_{cj})\, π_c / q(z_{cj}),\qquad z_{cj} = m_c + √2 L_c t_j,

    exact for every choice of q (only the accuracy of the Gauss–Hermite sums depends on it), with L_c L_cᵀ = S_c.
    With one component this is ordinary adaptive Gauss–Hermite (Liu & Pierce 1994); the mixture keeps every mode
    of a non-injective decoder (a fold sends two values of z to one x).

    Attributes
    ----------
    modes : array (n, K, C, d)
        Component means m_c.
    chol : array (n, K, C, d, d)
        Cholesky factors L_c of the component covariances S_c.
    log_share : array (n, K, C)
        log π_c (−inf for an unused slot).
    """

    modes: np.ndarray
    chol: np.ndarray
    log_share: np.ndarray

    def nodes(self, order: int, log_prior: Callable[[np.ndarray], np.ndarray]):
        r"""Nodes z (n, K, C, Q, d) and log weights (n, K, C, Q) such that
        p(x_i | w = k) ≈ Σ_{c,j} exp(logW_{ikcj}) N(x_i; f(z_{ikcj}), σ² I).

        ``log_prior(z)`` returns log N(z; μ_k, Σ_k) for z of shape (n, K, ..., d); logW = log ω_j − (d/2) log π
        + log N(z; μ_k, Σ_k) + log π_c − log q(z).
        """
        d = self.modes.shape[-1]
        t, logw = gauss_hermite_rule(d, order)
        w = self.modes[..., None, :] + np.sqrt(2.0) * np.einsum("nkcab,qb->nkcqa", self.chol, t)
        # log q(z) at every node: all components' densities at all nodes, (n, K, C, Q, C')
        logq = _logsumexp_last(self.log_share[:, :, None, None, :]
                               + _log_gauss(w[..., None, :], self.modes[:, :, None, None],
                                            self.chol[:, :, None, None]))
        with np.errstate(invalid="ignore"):  # unused slots: −inf − finite stays −inf
            logW = (logw - 0.5 * d * np.log(np.pi))[None, None, None] + log_prior(w) \
                + self.log_share[..., None] - logq
        return w, np.where(np.isfinite(self.log_share)[..., None], logW, -np.inf)


def _log_gauss(w, mean, chol):
    """log N(z; mean, L Lᵀ) at points z (argument ``w``), broadcasting over leading axes (z, mean: (..., d);
    chol: (..., d, d))."""
    d = w.shape[-1]
    r = w - mean
    if d == 1:
        sd = chol[..., 0, 0]
        return -0.5 * (r[..., 0] / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
    l11, l21, l22 = chol[..., 0, 0], chol[..., 1, 0], chol[..., 1, 1]
    y1 = r[..., 0] / l11
    y2 = (r[..., 1] - l21 * y1) / l22
    return -0.5 * (y1**2 + y2**2) - np.log(l11 * l22) - np.log(2 * np.pi)


def _logsumexp_last(a: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis (numpy only: scipy's logsumexp is slow for many short rows); −inf rows stay."""
    m = np.max(a, axis=-1)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - safe[..., None]), axis=-1)) + safe


def _posterior_change(ll: np.ndarray, ll_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per data point, max_k |Δ p(w = k | x)| and |Δ log p(x)| between two arrays of log p(x | w = k), (n, K)."""
    lm, lm_prev = logsumexp(ll, axis=1), logsumexp(ll_prev, axis=1)
    d_post = np.max(np.abs(np.exp(ll - lm[:, None]) - np.exp(ll_prev - lm_prev[:, None])), axis=1)
    with np.errstate(invalid="ignore"):
        d_marg = np.where(lm == lm_prev, 0.0, np.abs(lm - lm_prev))
    return d_post, d_marg


def _chol_2x2_or_1x1(h: np.ndarray) -> np.ndarray:
    """Cholesky factors of the inverses of a stack of positive-definite (…, d, d) matrices (d ≤ 2)."""
    return np.linalg.cholesky(np.linalg.inv(h))


def adaptive_rule(model: "GMVAE", x: np.ndarray) -> AdaptiveRule:
    r"""Locate the mass of every integrand h_ik(z) = N(z; μ_k, Σ_k) N(x_i; f(z), σ² I) and return its rule.

    1. A prior-centred pilot rule (order 64 for d = 1, 24 × 24 for d = 2; the decoder is evaluated once per node,
       shared by all x_i) gives log h_ik at the pilot nodes; its local maxima within 40 nats of the best (at most
       three) seed the modes, so two modes of a fold are both found.
    2. Each seed is refined by damped Gauss–Newton on φ(z) = −log h_ik(z) (decoder Jacobian by central
       differences, so any callable f works), with steps halved until φ decreases.
    3. The component covariance is the inverse of the Hessian of φ at the mode: the finite-difference Hessian when
       it is less curved than the Gauss–Newton one P_k + JᵀJ/σ² (a wider rule is the safe side) but more curved
       than P_k/2 (a rule much wider than the prior wastes its nodes), else the Gauss–Newton one. Seeds that
       reach the same mode (within 0.1 sd) are merged, modes with a mass below 1e-16 of the largest dropped; the
       shares π_c are the Laplace masses exp(−φ(m_c)) |S_c|^{1/2}. (A component with a share many orders of
       magnitude below another's, such as a safety copy of the prior, makes its partner's integrand h π_c / q jump
       by that ratio where the two densities cross, and ruins the convergence: so there is none.)
    """
    x = _check_x(x, model.m)
    n, K, d = x.shape[0], model.K, model.d
    C = _MAX_MODES
    modes = np.zeros((n, K, C, d))
    chol = np.tile(np.eye(d), (n, K, C, 1, 1))
    log_share = np.full((n, K, C), -np.inf)
    w_pilot, _ = cluster_nodes(model.means, model.covs, _PILOT_ORDER[d])
    f_pilot, _ = model._nodes(_PILOT_ORDER[d])
    for k in range(K):
        lh = model._log_prior_k(w_pilot[k], k)[None] + model._log_lik(x[:, None, :], f_pilot[k][None])  # (n, Q)
        starts, valid = _pilot_maxima(lh, d, _MAX_MODES)
        wk = w_pilot[k][starts]  # (n, M, d)
        xs = np.broadcast_to(x[:, None, :], (n, _MAX_MODES, model.m)).reshape(-1, model.m)
        m_k, phi, H = _gauss_newton(model, k, xs, wk.reshape(-1, d))
        m_k, phi, H = m_k.reshape(n, _MAX_MODES, d), phi.reshape(n, _MAX_MODES), H.reshape(n, _MAX_MODES, d, d)
        L = _chol_2x2_or_1x1(H)
        logdetS = 2 * np.log(np.abs(np.diagonal(L, axis1=-2, axis2=-1))).sum(-1)
        lmass = -phi + 0.5 * logdetS + 0.5 * d * np.log(2 * np.pi)
        ok = valid & np.isfinite(lmass)
        # merge seeds that reached the same mode (within 0.1 sd in the better one's metric)
        for a in range(_MAX_MODES):
            for b in range(a):
                r = m_k[:, a] - m_k[:, b]
                y = np.linalg.solve(L[:, b], r[..., None])[..., 0]
                ok[:, a] &= ~(ok[:, b] & (np.sum(y**2, -1) < 1e-2))
        lmass = np.where(ok, lmass, -np.inf)
        # a mode with a negligible share covers negligible mass: keeping it only slows the glued rule down
        lmass[lmass < lmass.max(axis=1, keepdims=True) - _NEGLIGIBLE_SHARE] = -np.inf
        modes[:, k], chol[:, k] = m_k, L
        log_share[:, k] = lmass - logsumexp(lmass, axis=1)[:, None]
    # slots in order of share, then as many as the busiest (i, k) needs (mostly one: a unimodal integrand)
    order = np.argsort(-log_share, axis=-1, kind="stable")
    log_share = np.take_along_axis(log_share, order, axis=-1)
    modes = np.take_along_axis(modes, order[..., None], axis=2)
    chol = np.take_along_axis(chol, order[..., None, None], axis=2)
    used = max(1, int(np.max(np.sum(np.isfinite(log_share), axis=-1))))
    return AdaptiveRule(modes[:, :, :used], chol[:, :, :used], log_share[:, :, :used])


def _pilot_maxima(lh: np.ndarray, d: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, top) of the largest local maxima of log h on the pilot grid and whether each is a real seed."""
    n, Q = lh.shape
    if d == 1:
        pad = np.pad(lh, ((0, 0), (1, 1)), constant_values=-np.inf)
        is_max = (lh >= pad[:, :-2]) & (lh >= pad[:, 2:])
    else:
        q = int(round(np.sqrt(Q)))
        g = lh.reshape(n, q, q)
        pad = np.pad(g, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
        is_max = ((g >= pad[:, :-2, 1:-1]) & (g >= pad[:, 2:, 1:-1]) & (g >= pad[:, 1:-1, :-2])
                  & (g >= pad[:, 1:-1, 2:])).reshape(n, Q)
    best = lh.max(axis=1, keepdims=True)
    score = np.where(is_max & (lh >= best - _MODE_WINDOW), lh, -np.inf)
    idx = np.argsort(-score, axis=1, kind="stable")[:, :top]
    valid = np.isfinite(np.take_along_axis(score, idx, axis=1))
    valid[:, 0] = True  # the best node always seeds a mode
    return idx, valid


def _gauss_newton(model: "GMVAE", k: int, x: np.ndarray, w: np.ndarray):
    """Minimise φ(z) = −log N(z; μ_k, Σ_k) − log N(x; f(z), σ² I) from the starting points z (argument ``w``,
    shape (N, d)); return (mode, φ, Hessian)."""
    prec = model._prec[k]
    w = w.copy()
    f = model._decode(w)
    phi = -model._log_prior_k(w, k) - model._log_lik(x, f)
    active = np.arange(w.shape[0])  # points still moving
    for _ in range(_GN_STEPS):
        wa, fa, xa = w[active], f[active], x[active]
        J, _ = _fd_jacobian(model, wa)
        grad = (wa - model.means[k]) @ prec - np.einsum("nma,nm->na", J, (xa - fa) / model.sigma**2)
        H = prec + np.einsum("nma,nmb->nab", J, J) / model.sigma**2
        step = -np.linalg.solve(H, grad[..., None])[..., 0]
        size = np.sqrt(np.einsum("na,nab,nb->n", step, H, step))
        keep = size >= 1e-9  # a Newton decrement this small: at the mode
        active, step, size = active[keep], step[keep], size[keep]
        if not active.size:
            break
        t = np.ones(active.size)
        moved = np.zeros(active.size, bool)
        todo = np.arange(active.size)
        for _ in range(12):  # halve the step until φ does not increase
            gi = active[todo]
            w_try = w[gi] + t[todo, None] * step[todo]
            f_try = model._decode(w_try)
            phi_try = -model._log_prior_k(w_try, k) - model._log_lik(x[gi], f_try)
            better = phi_try <= phi[gi]
            w[gi[better]], f[gi[better]], phi[gi[better]] = w_try[better], f_try[better], phi_try[better]
            moved[todo[better]] = True
            todo = todo[~better]
            t[todo] *= 0.5
            if not todo.size:
                break
        active = active[moved]
        if not active.size:
            break
    J, _ = _fd_jacobian(model, w)
    H_gn = prec + np.einsum("nma,nmb->nab", J, J) / model.sigma**2
    H_fd = _fd_hessian(lambda w_: -model._log_prior_k(w_, k) - model._log_lik(x, model._decode(w_)), w, phi,
                       model._scale)
    # the broader of the two, but never broader than twice the prior's variance
    ev = np.linalg.eigvalsh(H_fd - 0.5 * prec)
    use_fd = np.all(ev > 0, axis=-1) & (np.linalg.det(H_fd) <= np.linalg.det(H_gn))
    return w, phi, np.where(use_fd[:, None, None], H_fd, H_gn)


def _fd_jacobian(model: "GMVAE", w: np.ndarray):
    """Central-difference Jacobian of the decoder at z (argument ``w``), (N, m, d), with steps
    1e-6 · max(prior sd, |z|)."""
    N, d = w.shape
    h = 1e-6 * np.maximum(model._scale, np.abs(w))
    J = np.empty((N, model.m, d))
    for a in range(d):
        e = np.zeros(d)
        e[a] = 1.0
        fp, fm = model._decode(w + h[:, a:a + 1] * e), model._decode(w - h[:, a:a + 1] * e)
        J[:, :, a] = (fp - fm) / (2 * h[:, a:a + 1])
    return J, h


def _fd_hessian(phi_of, w: np.ndarray, phi0: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Central second differences of φ at z (argument ``w``, shape (N, d)) → (N, d, d), steps
    1e-4 · max(prior sd, |z|)."""
    N, d = w.shape
    h = 1e-4 * np.maximum(scale, np.abs(w))
    H = np.empty((N, d, d))
    eye = np.eye(d)
    for a in range(d):
        ha = h[:, a:a + 1] * eye[a]
        H[:, a, a] = (phi_of(w + ha) - 2 * phi0 + phi_of(w - ha)) / h[:, a] ** 2
        for b in range(a):
            hb = h[:, b:b + 1] * eye[b]
            H[:, a, b] = H[:, b, a] = (phi_of(w + ha + hb) - phi_of(w + ha - hb) - phi_of(w - ha + hb)
                                       + phi_of(w - ha - hb)) / (4 * h[:, a] * h[:, b])
    return H


# ----------------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------------
class GMVAE:
    r"""Gaussian-mixture VAE with a fixed decoder and its exact cluster posterior.

    w ~ Categorical(1/K), z | w = k ~ N(μ_k, Σ_k), x | z ~ N(f(z), σ² I_m), with w the cluster label and z the
    continuous latent (the module docstring explains the letters; in the code ``z`` holds labels, ``w`` latents).

    Parameters
    ----------
    means : array of shape (K, d)
        Cluster means μ_k, d ∈ {1, 2} (shape (K,) is read as d = 1).
    covs : array of shape (K, d, d)
        Positive-definite cluster covariances Σ_k (shape (K,) is read as variances for d = 1).
    decoder : callable
        f mapping an array of shape (N, d) to an array of shape (N, m) (finite). A ``torch.nn.Module`` is
        wrapped: inputs are passed as float64 tensors (or the module's parameter dtype) under ``no_grad``
        and outputs returned as float64 numpy arrays.
    sigma : float
        Observation noise standard deviation σ > 0.
    order : int, optional
        None (default): the adaptive rule (:func:`adaptive_rule`), its order doubled per data point until
        neither p(w = k | x_i) (any k) nor log p(x_i) changes by more than ``tol``. (log p(x_i | w = k) of a
        cluster whose posterior weight is negligible is accurate only to what that weight needs.) An int: the
        prior-centred Gauss–Hermite rule with that many nodes per latent dimension, for all data (fast, shared
        decoder calls, but blind to a likelihood narrower than its node spacing; check it with
        :meth:`quadrature_error`).
    tol : float, optional
        Tolerance of the adaptive rule (default :data:`DEFAULT_TOL` = 1e-8): the largest change, on doubling
        the order, allowed for p(w = k | x_i) and for log p(x_i).
    max_order : int, optional
        Highest order the adaptive rule may reach (default 8192 for d = 1, 128 for d = 2);
        :class:`QuadratureError` is raised, naming ``tol`` and ``max_order``, when it does not converge there.

    Notes
    -----
    Gauss–Hermite converges fast for smooth integrands. A decoder with a kink (the fold |z|) makes h_ik
    non-smooth at the kink, and the adaptive rule may then stop with :class:`QuadratureError`; for such folds
    a fixed ``order`` is the right tool when the point is symmetry (its nodes are mirror-symmetric, so a
    symmetric fold gives bit-for-bit equal cluster likelihoods and p(w|x) = 1/K exactly).

    The adaptive rule evaluates the decoder at about n·K·(C·Q + 40) points (C ≤ 3 mixture components of Q
    nodes each, plus the mode search); the fixed rule at K·order^d points, cached.
    """

    def __init__(self, means, covs, decoder, sigma, *, order: int | None = None, tol: float = DEFAULT_TOL,
                 max_order: int | None = None):
        self.means, self.covs = check_mixture(means, covs)
        self.K, self.d = self.means.shape
        self.sigma = check_positive(sigma, "sigma")
        self.order = None if order is None else check_int(order, "order", minimum=1)
        self.tol = check_positive(tol, "tol")
        self.max_order = _MAX_ORDER[self.d] if max_order is None else check_int(max_order, "max_order", minimum=2)
        self.decoder = _as_decoder(decoder)
        self._chol = np.linalg.cholesky(self.covs)
        self._prec = np.linalg.inv(self.covs)
        self._scale = np.sqrt(np.max(np.diagonal(self.covs, axis1=1, axis2=2), axis=0))  # (d,)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._last_change: dict[str, np.ndarray] | None = None
        # Evaluate f at the nodes now: this validates the decoder and fixes m.
        self.m = self._decode(self.means[:1], check_m=False).shape[1]
        self._nodes(self.order or DEFAULT_ORDER[self.d])

    # -- decoder -------------------------------------------------------------------------------------------------
    def _decode(self, w: np.ndarray, *, check_m: bool = True) -> np.ndarray:
        try:
            out = self.decoder(w)
        except Exception as exc:  # a decoder that cannot take (N, d) input is a bad argument
            raise ValueError(f"decoder failed on an input of shape {w.shape}: {exc!r}") from exc
        try:
            out = np.asarray(out, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"decoder must return a numeric array, got {type(out).__name__}") from exc
        n = w.shape[0]
        if out.ndim == 1 and out.shape[0] == n:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != n or (check_m and out.shape[1] != self.m):
            want = f"({n}, m)" if not check_m else f"({n}, {self.m})"
            raise ValueError(f"decoder must map shape ({n}, {self.d}) to shape {want}, got {out.shape}")
        if out.shape[1] < 1:
            raise ValueError("decoder must return at least one output dimension (m >= 1)")
        if not np.all(np.isfinite(out)):
            raise ValueError("decoder returned NaN or infinite values")
        return out

    def _nodes(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        """(f at the nodes, shape (K, Q, m); log weights, shape (Q,)), cached per order."""
        order = check_int(order, "order", minimum=1)
        if order not in self._cache:
            w, logw = cluster_nodes(self.means, self.covs, order)
            fw = self._decode(w.reshape(-1, self.d)).reshape(self.K, -1, self.m)
            self._cache[order] = (fw, logw)
        return self._cache[order]

    def node_locations(self, order: int | None = None) -> np.ndarray:
        """The prior-centred nodes z_{kj} = μ_k + √2 L_k t_j, shape (K, order**d, d) (default: the model's fixed
        order, or :data:`DEFAULT_ORDER` for an adaptive model)."""
        order = order or self.order or DEFAULT_ORDER[self.d]
        return cluster_nodes(self.means, self.covs, order)[0]

    # -- sampling ------------------------------------------------------------------------------------------------
    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw n i.i.d. triples from the model.

        Returns the tuple ``(x, w, z)`` in the code's letters: ``x`` (n, m); ``w`` (n, d), the continuous latents
        z; and ``z`` (n,), the cluster labels w. In the tutorial's notation w ~ Categorical(1/K),
        z = μ_w + L_w ε, x = f(z) + σ η (ε, η standard normal), all from ``np.random.default_rng(seed)``.
        """
        n = check_int(n, "n", minimum=1)
        rng = np.random.default_rng(check_seed(seed))
        z = rng.integers(self.K, size=n)
        w = self.means[z] + np.einsum("nab,nb->na", self._chol[z], rng.standard_normal((n, self.d)))
        x = self._decode(w) + self.sigma * rng.standard_normal((n, self.m))
        return x, w, z

    # -- densities used by the adaptive rule ---------------------------------------------------------------------
    def _log_prior_k(self, w: np.ndarray, k: int) -> np.ndarray:
        """log N(z; μ_k, Σ_k) for the continuous latent z (argument ``w``) of shape (..., d)."""
        return _log_gauss(w, self.means[k], self._chol[k])

    def _log_prior_all(self, w: np.ndarray) -> np.ndarray:
        """log N(z; μ_k, Σ_k) for the continuous latent z (argument ``w``) of shape (n, K, ..., d), cluster k on
        axis 1."""
        extra = w.ndim - 3
        shape = (1, self.K) + (1,) * extra
        return _log_gauss(w, self.means.reshape(shape + (self.d,)), self._chol.reshape(shape + (self.d, self.d)))

    def _log_lik(self, x: np.ndarray, fw: np.ndarray) -> np.ndarray:
        """log N(x; f(z), σ² I_m), broadcasting x against ``fw`` = f(z) (last axis m)."""
        return -0.5 * np.sum((x - fw) ** 2, axis=-1) / self.sigma**2 - 0.5 * self.m * np.log(2 * np.pi * self.sigma**2)

    def _adapted_log_likelihood(self, x: np.ndarray, rule: AdaptiveRule, order: int) -> np.ndarray:
        """log p(x_i | w = k) with the adapted rule of ``order``; shape (n, K)."""
        w, logW = rule.nodes(order, self._log_prior_all)
        used = np.isfinite(logW)  # unused mixture slots are never decoded
        idx = np.nonzero(used)
        terms = np.full(logW.shape, -np.inf)
        terms[idx] = logW[idx] + self._log_lik(x[idx[0]], self._decode(w[idx]))
        return _logsumexp_last(terms.reshape(terms.shape[0], self.K, -1))

    def _adaptive(self, x: np.ndarray) -> np.ndarray:
        """The adaptive rule with order doubling per data point (see the class docstring)."""
        n = x.shape[0]
        out = np.empty((n, self.K))
        self._last_change = {"posterior": np.zeros(n), "log_marginal": np.zeros(n), "order": np.zeros(n, int)}
        q0 = _START_ORDER[self.d]
        per_point = self.K * _MAX_MODES * (2 * q0) ** self.d
        chunk = max(1, _ADAPT_CHUNK // per_point)
        for start in range(0, n, chunk):
            xc = x[start:start + chunk]
            rule = adaptive_rule(self, xc)
            q = q0
            prev = self._adapted_log_likelihood(xc, rule, q)
            todo = np.arange(xc.shape[0])
            while todo.size:
                q *= 2
                if q > self.max_order:
                    worst = max(self._last_change["posterior"][start + todo].max(),
                                self._last_change["log_marginal"][start + todo].max())
                    raise QuadratureError(
                        f"adaptive Gauss–Hermite did not reach tol={self.tol:g} for {todo.size} of {xc.shape[0]} "
                        f"data points by max_order={self.max_order} (largest change on the last doubling: "
                        f"{worst:.2g}); raise max_order, loosen tol, or pass a fixed order= (a decoder with a "
                        f"kink, such as |w|, makes the integrand non-smooth, and Gauss–Hermite then converges "
                        f"only slowly)")
                sub = AdaptiveRule(rule.modes[todo], rule.chol[todo], rule.log_share[todo])
                cur = self._adapted_log_likelihood(xc[todo], sub, q)
                d_post, d_marg = _posterior_change(cur, prev[todo])
                out[start + todo] = cur
                self._last_change["posterior"][start + todo] = d_post
                self._last_change["log_marginal"][start + todo] = d_marg
                self._last_change["order"][start + todo] = q
                prev[todo] = cur
                todo = todo[(d_post > self.tol) | (d_marg > self.tol)]
        return out

    # -- exact inference -----------------------------------------------------------------------------------------
    def cluster_log_likelihood(self, x, order: int | None = None) -> np.ndarray:
        r"""log p(x_i | w = k) = log ∫ N(z; μ_k, Σ_k) N(x_i; f(z), σ² I) dz by Gauss–Hermite; shape (n, K).

        ``order=None`` (and the model's own order None): the adaptive rule, to ``tol``. A fixed order: the
        prior-centred rule, logsumexp_j [log ω_j − (d/2) log π + log N(x_i; f(z_{kj}), σ² I)].
        """
        x = _check_x(x, self.m)
        order = self.order if order is None else check_int(order, "order", minimum=1)
        if order is None:
            return self._adaptive(x)
        fw, logw = self._nodes(order)
        K, Q, m = fw.shape
        const = -0.5 * m * np.log(2 * np.pi * self.sigma**2)
        out = np.empty((x.shape[0], K))
        chunk = max(1, _CHUNK_ELEMENTS // (K * Q * m))
        for start in range(0, x.shape[0], chunk):
            xc = x[start:start + chunk]
            sq = np.sum((xc[:, None, None, :] - fw[None]) ** 2, axis=-1)  # (n_c, K, Q)
            out[start:start + chunk] = logsumexp(logw - 0.5 * sq / self.sigma**2, axis=-1) + const
        return out

    def log_marginal(self, x, order: int | None = None) -> np.ndarray:
        r"""log p(x_i) = logsumexp_k log p(x_i | w = k) − log K, shape (n,)."""
        return logsumexp(self.cluster_log_likelihood(x, order), axis=1) - np.log(self.K)

    def log_cluster_posterior(self, x, order: int | None = None) -> np.ndarray:
        r"""log p(w = k | x_i) = log p(x_i | w = k) − logsumexp_k' log p(x_i | w = k'), shape (n, K)."""
        ll = self.cluster_log_likelihood(x, order)
        return ll - logsumexp(ll, axis=1, keepdims=True)

    def cluster_posterior(self, x, order: int | None = None) -> np.ndarray:
        r"""The exact (up to quadrature) cluster posterior p(w = k | x_i), shape (n, K); rows sum to 1."""
        return np.exp(self.log_cluster_posterior(x, order))

    def kl_to_prior(self, x, order: int | None = None) -> np.ndarray:
        r"""KL(p(w | x_i) ‖ Uniform(K)) = Σ_k p_k log(K p_k) = log K − H(p(w | x_i)) per data point, shape (n,).

        Zero exactly when the posterior has collapsed to the prior; at most log K.
        """
        p = self.cluster_posterior(x, order)
        # kl_div(p, q) = p log(p/q) − p + q ≥ 0 termwise and Σ_k (q − p) = 0: the sum is KL, never < 0
        return kl_div(p, 1.0 / self.K).sum(axis=1)

    def evaluate(self, x, order: int | None = None, *, errors: bool = True) -> ClusterPosterior:
        r"""One quadrature pass over x and all that follows from it (:class:`ClusterPosterior`).

        The same numbers as :meth:`cluster_log_likelihood`, :meth:`log_marginal`, :meth:`cluster_posterior`,
        :meth:`kl_to_prior`, :meth:`quadrature_error` and :meth:`log_marginal_error`, each of which integrates
        anew: with the adaptive rule this costs one pass instead of six (a fixed order: two, the second at twice
        the order for the error estimates; ``errors=False`` skips it and reports NaN errors).
        """
        order = self.order if order is None else check_int(order, "order", minimum=1)
        ll = self.cluster_log_likelihood(x, order)
        if order is None:
            q_err = float(np.max(self._last_change["posterior"], initial=0.0))
            m_err = float(np.max(self._last_change["log_marginal"], initial=0.0))
        elif errors:
            d_post, d_marg = _posterior_change(self.cluster_log_likelihood(x, 2 * order), ll)
            q_err, m_err = float(np.max(d_post, initial=0.0)), float(np.max(d_marg, initial=0.0))
        else:
            q_err = m_err = float("nan")
        lm = logsumexp(ll, axis=1) - np.log(self.K)
        post = np.exp(ll - logsumexp(ll, axis=1, keepdims=True))
        return ClusterPosterior(ll, lm, post, kl_div(post, 1.0 / self.K).sum(axis=1), q_err, m_err)

    def quadrature_error(self, x, order: int | None = None) -> float:
        r"""Estimated error of :meth:`cluster_posterior`: max_{i,k} of the change of p(w = k | x_i) on doubling
        the order (fixed rule: |p_order − p_{2·order}|; adaptive rule: each x_i's last doubling, ≤ ``tol``)."""
        order = self.order if order is None else check_int(order, "order", minimum=1)
        if order is None:
            self.cluster_log_likelihood(x)
            return float(np.max(self._last_change["posterior"]))
        return float(np.max(np.abs(self.cluster_posterior(x, order) - self.cluster_posterior(x, 2 * order))))

    def log_marginal_error(self, x, order: int | None = None) -> float:
        r"""Estimated error of :meth:`log_marginal`: max_i of the change of log p(x_i) on doubling the order
        (adaptive rule: each x_i's last doubling, ≤ ``tol``)."""
        order = self.order if order is None else check_int(order, "order", minimum=1)
        if order is None:
            self.cluster_log_likelihood(x)
            return float(np.max(self._last_change["log_marginal"]))
        return float(np.max(np.abs(self.log_marginal(x, order) - self.log_marginal(x, 2 * order))))

    def __repr__(self) -> str:
        rule = f"order={self.order}" if self.order else f"adaptive, tol={self.tol:g}"
        return (f"GMVAE(K={self.K}, d={self.d}, m={self.m}, sigma={self.sigma:g}, {rule}, "
                f"decoder={self.decoder!r})")
