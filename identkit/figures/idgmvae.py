"""Figures of lesson 08: the identifiable mixture VAE (IDGMVAE) vs the Gaussian-mixture VAE (GMVAE).

Both models: w ~ Cat(1/C), z | w ~ N(μ_w, diag γ), x | z ~ Bernoulli(f(z)). GMVAE: free means μ_w and an MLP
f; IDGMVAE: μ_w = β1ᵀ e_w with β1 full rank and f = g2(β2ᵀ g1(·)) injective. The cluster posterior p(w|x) is
the model's exact one, estimated by importance sampling (:meth:`identkit.neural.models.GMVAE.cluster_posterior`).
If w is non-identifiable, p(w|x) = p(w) = 1/C and its entropy is log C: the cluster variable has collapsed.

The injective decoder uses the table's setting (:data:`identkit.figures.lidvae.INJECTIVE`). Training is cached
per process (``functools.lru_cache``) and on disk (``checkpoints/cache/``).
"""
from __future__ import annotations

import functools
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import config
from ..plotting import legend_below, palette
from . import figure
from .lidvae import INJECTIVE

NOTEBOOK = "08_idgmvae"

QUICK_CONFIG = dict(n_train=2000, n_eval=500, latent_dim=16, n_clusters=10, hidden=256, epochs=30, batch_size=100,
                    optimizer="adam", lr=2e-3, posterior_samples=64, **INJECTIVE)
FULL_CONFIG = dict(n_train=10000, n_eval=2000, latent_dim=64, n_clusters=10, hidden=512, epochs=20, batch_size=100,
                   optimizer="adam", lr=1e-3, posterior_samples=200, **INJECTIVE)
_NAMES = {"gmvae": "GMVAE", "idgmvae": "IDGMVAE"}


def settings(quick: bool | None = None) -> dict:
    """The configuration used in quick or full mode."""
    return dict(QUICK_CONFIG if config.resolve_quick(quick) else FULL_CONFIG)


@functools.lru_cache(maxsize=4)
def trained_mixtures(quick: bool | None = None, seed: int = config.DEFAULT_SEED) -> dict:
    """Train (or load) a GMVAE and an IDGMVAE with identical settings on Fashion-MNIST; cached per process.

    Returns ``models``, ``history`` ({"gmvae", "idgmvae"} → …), ``x_eval`` (binarised test images), ``y_eval``,
    ``config``.
    """
    from ..data import fashion_mnist_subsets
    from ..neural.models import GMVAE, IDGMVAE
    from ..neural.train import cached_fit

    cfg = settings(quick)
    x, _, x_eval, y_eval = fashion_mnist_subsets(cfg["n_train"], cfg["n_eval"], seed, eval_seed=seed + 1)
    out = {"models": {}, "history": {}, "config": cfg, "x_eval": x_eval, "y_eval": y_eval}
    common = dict(hidden=cfg["hidden"], seed=seed)
    builders = {"gmvae": lambda: GMVAE(784, cfg["latent_dim"], cfg["n_clusters"], **common),
                "idgmvae": lambda: IDGMVAE(784, cfg["latent_dim"], cfg["n_clusters"], lam=cfg["lam"],
                                             activation=cfg["activation"], init_ratio=cfg["init_ratio"], **common)}
    for kind, build in builders.items():
        out["models"][kind], out["history"][kind] = cached_fit(
            build(), x, tag=f"08-{kind}", epochs=cfg["epochs"], batch_size=cfg["batch_size"],
            optimizer=cfg["optimizer"], lr=cfg["lr"], seed=seed, progress=False)
    return out


def entropy(p: np.ndarray) -> np.ndarray:
    """Row-wise Shannon entropy −Σ_w p_w log p_w (nats), with 0 log 0 = 0."""
    p = np.asarray(p, dtype=float)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def normalized_mutual_information(a, b) -> float:
    r"""NMI of two labelings of the same items: :math:`I(a; b) / \sqrt{H(a) H(b)}` (empirical joint, nats).

    0 when the labelings are independent, 1 when each determines the other (up to renaming); the geometric-mean
    normalisation of Strehl & Ghosh (2002). ``a`` and ``b`` are non-negative integer arrays of equal length.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"a and b must be non-empty 1-D label arrays of equal length, got shapes {a.shape}, {b.shape}")
    if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)) or a.min() < 0 or b.min() < 0:
        raise ValueError("a and b must hold non-negative integer labels")
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    h_a, h_b = entropy(joint.sum(1)), entropy(joint.sum(0))
    if h_a == 0 or h_b == 0:
        return 0.0
    return float((h_a + h_b - entropy(joint.ravel())) / np.sqrt(h_a * h_b))


@functools.lru_cache(maxsize=4)
def cluster_summary(quick: bool | None = None, seed: int = config.DEFAULT_SEED) -> dict:
    """Per model: ``posterior`` p(w|x) (N, C), ``entropy`` H(p(w|x)) (N,), ``mean_entropy``, ``log_C``,
    ``usage`` (mean posterior per cluster), ``elbo`` (test), ``mean_distance`` (smallest distance between cluster
    means in units of the prior's sd), ``nmi`` (:func:`normalized_mutual_information` of argmax_w p(w|x) with the
    Fashion-MNIST labels of the test images)."""
    tm = trained_mixtures(quick, seed)
    cfg = tm["config"]
    out = {}
    for kind, m in tm["models"].items():
        with torch.no_grad():
            post = torch.cat([m.cluster_posterior(xb, samples=cfg["posterior_samples"], generator=seed)
                              for xb in tm["x_eval"].split(250)]).numpy()
            elbo = float(m.elbo(tm["x_eval"], seed=seed).mean())
            means = m.cluster_means()
            sd = torch.exp(0.5 * m.log_gamma)
            d = torch.cdist(means / sd, means / sd)
            dmin = float(d[~torch.eye(len(means), dtype=bool)].min())
        h = entropy(post)
        out[kind] = {"posterior": post, "entropy": h, "mean_entropy": float(h.mean()),
                     "log_C": math.log(post.shape[1]), "usage": post.mean(0), "elbo": elbo,
                     "mean_distance": dmin,
                     "nmi": normalized_mutual_information(post.argmax(1), np.asarray(tm["y_eval"]))}
    return out


@figure("08_idgmvae_cluster_entropy", "Entropy of the cluster posterior p(w|x): GMVAE vs IDGMVAE vs log C",
        notebook=NOTEBOOK, cost="training")
def cluster_entropy(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Histograms of H(p(w|x)) over test images; log C (uniform posterior = collapsed cluster) dashed."""
    s = cluster_summary(quick, seed)
    c = palette(2)
    log_c = s["gmvae"]["log_C"]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.9), constrained_layout=True)
    bins = np.linspace(0, log_c * 1.02, 31)
    for kind, col in zip(("gmvae", "idgmvae"), c):
        axes[0].hist(s[kind]["entropy"], bins=bins, color=col, alpha=0.6,
                     label=f"{_NAMES[kind]} (mean {s[kind]['mean_entropy']:.2f})")
    axes[0].axvline(log_c, color="0.3", ls="--", lw=1)
    axes[0].text(log_c, axes[0].get_ylim()[1] * 1.02, r"$\log C$", ha="center", va="bottom", fontsize=10)
    axes[0].set(xlabel=r"$H(p(w\mid x))$ [nats]", ylabel="test images")
    legend_below(axes[0], ncols=2, frameon=False)
    width = 0.4
    idx = np.arange(len(s["gmvae"]["usage"]))
    for i, (kind, col) in enumerate(zip(("gmvae", "idgmvae"), c)):
        axes[1].bar(idx + (i - 0.5) * width, s[kind]["usage"], width, color=col, label=_NAMES[kind])
    axes[1].axhline(1 / len(idx), color="0.3", ls="--", lw=1, label="uniform, $1/C$")
    axes[1].set(xlabel="cluster w", ylabel=r"mean $p(w\mid x)$", xticks=idx, xlim=(-0.6, idx[-1] + 0.6))
    legend_below(axes[1], ncols=3, frameon=False)
    return fig


@figure("08_idgmvae_samples", "Samples per cluster from GMVAE and IDGMVAE", notebook=NOTEBOOK, cost="training")
def cluster_samples(*, quick: bool = False, seed: int = config.DEFAULT_SEED, per_cluster: int = 6):
    """For each model and each cluster w: E[x|z] for z ~ N(μ_w, diag γ) (one row per cluster)."""
    tm = trained_mixtures(quick, seed)
    n_c = tm["config"]["n_clusters"]
    fig, axes = plt.subplots(n_c, 2 * per_cluster + 1, figsize=((2 * per_cluster + 1) * 0.6 + 0.5, n_c * 0.62))
    for col0, kind in ((0, "gmvae"), (per_cluster + 1, "idgmvae")):
        m = tm["models"][kind]
        with torch.no_grad():
            for w in range(n_c):
                imgs = m.mean(m.sample_prior(per_cluster, seed + w, cluster=w))
                for j in range(per_cluster):
                    ax = axes[w, col0 + j]
                    ax.imshow(imgs[j].reshape(28, 28).numpy(), cmap="gray_r", vmin=0, vmax=1)
        axes[0, col0 + per_cluster // 2].set_title(_NAMES[kind], fontsize=10)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
    for w in range(n_c):
        axes[w, 0].set_ylabel(f"w={w}", rotation=0, ha="right", va="center", fontsize=10)
    fig.tight_layout(pad=0.2)
    return fig
