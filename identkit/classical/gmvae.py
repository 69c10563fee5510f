r"""Gaussian-mixture VAE with the **exact** cluster posterior p(z | x), by Gauss–Hermite quadrature over w.

The model of the talk (Wang, Blei & Cunningham 2021)::

    z_i ~ Categorical(1/K),   w_i | z_i ~ N(μ_{z_i}, Σ_{z_i}),   x_i | w_i ~ N(f(w_i), σ² I_m),

with w ∈ R^d (d ∈ {1, 2}) and any decoder f: R^d → R^m. The cluster label z is the latent whose
identifiability is at stake: z is non-identifiable at f exactly when p(x | z = k) is the same for every k,
and then (Bayes) p(z | x) = 1/K for every x — posterior collapse with exact inference.

The per-cluster marginal

.. math:: p(x | z = k) = ∫ N(w; μ_k, Σ_k) N(x; f(w), σ² I_m) dw

is computed by the Gauss–Hermite rule transformed by the Cholesky factor L_k of Σ_k (tensor grid for d = 2):
with Hermite nodes t_j and weights ω_j (``numpy.polynomial.hermite.hermgauss``),

.. math:: p(x | z = k) ≈ π^{-d/2} Σ_j ω_j N(x; f(μ_k + √2 L_k t_j), σ² I_m),

evaluated in log space (logsumexp over nodes, then over k). For an affine f(w) = A w + b the marginal is
Gaussian in closed form, x | z = k ~ N(A μ_k + b, A Σ_k Aᵀ + σ² I) (:func:`affine_cluster_log_likelihood`).
"""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np
from numpy.polynomial.hermite import hermgauss
from scipy.special import kl_div, logsumexp, roots_hermite
from scipy.stats import multivariate_normal

from .._checks import as_finite_array, check_int, check_positive, check_psd, check_seed

__all__ = [
    "GMVAE",
    "AffineDecoder",
    "gauss_hermite_rule",
    "cluster_nodes",
    "affine_cluster_log_likelihood",
    "affine_cluster_posterior",
    "DEFAULT_ORDER",
]

#: Default Gauss–Hermite order per latent dimension (d = 1: 96 nodes; d = 2: 48 × 48 = 2 304 nodes per cluster).
DEFAULT_ORDER = {1: 96, 2: 48}
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
    r"""Tensor Gauss–Hermite rule for ∫ e^{-|t|²} g(t) dt over R^d.

    Returns nodes ``t`` of shape (order**d, d) and ``log ω`` of shape (order**d,), the log of the product
    weights (``numpy.polynomial.hermite.hermgauss``; ``scipy.special.roots_hermite`` above order 150, where
    numpy's recursion overflows). Nodes and weights are exactly symmetric (numpy symmetrises them), which makes symmetric
    fold decoders give bit-for-bit equal cluster likelihoods.
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
        return t[:, None], logw
    t1, t2 = np.meshgrid(t, t, indexing="ij")
    l1, l2 = np.meshgrid(logw, logw, indexing="ij")
    return np.stack([t1.ravel(), t2.ravel()], axis=1), (l1 + l2).ravel()


def cluster_nodes(means: np.ndarray, covs: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Quadrature nodes in w-space for every cluster and the shared normalised log weights.

    Returns ``w`` of shape (K, Q, d) with w_{kj} = μ_k + √2 L_k t_j (L_k the Cholesky factor of Σ_k) and
    ``log_weights`` of shape (Q,) equal to log ω_j − (d/2) log π, so that
    E_{N(μ_k, Σ_k)}[g(w)] ≈ Σ_j exp(log_weights_j) g(w_{kj}).
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
    r"""The affine decoder f(w) = A w + b (A of shape (m, d), b of shape (m,)), for which
    p(x | z = k) = N(x; A μ_k + b, A Σ_k Aᵀ + σ² I) in closed form."""

    def __init__(self, A, b=None):
        self.A = as_finite_array(A, "A", ndim=2)
        m = self.A.shape[0]
        self.b = np.zeros(m) if b is None else as_finite_array(b, "b", ndim=1)
        if self.b.shape != (m,):
            raise ValueError(f"b must have shape ({m},) to match A of shape {self.A.shape}, got {self.b.shape}")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """Return A w + b for each row of ``w`` (shape (N, d) → (N, m))."""
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
        raise ValueError(f"decoder must be a callable f(w) of shape (N, d) → (N, m), got {type(decoder).__name__}")
    return decoder


# ----------------------------------------------------------------------------------------------------------------
# Closed form for affine decoders (the reference the quadrature is tested against)
# ----------------------------------------------------------------------------------------------------------------
def affine_cluster_log_likelihood(x, means, covs, A, b, sigma) -> np.ndarray:
    r"""log p(x_i | z = k) for the affine decoder f(w) = A w + b, in closed form.

    x | z = k ~ N(A μ_k + b, A Σ_k Aᵀ + σ² I_m). Returns an array of shape (n, K).
    """
    means, covs = check_mixture(means, covs)
    dec = AffineDecoder(A, b)
    if dec.A.shape[1] != means.shape[1]:
        raise ValueError(f"A must have shape (m, {means.shape[1]}) to act on w of dimension d, got {dec.A.shape}")
    sigma = check_positive(sigma, "sigma")
    m = dec.A.shape[0]
    x = _check_x(x, m)
    out = np.empty((x.shape[0], means.shape[0]))
    for k, (mu, cov) in enumerate(zip(means, covs)):
        out[:, k] = multivariate_normal(dec(mu[None])[0], dec.A @ cov @ dec.A.T + sigma**2 * np.eye(m)).logpdf(x)
    return out


def affine_cluster_posterior(x, means, covs, A, b, sigma) -> np.ndarray:
    r"""p(z = k | x_i) ∝ p(x_i | z = k) for the affine decoder, in closed form; shape (n, K)."""
    ll = affine_cluster_log_likelihood(x, means, covs, A, b, sigma)
    return np.exp(ll - logsumexp(ll, axis=1, keepdims=True))


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
# The model
# ----------------------------------------------------------------------------------------------------------------
class GMVAE:
    r"""Gaussian-mixture VAE with a fixed decoder and its exact cluster posterior.

    z ~ Categorical(1/K), w | z = k ~ N(μ_k, Σ_k), x | w ~ N(f(w), σ² I_m).

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
        Gauss–Hermite nodes per latent dimension (default :data:`DEFAULT_ORDER`: 96 for d = 1, 48 for d = 2).

    Notes
    -----
    The decoder is evaluated once per quadrature order at the K·order^d nodes and cached. Check the rule with
    :meth:`quadrature_error`; quadrature is accurate when the decoder's image of the node spacing
    (≈ √(2/order) π/2 prior standard deviations near the centre) is small compared with σ.
    """

    def __init__(self, means, covs, decoder, sigma, *, order: int | None = None):
        self.means, self.covs = check_mixture(means, covs)
        self.K, self.d = self.means.shape
        self.sigma = check_positive(sigma, "sigma")
        self.order = DEFAULT_ORDER[self.d] if order is None else check_int(order, "order", minimum=1)
        self.decoder = _as_decoder(decoder)
        self._chol = np.linalg.cholesky(self.covs)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Evaluate f at the nodes now: this validates the decoder and fixes m.
        self.m = self._decode(self.means[:1], check_m=False).shape[1]
        self._nodes(self.order)

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
        """The quadrature nodes w_{kj} = μ_k + √2 L_k t_j, shape (K, order**d, d)."""
        return cluster_nodes(self.means, self.covs, self.order if order is None else order)[0]

    # -- sampling ------------------------------------------------------------------------------------------------
    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw n i.i.d. triples from the model.

        Returns ``x`` (n, m), ``w`` (n, d) and ``z`` (n,) with z ~ Categorical(1/K),
        w = μ_z + L_z ε, x = f(w) + σ η (ε, η standard normal), all from ``np.random.default_rng(seed)``.
        """
        n = check_int(n, "n", minimum=1)
        rng = np.random.default_rng(check_seed(seed))
        z = rng.integers(self.K, size=n)
        w = self.means[z] + np.einsum("nab,nb->na", self._chol[z], rng.standard_normal((n, self.d)))
        x = self._decode(w) + self.sigma * rng.standard_normal((n, self.m))
        return x, w, z

    # -- exact inference -----------------------------------------------------------------------------------------
    def cluster_log_likelihood(self, x, order: int | None = None) -> np.ndarray:
        r"""log p(x_i | z = k) = log ∫ N(w; μ_k, Σ_k) N(x_i; f(w), σ² I) dw by Gauss–Hermite; shape (n, K).

        Computed as logsumexp_j [log ω_j − (d/2) log π + log N(x_i; f(w_{kj}), σ² I)].
        """
        x = _check_x(x, self.m)
        fw, logw = self._nodes(self.order if order is None else order)
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
        r"""log p(x_i) = logsumexp_k log p(x_i | z = k) − log K, shape (n,)."""
        return logsumexp(self.cluster_log_likelihood(x, order), axis=1) - np.log(self.K)

    def log_cluster_posterior(self, x, order: int | None = None) -> np.ndarray:
        r"""log p(z = k | x_i) = log p(x_i | z = k) − logsumexp_k' log p(x_i | z = k'), shape (n, K)."""
        ll = self.cluster_log_likelihood(x, order)
        return ll - logsumexp(ll, axis=1, keepdims=True)

    def cluster_posterior(self, x, order: int | None = None) -> np.ndarray:
        r"""The exact (up to quadrature) cluster posterior p(z = k | x_i), shape (n, K); rows sum to 1."""
        return np.exp(self.log_cluster_posterior(x, order))

    def kl_to_prior(self, x, order: int | None = None) -> np.ndarray:
        r"""KL(p(z | x_i) ‖ Uniform(K)) = Σ_k p_k log(K p_k) = log K − H(p(z | x_i)) per data point, shape (n,).

        Zero exactly when the posterior has collapsed to the prior; at most log K.
        """
        p = self.cluster_posterior(x, order)
        # kl_div(p, q) = p log(p/q) − p + q ≥ 0 termwise and Σ_k (q − p) = 0: the sum is KL, never < 0
        return kl_div(p, 1.0 / self.K).sum(axis=1)

    def quadrature_error(self, x, order: int | None = None) -> float:
        r"""max_{i,k} |p_order(z = k | x_i) − p_{2·order}(z = k | x_i)|: the change of the posterior when the
        Gauss–Hermite order doubles, an estimate of the quadrature error of :meth:`cluster_posterior`."""
        order = self.order if order is None else check_int(order, "order", minimum=1)
        return float(np.max(np.abs(self.cluster_posterior(x, order) - self.cluster_posterior(x, 2 * order))))

    def log_marginal_error(self, x, order: int | None = None) -> float:
        r"""max_i |log p_order(x_i) − log p_{2·order}(x_i)|: the quadrature error of :meth:`log_marginal`."""
        order = self.order if order is None else check_int(order, "order", minimum=1)
        return float(np.max(np.abs(self.log_marginal(x, order) - self.log_marginal(x, 2 * order))))

    def __repr__(self) -> str:
        return (f"GMVAE(K={self.K}, d={self.d}, m={self.m}, sigma={self.sigma:g}, order={self.order}, "
                f"decoder={self.decoder!r})")
