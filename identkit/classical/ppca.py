r"""Probabilistic PCA with its exact, closed-form Gaussian posterior (numpy/scipy only).

The model has one **local** latent per data point:

.. math::

    z_i \sim \mathcal N(0, I_K), \qquad x_i \mid z_i \sim \mathcal N(W z_i, \sigma^2 I_D),
    \qquad W \in \mathbb R^{D\times K}.

With W and σ known the posterior is Gaussian in closed form,

.. math::

    z_i \mid x_i \sim \mathcal N\big(M^{-1} W^\top x_i,\; \sigma^2 M^{-1}\big), \qquad M = W^\top W + \sigma^2 I_K,

computed here with one Cholesky factorisation of the K×K matrix M (no explicit inverse of anything that is
applied to data). The covariance does not depend on x_i.

The non-identifiability theorem in this model: if W u = 0 for a unit vector u (a direction of z that the
likelihood cannot see), then uᵀz | x ~ N(0, 1) = its prior, exactly, for every x. A zero column k of W is the
special case u = e_k (coordinate z_k collapses); W = [w, w] is the case u = (1, −1)/√2 (a *direction* collapses,
no coordinate does).
"""
from __future__ import annotations

import numpy as np
from scipy import linalg

from .. import config
from .._checks import as_finite_array, check_int, check_positive, check_seed

__all__ = ["PPCA", "reference_W", "nonidentifiable_directions", "REFERENCE_CASES"]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: The cases of :func:`reference_W`.
REFERENCE_CASES = ("zero_column", "full_rank", "repeated")


def reference_W(case: str = "full_rank", *, D: int = 5, scale: float = 2.0,
                seed: int = config.DEFAULT_SEED) -> np.ndarray:
    r"""A loading matrix W of shape (D, 2) like the reference code's: entries drawn i.i.d. N(0, scale²), seeded.

    Two columns w₁, w₂ ~ N(0, scale² I_D) are drawn once from ``seed``; the cases share them:

    * ``"zero_column"``: W = [w₁, 0]. z₂ does not enter the likelihood: it is non-identifiable and
      p(z₂ | x) = N(0, 1) exactly.
    * ``"full_rank"``: W = [w₁, w₂], full column rank (checked): both coordinates identifiable.
    * ``"repeated"``: W = [w₁, w₁]. Only z₁ + z₂ enters the likelihood: the direction (1, −1)/√2 is
      non-identifiable, although neither coordinate is.

    Parameters
    ----------
    case : {"zero_column", "full_rank", "repeated"}
    D : int
        Data dimension (≥ 2 so that the full-rank case exists).
    scale : float
        Standard deviation of the entries (the reference used 2).
    seed : int

    Returns
    -------
    W : ndarray of shape (D, 2)
    """
    if case not in REFERENCE_CASES:
        raise ValueError(f"case must be one of {REFERENCE_CASES}, got {case!r}")
    D = check_int(D, "D", minimum=2)
    scale = check_positive(scale, "scale")
    rng = np.random.default_rng(check_seed(seed))
    w = scale * rng.standard_normal((D, 2))
    if case == "zero_column":
        return np.column_stack([w[:, 0], np.zeros(D)])
    if case == "repeated":
        return np.column_stack([w[:, 0], w[:, 0]])
    if np.linalg.matrix_rank(w) < 2:  # probability zero, but never return a wrong case silently
        raise ValueError(f"seed {seed} gave a rank-deficient W for case 'full_rank'; pick another seed")
    return w


def nonidentifiable_directions(W, *, rtol: float = 1e-10) -> np.ndarray:
    r"""Orthonormal basis of the null space of W: the directions u with W u = 0 (posterior = prior along them).

    Computed from the SVD W = U S Vᵀ: the right singular vectors whose singular value is ≤ rtol · s_max
    (or all of them when W = 0).

    Returns
    -------
    ndarray of shape (m, K)
        One unit vector per row (m = K − rank W; m = 0 gives an empty (0, K) array). The sign of each row is
        fixed so that its first non-zero entry is positive.
    """
    W = as_finite_array(W, "W", ndim=2)
    if min(W.shape) < 1:
        raise ValueError(f"W must have at least one row and one column, got shape {W.shape}")
    rtol = check_positive(rtol, "rtol")
    _, s, vt = np.linalg.svd(W, full_matrices=True)
    smax = s.max() if s.size else 0.0
    s_full = np.zeros(W.shape[1])
    s_full[: s.size] = s
    null = vt[s_full <= rtol * smax] if smax > 0 else vt
    for row in null:  # deterministic signs
        nz = np.flatnonzero(np.abs(row) > 1e-12)
        if nz.size and row[nz[0]] < 0:
            row *= -1
    return null


class PPCA:
    r"""Probabilistic PCA with fixed parameters (W, σ) and exact inference of the local latents z_i.

    Model: z_i ~ N(0, I_K), x_i | z_i ~ N(W z_i, σ² I_D). Posterior:
    z_i | x_i ~ N(μ_i, Σ) with μ_i = M⁻¹ Wᵀ x_i, Σ = σ² M⁻¹, M = WᵀW + σ² I_K (Cholesky of M).

    Parameters
    ----------
    W : array of shape (D, K)
        Loading matrix (any rank, zero columns allowed).
    sigma : float
        Noise standard deviation σ > 0.

    Attributes
    ----------
    W : ndarray (D, K)
    sigma : float
    D, K : int
    posterior_cov : ndarray (K, K)
        Σ = σ² M⁻¹, the posterior covariance (the same for every x).
    """

    def __init__(self, W, sigma):
        W = as_finite_array(W, "W", ndim=2)
        if min(W.shape) < 1:
            raise ValueError(f"W must have at least one row and one column, got shape {W.shape}")
        self.W = W
        self.sigma = check_positive(sigma, "sigma")
        self.D, self.K = W.shape
        s2 = self.sigma**2
        M = W.T @ W + s2 * np.eye(self.K)
        self._M_cho = linalg.cho_factor(M, lower=True)
        # A = M⁻¹ Wᵀ (K × D): the posterior mean is A x.
        self._A = linalg.cho_solve(self._M_cho, W.T)
        cov = linalg.cho_solve(self._M_cho, s2 * np.eye(self.K))
        self.posterior_cov = 0.5 * (cov + cov.T)  # symmetric to the last bit
        # log det Σ = K log σ² − log det M, log det M = 2 Σ log diag(L)
        self._logdet_post = self.K * np.log(s2) - 2.0 * np.sum(np.log(np.diag(self._M_cho[0])))

    def __repr__(self) -> str:
        return f"PPCA(D={self.D}, K={self.K}, sigma={self.sigma:g})"

    # ------------------------------------------------------------------ helpers
    def _as_x(self, x, name: str = "x") -> tuple[np.ndarray, bool]:
        """x as an (n, D) array, and whether it was a single point of shape (D,)."""
        arr = as_finite_array(x, name, ndim=(1, 2))
        single = arr.ndim == 1
        arr = np.atleast_2d(arr)
        if arr.shape[1] != self.D or arr.shape[0] < 1:
            raise ValueError(f"{name} must have shape (n, {self.D}) or ({self.D},) with n ≥ 1, got {np.shape(x)}")
        return arr, single

    def _as_z(self, z, name: str = "z") -> tuple[np.ndarray, bool]:
        arr = as_finite_array(z, name, ndim=(1, 2))
        single = arr.ndim == 1
        arr = np.atleast_2d(arr)
        if arr.shape[1] != self.K or arr.shape[0] < 1:
            raise ValueError(f"{name} must have shape (n, {self.K}) or ({self.K},) with n ≥ 1, got {np.shape(z)}")
        return arr, single

    def with_sigma(self, sigma) -> "PPCA":
        """The same W with another noise level σ."""
        return PPCA(self.W, sigma)

    # ------------------------------------------------------------------ generative model
    def sample(self, n: int, seed: int = config.DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
        r"""Draw n i.i.d. pairs: z_i ~ N(0, I_K), x_i = W z_i + σ ε_i with ε_i ~ N(0, I_D).

        The same seed gives the same standard-normal draws for every σ, so x changes continuously with σ.

        Returns
        -------
        x : ndarray (n, D)
        z : ndarray (n, K)
        """
        n = check_int(n, "n", minimum=1)
        rng = np.random.default_rng(check_seed(seed))
        z = rng.standard_normal((n, self.K))
        eps = rng.standard_normal((n, self.D))
        return z @ self.W.T + self.sigma * eps, z

    def loglik(self, x, z, *, chunk_elements: int = 2**22) -> np.ndarray:
        r"""log p(x_a | z_b) = −D/2 log(2πσ²) − ‖x_a − W z_b‖² / (2σ²) for every pair (a, b).

        The squared distance is computed directly (no cancellation), in chunks of rows of x so that no
        intermediate array holds more than ``chunk_elements`` numbers.

        Parameters
        ----------
        x : array (n_x, D) or (D,)
        z : array (n_z, K) or (K,)

        Returns
        -------
        ndarray (n_x, n_z); a 1-D x or z drops its axis.
        """
        xs, x1 = self._as_x(x)
        zs, z1 = self._as_z(z)
        chunk_elements = check_int(chunk_elements, "chunk_elements", minimum=1)
        mean = zs @ self.W.T  # (n_z, D)
        rows = max(1, chunk_elements // max(1, mean.size))
        sq = np.empty((xs.shape[0], zs.shape[0]))
        for start in range(0, xs.shape[0], rows):
            diff = xs[start:start + rows, None, :] - mean[None, :, :]
            sq[start:start + rows] = np.einsum("abd,abd->ab", diff, diff)
        out = -0.5 * self.D * (_LOG_2PI + 2.0 * np.log(self.sigma)) - 0.5 * sq / self.sigma**2
        if z1:
            out = out[:, 0]
        if x1:
            out = out[0]
        return out

    def log_prior(self, z) -> np.ndarray:
        r"""log N(z; 0, I_K) = −K/2 log 2π − ‖z‖²/2, shape (n,) (a scalar for one z)."""
        zs, single = self._as_z(z)
        out = -0.5 * (self.K * _LOG_2PI + np.sum(zs**2, axis=1))
        return out[0] if single else out

    def log_marginal(self, x) -> np.ndarray:
        r"""log p(x) with x ~ N(0, C), C = W Wᵀ + σ² I_D (Cholesky of C), shape (n,).

        log p(x) = −½[D log 2π + log det C + xᵀ C⁻¹ x].
        """
        xs, single = self._as_x(x)
        C = self.W @ self.W.T + self.sigma**2 * np.eye(self.D)
        L = linalg.cholesky(C, lower=True)
        y = linalg.solve_triangular(L, xs.T, lower=True)  # L y = x ⇒ ‖y‖² = xᵀC⁻¹x
        out = -0.5 * (self.D * _LOG_2PI + 2.0 * np.sum(np.log(np.diag(L))) + np.sum(y**2, axis=0))
        return out[0] if single else out

    # ------------------------------------------------------------------ exact posterior
    def posterior(self, x) -> tuple[np.ndarray, np.ndarray]:
        r"""The exact posterior z | x ~ N(μ, Σ): μ = M⁻¹Wᵀx, Σ = σ² M⁻¹, M = WᵀW + σ²I.

        Parameters
        ----------
        x : array (n, D) or (D,)

        Returns
        -------
        mean : ndarray (n, K) (or (K,) for a single x)
        cov : ndarray (K, K), shared by every x
        """
        xs, single = self._as_x(x)
        mean = xs @ self._A.T
        return (mean[0] if single else mean), self.posterior_cov.copy()

    def posterior_logpdf(self, z, x) -> np.ndarray:
        r"""log p(z_b | x_a) = log N(z_b; μ_a, Σ) for every pair, shape (n_x, n_z)."""
        xs, x1 = self._as_x(x)
        zs, z1 = self._as_z(z)
        mean = xs @ self._A.T
        Lc = linalg.cholesky(self.posterior_cov, lower=True)
        diff = zs[None, :, :] - mean[:, None, :]  # (n_x, n_z, K)
        y = linalg.solve_triangular(Lc, diff.reshape(-1, self.K).T, lower=True)
        quad = np.sum(y**2, axis=0).reshape(diff.shape[:2])
        out = -0.5 * (self.K * _LOG_2PI + self._logdet_post + quad)
        if z1:
            out = out[:, 0]
        if x1:
            out = out[0]
        return out

    def kl_to_prior(self, x) -> np.ndarray:
        r"""KL(p(z | x_i) ‖ N(0, I_K)) = ½[tr Σ + μ_iᵀμ_i − K − log det Σ] for each x_i, shape (n,)."""
        mean, cov = self.posterior(x)
        mean = np.atleast_2d(mean)
        kl = 0.5 * (np.trace(cov) + np.sum(mean**2, axis=1) - self.K - self._logdet_post)
        return kl[0] if np.ndim(x) == 1 else kl

    def marginal_kl_to_prior(self, x, directions=None) -> np.ndarray:
        r"""KL of one-dimensional marginals: KL(N(uᵀμ_i, uᵀΣu) ‖ N(0, 1)) for each x_i and direction u.

        With v = uᵀΣu and m = uᵀμ_i this is ½[v + m² − 1 − log v]. By default the directions are the
        coordinates e_1, …, e_K (the marginal of each z_k). Since ‖u‖ = 1, uᵀz ~ N(0, 1) under the prior.

        Parameters
        ----------
        x : array (n, D) or (D,)
        directions : array (m, K) or (K,), optional
            Unit vectors (rows). Default: the identity (coordinates).

        Returns
        -------
        ndarray (n, m) (or (m,) for a single x)
        """
        U = self._directions(directions)
        mean, cov = self.posterior(x)
        m = np.atleast_2d(mean) @ U.T  # (n, m)
        v = np.einsum("mk,kl,ml->m", U, cov, U)
        kl = 0.5 * (v + m**2 - 1.0 - np.log(v))
        return kl[0] if np.ndim(x) == 1 else kl

    def marginal_posterior(self, x, directions=None) -> tuple[np.ndarray, np.ndarray]:
        r"""Mean uᵀμ_i and sd (uᵀΣu)^{1/2} of the posterior of uᵀz for each direction u (default: coordinates).

        Returns
        -------
        mean : ndarray (n, m) (or (m,) for a single x)
        sd : ndarray (m,)
        """
        U = self._directions(directions)
        mean, cov = self.posterior(x)
        return mean @ U.T, np.sqrt(np.einsum("mk,kl,ml->m", U, cov, U))

    def expected_kl_to_prior(self, directions=None) -> np.ndarray:
        r"""E_{x ~ p(x)} KL of each marginal posterior to its prior, exactly; equals the mutual information.

        By the law of total variance Cov(z) = I = Σ + Cov_x(μ), so E[(uᵀμ)²] = 1 − uᵀΣu and
        E KL(N(uᵀμ, uᵀΣu) ‖ N(0,1)) = −½ log(uᵀΣu) = I(uᵀz; x). Shape (m,) (default: the K coordinates).
        The joint version is −½ log det Σ = I(z; x), see :meth:`mutual_information`.
        """
        U = self._directions(directions)
        return -0.5 * np.log(np.einsum("mk,kl,ml->m", U, self.posterior_cov, U))

    def mutual_information(self) -> float:
        r"""I(z; x) = E_x KL(p(z | x) ‖ p(z)) = −½ log det Σ (nats)."""
        return float(-0.5 * self._logdet_post)

    def _directions(self, directions) -> np.ndarray:
        if directions is None:
            return np.eye(self.K)
        U = np.atleast_2d(as_finite_array(directions, "directions", ndim=(1, 2)))
        if U.shape[1] != self.K or U.shape[0] < 1:
            raise ValueError(f"directions must have shape (m, {self.K}) or ({self.K},), got {np.shape(directions)}")
        norms = np.linalg.norm(U, axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-8):
            raise ValueError(f"directions must be unit vectors; got norms {np.round(norms, 6).tolist()}")
        return U
