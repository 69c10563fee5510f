"""Posterior-collapse metrics of a VAE-type model, as defined by He et al. (2019) and used in Wang et al.'s Table 1.

Arrays or tensors in; python floats / numpy float64 arrays out. Let ``q(z|x) = N(μ(x), diag σ²(x))`` be the
encoder, ``p(z)`` the prior and ``p(x|z)`` the decoder, evaluated on an evaluation set ``x_1..x_N``.

* **AU** (:func:`active_units`): dimension ``k`` is active when ``Cov_x(E_{q(z|x)}[z_k]) = Var_i(μ_ik) ≥ δ``
  (unbiased variance over the evaluation set, δ = 0.01).
* **KL** (:func:`kl_to_prior`, :func:`kl_per_dimension`): ``KL(q(z|x) ‖ N(0, I))`` in closed form,
  ``½ Σ_k (μ_k² + σ_k² − log σ_k² − 1)``.
* **MI** (:func:`mutual_information`): ``I_q(x; z) = E_x E_{q(z|x)}[log q(z|x) − log q(z)]`` with the aggregate
  posterior ``q(z) = (1/N) Σ_j q(z|x_j)`` of the *whole* evaluation set (``MI``, at most ``log N``) or of each
  minibatch of B rows as He et al. compute it (``MI_batch``, at most ``log B``), both Monte-Carlo averages over
  ``z ~ q(z|x_i)`` with the sampled ``log q(z|x_i)`` as a control variate.
* **LL** (:func:`iw_loglik`): the importance-weighted bound (Burda et al. 2016) with the encoder as proposal,
  ``log (1/S) Σ_s p(x, z_s)/q(z_s|x)``, ``z_s ~ q(z|x)``, S ≥ 500 by default; a lower bound on ``log p(x)`` in
  expectation, tight as S → ∞, and exact for every S when q is the exact posterior.
* **Identifiability meter** (:func:`identifiability_meter`): the per-dimension expected Fisher information of
  the likelihood in z, ``F_k = E_x E_{q(z|x)} (∂ log p(x|z)/∂z_k)²``. ``F_k = 0`` means the decoder does not
  depend on ``z_k`` where the data and posterior put mass: ``z_k`` is locally non-identifiable, and the exact
  posterior of that coordinate equals its prior (posterior collapse).

The model protocol (see ``identkit.neural.models``): ``latent_dim``, ``data_dim``, ``encode(x) → (μ, log σ²)``,
``log_likelihood(x (B, D), z (S, B, K)) → (S, B)``, ``log_prior(z (S, B, K)) → (S, B)``.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from scipy.special import logsumexp

from ._checks import as_finite_array, check_int, check_positive, check_seed, check_token_ids

__all__ = [
    "active_units",
    "kl_to_prior",
    "kl_per_dimension",
    "mutual_information",
    "fixed_latent_loglik",
    "iw_loglik",
    "identifiability_meter",
    "collapse_metrics",
    "encode_all",
    "perplexity",
    "recovery_r2",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------- array metrics
def _array(x, name: str, ndim=None) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor (any device)
        x = x.detach().cpu().numpy()
    return as_finite_array(x, name, ndim=ndim, dtype=np.float64)


def _mu_logvar(mu, logvar) -> tuple[np.ndarray, np.ndarray]:
    m = _array(mu, "mu", ndim=2)
    lv = _array(logvar, "logvar", ndim=2)
    if m.shape != lv.shape:
        raise ValueError(f"mu and logvar must have the same (N, K) shape, got {m.shape} and {lv.shape}")
    if m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"mu must be a non-empty (N, K) array, got shape {m.shape}")
    return m, lv


def active_mask(mu, threshold: float = 0.01) -> np.ndarray:
    """Which latent dimensions are active: ``Var_i(μ_ik) ≥ threshold`` (He et al. 2019, δ = 0.01), shape (K,).

    Parameters
    ----------
    mu : array-like, shape (N, K)
        Posterior means ``E_{q(z|x_i)}[z]`` over the evaluation set (N ≥ 2); the variance is the unbiased one.
    threshold : float
        δ > 0.

    Returns
    -------
    numpy.ndarray of bool
    """
    m = _array(mu, "mu", ndim=2)
    threshold = check_positive(threshold, "threshold")
    if m.shape[0] < 2:
        raise ValueError(f"mu needs at least 2 rows to estimate a variance, got shape {m.shape}")
    return np.var(m, axis=0, ddof=1) >= threshold


def active_units(mu, threshold: float = 0.01) -> int:
    """Number of active latent dimensions: ``#{k : Var_i(μ_ik) ≥ threshold}`` (:func:`active_mask` summed)."""
    return int(active_mask(mu, threshold).sum())


def kl_to_prior(mu, logvar) -> np.ndarray:
    """Per-row ``KL(N(μ, diag e^{logvar}) ‖ N(0, I)) = ½ Σ_k (μ_k² + e^{logvar_k} − logvar_k − 1)``, shape (N,)."""
    m, lv = _mu_logvar(mu, logvar)
    return 0.5 * np.sum(m**2 + np.exp(lv) - lv - 1.0, axis=1)


def kl_per_dimension(mu, logvar) -> np.ndarray:
    """Per-dimension KL to ``N(0, 1)`` averaged over rows, ``(1/N) Σ_i ½(μ_ik² + σ_ik² − log σ_ik² − 1)``, shape (K,)."""
    m, lv = _mu_logvar(mu, logvar)
    return np.mean(0.5 * (m**2 + np.exp(lv) - lv - 1.0), axis=0)


def mutual_information(mu, logvar, seed: int = 0, batch_size: int | None = None, samples: int = 1,
                       chunk_size: int = 1024) -> float:
    """``I_q(x; z)`` under an aggregate posterior: of the whole evaluation set, or of each minibatch (He et al.).

    With ``q(z) = (1/N) Σ_j q(z|x_j)`` the mixture of the N posteriors,

    .. math::

        \\hat I = \\frac{1}{NS} \\sum_{i,s} \\Big[\\log q(z_{is}|x_i)
        - \\log \\frac1N \\sum_j q(z_{is}|x_j)\\Big], \\quad z_{is} \\sim q(z|x_i),

    the Monte-Carlo average of ``KL(q(z|x_i) ‖ q(z))``. The first term is the *sampled* log-density at the same
    draw, not the closed-form negative entropy: it is a control variate for the second (their noise cancels),
    and since ``q(z_is|x_i) ≤ Σ_j q(z_is|x_j)`` every term, hence the estimate itself, is ``≤ log N`` for every
    draw. (He et al. 2019's code uses the closed-form entropy, with the same expectation; it can exceed
    ``log N`` by Monte-Carlo noise.) Identical posteriors give exactly 0.

    ``batch_size=B`` is He et al.'s per-minibatch estimator: the rows are cut, in their order, into consecutive
    batches of B (the last one shorter), each batch's own mixture stands in for ``q(z)``, and the batch values
    are averaged with batch-size weights. It is bounded by ``log B``, and biased towards it; the whole-set value
    (``batch_size=None``) is bounded by ``log N``. Both saturate at their ceiling when the posteriors of
    different rows do not overlap, and then no longer tell methods apart. Both use the same draws
    (one ``numpy`` generator seeded with ``seed``, rows in order).

    The log-densities are formed chunk by chunk in float64 as quadratic forms (three matrix products), so memory
    is ``O(chunk_size · N)``.

    Parameters
    ----------
    mu, logvar : array-like, shape (N, K)
    seed : int
        Seed of the draws (evaluation should use its own seed, not the training seed).
    batch_size : int, optional
        None: the whole set's aggregate posterior; B ≥ 1: He et al.'s per-batch estimator.
    samples : int
        Draws of ``z`` per row (S ≥ 1).
    chunk_size : int
        Rows of ``z`` per block.

    Returns
    -------
    float
        In nats, in ``(−∞, log N]`` (``(−∞, log B]`` per batch); its expectation is ≥ 0.
    """
    m, lv = _mu_logvar(mu, logvar)
    check_seed(seed)
    samples = check_int(samples, "samples")
    chunk_size = check_int(chunk_size, "chunk_size")
    n, k = m.shape
    batch = n if batch_size is None else check_int(batch_size, "batch_size")
    eps = np.random.default_rng(seed).standard_normal((samples, n, k))
    total = 0.0
    for b0 in range(0, n, batch):
        total += _mi_sum(m[b0:b0 + batch], lv[b0:b0 + batch], eps[:, b0:b0 + batch], chunk_size)
    return float(total / (n * samples))


def _mi_sum(m: np.ndarray, lv: np.ndarray, eps: np.ndarray, chunk_size: int) -> float:
    """Σ_{i,s} [log q(z_is|x_i) − log (1/n) Σ_j q(z_is|x_j)] over one set of n rows, z = μ + σ ε."""
    samples, n, k = eps.shape
    z = (m[None] + np.exp(0.5 * lv)[None] * eps).reshape(-1, k)
    own = (-0.5 * (eps**2 + lv[None] + _LOG_2PI).sum(-1)).reshape(-1)  # log q(z_is | x_i)
    prec = np.exp(-lv)  # (n, K) 1/σ²
    const = -0.5 * (np.sum(m**2 * prec, axis=1) + np.sum(lv, axis=1) + k * _LOG_2PI)  # (n,)
    mp = m * prec
    total = 0.0
    for start in range(0, z.shape[0], chunk_size):
        zc = z[start:start + chunk_size]
        # log N(z_c; μ_j, σ_j²) = −½ z²·prec_j + z·(μ_j prec_j) + const_j, shape (chunk, n)
        logq = -0.5 * (zc**2) @ prec.T + zc @ mp.T + const[None]
        total += float(np.sum(own[start:start + chunk_size] - logsumexp(logq, axis=1) + math.log(n)))
    return total


# ----------------------------------------------------------------------------------------------- model metrics
def _torch():
    import torch

    return torch


def _device_dtype(model):
    torch = _torch()
    for getter in ("parameters", "buffers"):
        with contextlib.suppress(AttributeError, StopIteration, TypeError):
            t = next(iter(getattr(model, getter)()))
            dtype = t.dtype if torch.is_floating_point(t) else torch.get_default_dtype()
            return t.device, dtype
    return torch.device("cpu"), torch.get_default_dtype()


@contextlib.contextmanager
def _eval_mode(model):
    was_training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    try:
        yield
    finally:
        if was_training and hasattr(model, "train"):
            model.train(True)


def _data(model, x):
    """``x`` as a finite (N, D) tensor on the model's device/dtype, checked against ``model.data_dim``."""
    torch = _torch()
    device, dtype = _device_dtype(model)
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.ndim != 2:
            raise ValueError(f"x must have 2 dimensions (N, D), got shape {tuple(t.shape)}")
        if getattr(model, "likelihood", None) == "categorical":  # token ids (text models) stay integers
            t = check_token_ids(t, "x").to(device=device)
        else:
            if not torch.all(torch.isfinite(t)):
                raise ValueError("x contains NaN or infinite values")
            t = t.to(device=device, dtype=dtype)
    else:
        t = torch.as_tensor(as_finite_array(x, "x", ndim=2), dtype=dtype, device=device)
    d = getattr(model, "data_dim", None)
    if d is not None and t.shape[1] != d:
        raise ValueError(f"x must have {d} columns (model.data_dim), got shape {tuple(t.shape)}")
    if t.shape[0] < 1:
        raise ValueError("x must have at least one row")
    return t


def encode_all(model, x, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Encoder outputs ``(μ, log σ²)`` for every row of ``x``, in batches, as float64 arrays of shape (N, K)."""
    torch = _torch()
    batch_size = check_int(batch_size, "batch_size")
    xt = _data(model, x)
    mus, lvs = [], []
    with _eval_mode(model), torch.no_grad():
        for start in range(0, xt.shape[0], batch_size):
            mu, lv = model.encode(xt[start:start + batch_size])
            mus.append(mu.detach().cpu().double().numpy())
            lvs.append(lv.detach().cpu().double().numpy())
    return np.concatenate(mus), np.concatenate(lvs)


def _iw_terms(model, x, samples, seed, batch_size, sample_chunk, progress):
    """Per row: ``log (1/S) Σ_s w_s`` and the Monte-Carlo ``E_q[log q(z|x) − log p(z)]`` from the same draws."""
    torch = _torch()
    from tqdm.auto import tqdm

    samples = check_int(samples, "samples")
    check_seed(seed)
    batch_size = check_int(batch_size, "batch_size")
    sample_chunk = check_int(sample_chunk, "sample_chunk")
    xt = _data(model, x)
    device, dtype = _device_dtype(model)
    gen = torch.Generator().manual_seed(seed)
    ll, kl = [], []
    with _eval_mode(model), torch.no_grad():
        for start in tqdm(range(0, xt.shape[0], batch_size), desc="iw_loglik", disable=not progress):
            xb = xt[start:start + batch_size]
            mu, lv = model.encode(xb)
            sd = torch.exp(0.5 * lv)
            log_w, log_ratio = [], []
            for s0 in range(0, samples, sample_chunk):
                s = min(sample_chunk, samples - s0)
                eps = torch.randn((s, *mu.shape), generator=gen, dtype=mu.dtype).to(device)
                z = mu + sd * eps
                log_q = -0.5 * (eps.square() + lv + _LOG_2PI).sum(-1)  # (s, B)
                log_p = model.log_prior(z)
                log_w.append(model.log_likelihood(xb, z) + log_p - log_q)
                log_ratio.append(log_q - log_p)
            log_w = torch.cat(log_w).double()
            ll.append((torch.logsumexp(log_w, 0) - math.log(samples)).cpu().numpy())
            kl.append(torch.cat(log_ratio).double().mean(0).cpu().numpy())
    return np.concatenate(ll), np.concatenate(kl)


def iw_loglik(model, x, samples: int = 500, seed: int = 0, batch_size: int = 100, sample_chunk: int = 100,
              progress: bool = False) -> np.ndarray:
    """Importance-weighted log-likelihood per row, ``log (1/S) Σ_s p(x|z_s) p(z_s) / q(z_s|x)``, ``z_s ~ q(z|x)``.

    Computed as a log-mean-exp in float64; samples are drawn ``sample_chunk`` at a time (memory
    ``O(sample_chunk · batch_size · D)``) from a ``torch.Generator`` seeded with ``seed``. The model is put in
    eval mode for the call. For Bernoulli models pass the (fixed) binarised evaluation set.

    Parameters
    ----------
    model : object implementing the model protocol
    x : array-like or tensor, shape (N, D)
    samples : int
        S ≥ 1 (He et al. and Wang et al. use S = 500).
    seed : int
    batch_size, sample_chunk : int
    progress : bool
        tqdm bar over batches.

    Returns
    -------
    numpy.ndarray, shape (N,)
    """
    return _iw_terms(model, x, samples, seed, batch_size, sample_chunk, progress)[0]


def fixed_latent_loglik(model, x, z=None, batch_size: int = 100) -> np.ndarray:
    r"""Per row, ``log p(x | z = z₀)``: the decoder as a model of x alone, with the latent held at one value.

    With z fixed the decoder is a distribution over x that ignores the latent (for a text model
    ``Π_t p(x_t | x_<t, z₀)``, a language model). It splits a model's fit: the trained decoder at z₀ is one
    member of the latent-free models its architecture can express, so the best of them does at least as well,
    and a higher importance-weighted LL than another model's decoder at z₀ shows what the architecture gains
    without any latent. ``LL − mean log p(x | z₀)`` is *not* the information z carries: one value z₀ is not the
    prior's average over z, and the difference can exceed the MI.

    Parameters
    ----------
    model : object implementing the model protocol
    x : array-like or tensor, shape (N, D)
        Rows to score (token ids for text models).
    z : array-like, shape (K,), optional
        The fixed latent z₀; default the prior mean 0, which requires the standard normal prior.
    batch_size : int

    Returns
    -------
    numpy.ndarray, shape (N,)
        ``log p(x_i | z₀)`` in float64.
    """
    torch = _torch()
    batch_size = check_int(batch_size, "batch_size")
    k = check_int(model.latent_dim, "model.latent_dim")
    xt = _data(model, x)
    device, dtype = _device_dtype(model)
    if z is None:
        if not _prior_is_standard_normal(model, k):
            raise ValueError("z: the model's prior is not N(0, I), so its mean is not 0; pass the latent z to hold")
        z0 = torch.zeros(k, dtype=dtype, device=device)
    else:
        z0 = torch.as_tensor(as_finite_array(z, "z", ndim=1), dtype=dtype, device=device)
        if z0.shape[0] != k:
            raise ValueError(f"z must have {k} entries (model.latent_dim), got {z0.shape[0]}")
    out = []
    with _eval_mode(model), torch.no_grad():
        for start in range(0, xt.shape[0], batch_size):
            xb = xt[start:start + batch_size]
            out.append(model.log_likelihood(xb, z0.expand(1, xb.shape[0], k))[0].double().cpu().numpy())
    return np.concatenate(out)


def identifiability_meter(model, x, samples: int = 10, seed: int = 0, batch_size: int = 100) -> np.ndarray:
    """Per-dimension expected Fisher information of the likelihood in z, ``E_x E_{q(z|x)} (∂ log p(x|z)/∂z_k)²``.

    Each ``z ~ q(z|x)`` (``samples`` draws per row, reparametrised, seeded) is a leaf; one
    ``torch.autograd.grad`` of ``Σ log p(x|z)`` gives every per-draw gradient (each term depends on its own z
    only). Zero in dimension k ⇔ (almost surely) the decoder ignores ``z_k``: ``z_k`` is non-identifiable and
    its exact posterior equals its prior. For ``x | z ~ N(Az + b, σ²I)`` with the exact posterior it equals
    ``‖A_k‖²/σ²`` (tests/test_metrics.py derives this).

    Returns
    -------
    numpy.ndarray, shape (K,)
    """
    torch = _torch()
    samples = check_int(samples, "samples")
    check_seed(seed)
    batch_size = check_int(batch_size, "batch_size")
    xt = _data(model, x)
    device, _ = _device_dtype(model)
    gen = torch.Generator().manual_seed(seed)
    total = None
    with _eval_mode(model):
        for start in range(0, xt.shape[0], batch_size):
            xb = xt[start:start + batch_size]
            with torch.no_grad():
                mu, lv = model.encode(xb)
            eps = torch.randn((samples, *mu.shape), generator=gen, dtype=mu.dtype).to(device)
            with torch.enable_grad():
                z = (mu + torch.exp(0.5 * lv) * eps).requires_grad_(True)
                (grad,) = torch.autograd.grad(model.log_likelihood(xb, z).sum(), z)
            part = grad.detach().double().square().sum((0, 1))
            total = part if total is None else total + part
    return (total / (samples * xt.shape[0])).cpu().numpy()


def _prior_is_standard_normal(model, k: int) -> bool:
    """Whether ``model.log_prior`` equals ``log N(0, I_K)`` on a fixed probe set (then KL is taken in closed form)."""
    torch = _torch()
    device, dtype = _device_dtype(model)
    probe = torch.linspace(-2.5, 2.5, 6 * k, dtype=torch.float64).reshape(3, 2, k)
    probe = probe + 0.37 * torch.cos(torch.arange(6 * k, dtype=torch.float64)).reshape(3, 2, k)
    with torch.no_grad():
        got = model.log_prior(probe.to(device=device, dtype=dtype)).double().cpu()
    want = -0.5 * (probe.square() + _LOG_2PI).sum(-1)
    return bool(got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-3))


def perplexity(mean_log_lik: float, x) -> float:
    """Perplexity per predicted token, ``exp(−Σ_i log p(x_i) / Σ_i n_i)``, from the mean log-likelihood per row.

    ``x`` are the rows' token ids (``TextData.ids``: ``<s> w_1 … </s> <pad> …``); n_i counts the predicted
    tokens of row i, every non-padding id after ``<s>`` (words and ``</s>``, as He et al. count them).
    """
    torch = _torch()
    from .data.text import PAD_ID

    t = torch.as_tensor(x)
    tokens_per_row = float((t[:, 1:] != PAD_ID).sum()) / t.shape[0]
    return math.exp(-float(mean_log_lik) / tokens_per_row)


def recovery_r2(mu, z) -> float:
    """Fraction of the variance of a known latent ``z`` (N, d) explained by an affine map of ``mu`` (N, K).

    ``R² = 1 − ‖z − [mu, 1] B‖² / ‖z − z̄‖²`` summed over the d coordinates, B the least-squares coefficients
    fitted on the same rows (K + 1 parameters per coordinate: negligible optimism for N in the hundreds, K small).
    """
    mu = _array(mu, "mu", ndim=2)
    z = _array(z, "z", ndim=2)
    if len(mu) != len(z):
        raise ValueError(f"mu and z must have the same number of rows, got {len(mu)} and {len(z)}")
    design = np.column_stack([mu, np.ones(len(mu))])
    coef, *_ = np.linalg.lstsq(design, z, rcond=None)
    resid = z - design @ coef
    return float(1.0 - (resid ** 2).sum() / ((z - z.mean(0)) ** 2).sum())


def collapse_metrics(model, x, seed: int = 0, samples: int = 500, batch_size: int = 100,
                     threshold: float = 0.01, progress: bool = False, mi_batch_size: int = 100) -> dict:
    """The numbers of Table 1 on an evaluation set: AU, KL, MI (two estimators), LL (He et al. 2019 definitions).

    Parameters
    ----------
    model : object implementing the model protocol
    x : array-like or tensor, shape (N, D)
    seed : int
        Seed of every Monte-Carlo draw of the evaluation (give it its own seed, not the training seed, so that
        runs of different training seeds do not share their evaluation noise).
    samples : int
        Importance samples S of the LL (and of the Monte-Carlo KL for non-Gaussian priors).
    batch_size : int
        Rows per forward pass (memory only).
    threshold : float
        δ of the active-unit test.
    progress : bool
    mi_batch_size : int
        B of He et al.'s per-minibatch MI (``MI_batch``).

    Returns
    -------
    dict
        ``AU`` fraction of active dimensions (``AU_count / K``, as the paper reports), ``AU_count``,
        ``KL`` mean ``KL(q(z|x) ‖ p(z))`` (closed form when ``p(z) = N(0, I)``, otherwise the Monte-Carlo
        average of ``log q(z|x) − log p(z)`` over the ``samples`` importance draws), ``MI``
        (:func:`mutual_information` over the whole set, at most ``log N``), ``MI_batch`` (per minibatch of
        ``mi_batch_size`` rows, at most ``log B``), ``MI_ceiling`` = log N, ``MI_batch_ceiling`` = log B,
        ``LL`` mean :func:`iw_loglik`.
    """
    threshold = check_positive(threshold, "threshold")
    mi_batch_size = check_int(mi_batch_size, "mi_batch_size")
    mu, lv = encode_all(model, x, batch_size=max(batch_size, 1))
    n, k = mu.shape
    ll, kl_mc = _iw_terms(model, x, samples, seed, batch_size, 100, progress)
    kl = float(np.mean(kl_to_prior(mu, lv))) if _prior_is_standard_normal(model, k) else float(np.mean(kl_mc))
    au = active_units(mu, threshold)
    return {
        "AU": au / k,
        "AU_count": au,
        "KL": kl,
        "MI": mutual_information(mu, lv, seed=seed),
        "MI_batch": mutual_information(mu, lv, seed=seed, batch_size=mi_batch_size),
        "MI_ceiling": math.log(n),
        "MI_batch_ceiling": math.log(min(mi_batch_size, n)),
        "LL": float(np.mean(ll)),
    }
