"""Figures of notebook 05: posterior collapse in the Gaussian-mixture VAE, with the exact cluster posterior."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import config
from scipy.special import kl_div

from ..classical.gmvae import GMVAE, AffineDecoder, affine_cluster_posterior
from ..plotting import legend_below, palette
from . import figure

NOTEBOOK = "05_gaussian_mixture_vae"


# ----------------------------------------------------------------------------------------------------------------
# Models shown in the notebook (also used by its cells)
# ----------------------------------------------------------------------------------------------------------------
def injective_model(sigma: float = 0.5) -> GMVAE:
    r"""d = 2, K = 2 clusters at (±2, 0) with covariance 0.5 I; injective f(z) = (z₁, z₂ + 0.8 sin z₁)."""
    return GMVAE([[-2.0, 0.0], [2.0, 0.0]], np.stack([0.5 * np.eye(2)] * 2),
                 lambda w: np.stack([w[:, 0], w[:, 1] + 0.8 * np.sin(w[:, 0])], axis=1), sigma)


#: The folds have a kink at z = 0, where Gauss–Hermite converges only algebraically (the adaptive default rule
#: then stops with QuadratureError): they use the mirror-symmetric prior-centred rule of this order, which gives
#: p(w|x) = 1/2 exactly for the symmetric fold, and whose error is reported by ``quadrature_error``.
FOLD_ORDER = 2048


def fold_model(sigma: float = 0.3, mu: float = 2.0) -> GMVAE:
    r"""d = 1, K = 2 clusters at ±μ with unit variance; the fold f(z) = |z| (w non-identifiable)."""
    return GMVAE([[-mu], [mu]], [1.0, 1.0], np.abs, sigma, order=FOLD_ORDER)


def fold_eps_model(eps: float, sigma: float = 0.3, mu: float = 2.0) -> GMVAE:
    r"""The fold plus ε of the separating direction: f_ε(z) = (|z|, ε z) ∈ R² (injective for ε > 0)."""
    return GMVAE([[-mu], [mu]], [1.0, 1.0], lambda w: np.concatenate([np.abs(w), eps * w], axis=1), sigma,
                 order=FOLD_ORDER)


def eps_affine(eps: float) -> AffineDecoder:
    r"""d = 2 affine decoder keeping ε of the separating coordinate: f_ε(z) = (ε z₁, z₂)."""
    return AffineDecoder([[eps, 0.0], [0.0, 1.0]])


def heatmap_model(sigma: float, separation: float) -> GMVAE:
    r"""d = 1, clusters at ±Δ/2 (Δ = ``separation``) with unit variance, injective f(z) = (z, z²/2 − 1)."""
    half = separation / 2
    return GMVAE([[-half], [half]], [1.0, 1.0], lambda w: np.concatenate([w, 0.5 * w**2 - 1.0], axis=1), sigma)


# ----------------------------------------------------------------------------------------------------------------
# 1. injective decoder → sharp posterior
# ----------------------------------------------------------------------------------------------------------------
@figure("05_gmvae_injective", "Injective decoder: clusters stay separated in x and p(w|x) is sharp", notebook=NOTEBOOK)
def gmvae_injective(*, quick: bool = False, seed: int = config.DEFAULT_SEED, n: int = 1500):
    """Latent samples by cluster, data by cluster, data by exact p(w=2|x), and the histogram of max_k p(w=k|x)."""
    model = injective_model()
    x, w, z = model.sample(400 if quick else n, seed)
    post = model.cluster_posterior(x)
    cols = palette(2)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), constrained_layout=True)
    for k in range(2):
        axes[0].scatter(*w[z == k].T, s=5, color=cols[k], label=f"w = {k + 1}")
        axes[1].scatter(*x[z == k].T, s=5, color=cols[k], label=f"w = {k + 1}")
    axes[0].set(title="(a) latent z, by cluster", xlabel="$z_1$", ylabel="$z_2$")
    axes[1].set(title="(b) data x = f(z) + noise", xlabel="$x_1$", ylabel="$x_2$")
    legend_below(axes[0], ncols=2, markerscale=3)
    sc = axes[2].scatter(*x.T, s=5, c=post[:, 1], cmap="coolwarm", vmin=0, vmax=1)
    fig.colorbar(sc, ax=axes[2], label="p(w = 2 | x)")
    axes[2].set(title="(c) exact p(w = 2 | x)", xlabel="$x_1$", ylabel="$x_2$")
    axes[3].hist(post.max(axis=1), bins=np.linspace(0.5, 1, 26), color=cols[0])
    axes[3].text(0.05, 0.9, f"mean KL(p(w|x) ‖ prior)\n= {model.kl_to_prior(x).mean():.3f} nats (max log 2)",
                 transform=axes[3].transAxes, fontsize=10, va="top")
    axes[3].set(title="(d) confidence max$_k$ p(w = k | x)",
                xlabel="max$_k$ p(w = k | x)", ylabel="count")
    return fig


# ----------------------------------------------------------------------------------------------------------------
# 2. non-injective decoder → p(w|x) = 1/K exactly, and nearly so nearby
# ----------------------------------------------------------------------------------------------------------------
@figure("05_gmvae_noninjective",
        "Fold decoder: p(x|w) equal for both clusters, p(w|x) = 1/2 exactly; KL grows like ε² nearby",
        notebook=NOTEBOOK)
def gmvae_noninjective(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """(a) p(x|w=k) for the fold |z| (equal) and for f(z) = z; (b) p(w=1|x); (c) mean KL vs ε for f_ε."""
    cols = palette(4)
    fold = fold_model()
    ident = GMVAE(fold.means, fold.covs, lambda w: w, fold.sigma)  # smooth: the adaptive rule
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    xs = np.linspace(-5.5, 5.5, 400)[:, None]
    for k in range(2):
        axes[0].plot(xs[:, 0], np.exp(ident.cluster_log_likelihood(xs)[:, k]), color=cols[k], lw=1, alpha=0.6,
                     label=f"f(z) = z, w = {k + 1}")
        axes[0].plot(xs[:, 0], np.exp(fold.cluster_log_likelihood(xs)[:, k]), color=cols[k], lw=2.5 - k,
                     ls="-" if k == 0 else "--", label=f"f(z) = |z|, w = {k + 1}")
    axes[0].set(title="(a) p(x | w = k): the fold makes them equal", xlabel="x", ylabel="density")
    legend_below(axes[0], ncols=2)
    axes[1].plot(xs[:, 0], ident.cluster_posterior(xs)[:, 0], color=cols[0], label="f(z) = z")
    axes[1].plot(xs[:, 0], fold.cluster_posterior(xs)[:, 0], color=cols[1], lw=2.5, label="f(z) = |z|")
    axes[1].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[1].set(title="(b) p(w = 1 | x)", xlabel="x", ylabel="posterior", ylim=(-0.03, 1.03))
    legend_below(axes[1], ncols=2)
    # (c) mean KL(p(w|x) ‖ 1/2) as the decoder keeps ε of the separating direction
    eps = np.geomspace(1e-3, 2.0, 8 if quick else 20)
    n = 300 if quick else 2000
    kl_fold = [np.mean(fold_eps_model(e).kl_to_prior(fold_eps_model(e).sample(n, seed)[0])) for e in eps]
    means2, covs2, sig2 = np.array([[-2.0, 0.0], [2.0, 0.0]]), np.stack([np.eye(2)] * 2), 0.3
    kl_aff, kl_aff_quad = [], []
    for e in eps:
        g = GMVAE(means2, covs2, eps_affine(e), sig2)
        x = g.sample(n, seed)[0]
        p = affine_cluster_posterior(x, means2, covs2, eps_affine(e).A, eps_affine(e).b, sig2)
        kl_aff.append(np.mean(kl_div(p, 0.5).sum(axis=1)))
        kl_aff_quad.append(np.mean(g.kl_to_prior(x)))
    axes[2].loglog(eps, kl_fold, "o", color=cols[1], ms=7, mfc="none", label="(|z|, εz), K = 1 (quadrature)")
    axes[2].loglog(eps, kl_aff, "-", color=cols[2], label="(εz₁, z₂), K = 2 (closed form)")
    axes[2].loglog(eps, kl_aff_quad, "s", color=cols[2], ms=4, mfc="none", label="(εz₁, z₂) (quadrature)")
    axes[2].axhline(np.log(2), color="grey", lw=0.8, ls=":")
    axes[2].text(eps[0], np.log(2) * 0.6, "log 2", color="grey", fontsize=10)
    axes[2].set(title="(c) mean KL(p(w|x) ‖ prior) vs ε (0 at ε = 0)", xlabel="ε",
                ylabel="mean KL (nats)")
    legend_below(axes[2], ncols=1)
    return fig


# ----------------------------------------------------------------------------------------------------------------
# 3. KL heat map over (σ, separation)
# ----------------------------------------------------------------------------------------------------------------
def kl_grid(sigmas, separations, *, n: int, seed: int) -> np.ndarray:
    """Mean KL(p(w|x) ‖ 1/2) over n samples of :func:`heatmap_model` for each (separation Δ, σ); shape (S, Σ)."""
    out = np.empty((len(separations), len(sigmas)))
    for i, s in enumerate(separations):
        for j, sig in enumerate(sigmas):
            g = heatmap_model(sig, s)
            out[i, j] = g.kl_to_prior(g.sample(n, seed)[0]).mean()
    return out


@figure("05_gmvae_kl_heatmap", "Mean KL(p(w|x) ‖ prior) over a grid of noise σ and cluster separation Δ",
        notebook=NOTEBOOK)
def gmvae_kl_heatmap(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Heat map of the mean exact KL(p(w|x) ‖ 1/2) against σ and separation Δ, and slices against σ."""
    sigmas = np.geomspace(0.3, 5.0, 6 if quick else 16)
    seps = np.linspace(0.0, 6.0, 6 if quick else 16)
    kl = kl_grid(sigmas, seps, n=200 if quick else 1000, seed=seed)
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2), constrained_layout=True)
    mesh = axes[0].pcolormesh(sigmas, seps, kl, shading="nearest", cmap="viridis", vmin=0, vmax=np.log(2))
    cs = axes[0].contour(sigmas, seps, kl, levels=[0.05, 0.2, 0.4, 0.6], colors="white", linewidths=0.8)
    axes[0].clabel(cs, fmt="%.2f", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks([0.3, 0.5, 1, 2, 5], labels=["0.3", "0.5", "1", "2", "5"])
        ax.minorticks_off()
    fig.colorbar(mesh, ax=axes[0], label="mean KL(p(w|x) ‖ prior)  [max log 2]")
    axes[0].set(title="(a) identifiability of w: larger σ, closer clusters → collapse",
                xlabel="noise σ", ylabel="separation Δ = |μ₂ − μ₁|")
    cols = palette(4)
    for c, i in zip(cols, np.linspace(1, len(seps) - 1, 4).astype(int)):
        axes[1].plot(sigmas, kl[i], "o-", ms=3, color=c, label=f"Δ = {seps[i]:.1f}")
    axes[1].axhline(np.log(2), color="grey", lw=0.8, ls=":")
    axes[1].set(title="(b) slices: KL → 0 as σ grows", xlabel="noise σ", ylabel="mean KL (nats)")
    legend_below(axes[1], ncols=2)
    return fig


# ----------------------------------------------------------------------------------------------------------------
# 4. a trained MLP decoder (exact maximum likelihood)
# ----------------------------------------------------------------------------------------------------------------
@figure("05_gmvae_trained",
        "MLP decoder fitted by exact maximum likelihood: fit quality and exact p(w|x), one-cluster vs separated data",
        notebook=NOTEBOOK, cost="training")
def gmvae_trained(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Rows: one-cluster and separated data. Columns: data coloured by the fitted p(w=2|x); training trace
    against the true log-likelihood; histogram of p(w=2|x) for the fitted and the reference decoders. (The
    decoder names of :func:`~identkit.neural.exact_gmvae.collapse_experiment` write the continuous latent as
    ``w``; the legends show it as z.)"""
    from ..neural.exact_gmvae import collapse_experiment

    cols = palette(4)
    fig, axes = plt.subplots(2, 3, figsize=(14, 9), constrained_layout=True)
    for row, scenario in enumerate(["one_cluster", "separated"]):
        res = collapse_experiment(scenario, seed=seed, quick=quick)
        ax = axes[row]
        sc = ax[0].scatter(*res["x_test"].T, s=4, c=res["posterior_test"][:, 1], cmap="coolwarm", vmin=0, vmax=1)
        fig.colorbar(sc, ax=ax[0], label="fitted p(w = 2 | x)")
        ax[0].set(title=f"({'ad'[row]}) {scenario.replace('_', '-')} data, by fitted p(w=2|x)",
                  xlabel="$x_1$", ylabel="$x_2$")
        ax[1].plot(np.arange(1, len(res["loglik"]) + 1), res["loglik"], color=cols[0], label="MLP (train)")
        for (name, (tr, _, _)), c in zip(res["scores"].items(), cols):
            if name != "MLP (fitted)":
                ax[1].axhline(tr, color=c if name != "true model" else "black", ls="--", lw=1,
                              label=name)
        refs = [v[0] for v in res["scores"].values()] + [res["loglik"][-1]]
        ax[1].set(title=f"({'be'[row]}) mean train log p(x) (exact)", xlabel="Adam step", ylabel="log p(x)",
                  ylim=(min(refs) - 0.8, max(refs) + 0.2))
        ax[1].legend(fontsize=10, loc="lower right")
        bins = np.linspace(0, 1, 26)
        for name, c in zip(res["models"], cols):
            p = res["test"][name].posterior[:, 1]
            kl = res["scores"][name][2]
            ax[2].hist(p, bins=bins, histtype="step", lw=2, color=c if name != "true model" else "black",
                       label=f"{name}: KL {kl:.3f}")
        ax[2].set(title=f"({'cf'[row]}) exact p(w=2|x) on test data", xlabel="p(w = 2 | x)", ylabel="count",
                  yscale="log")
        legend_below(ax[2], ncols=1)
    return fig
