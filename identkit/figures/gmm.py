"""Figures of notebook 02: the Beta(5, 5)-mixture GMM, a global latent α with an exact posterior."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import config
from ..classical.gmm import paper_datasets
from ..plotting import palette
from . import figure

__all__ = ["gmm_loglik", "gmm_posterior_true", "gmm_posterior_mle", "gmm_posterior_sd_vs_n"]

_NB = "02_beta_mixture_gmm"
_PANEL_SIZE = (4.6, 4.0)


def _panels(k: int = 3, sharey: bool = False):
    fig, axes = plt.subplots(1, k, figsize=(_PANEL_SIZE[0] * k, _PANEL_SIZE[1]), sharey=sharey, layout="constrained")
    return fig, np.atleast_1d(axes)


def _theta_text(mu, sigma) -> str:
    return f"μ = ({mu[0]:.2f}, {mu[1]:.2f}),  σ = ({sigma[0]:.2f}, {sigma[1]:.2f})"


@figure("02_gmm_loglik", "mean per-point log-likelihood of α for one-cluster / overlapping / separated data",
        notebook=_NB)
def gmm_loglik(*, quick: bool = False, n: int = 10_000, seed: int = config.DEFAULT_SEED, n_alpha: int = 999):
    """(1/n) log p(x | α; θ) over α ∈ (0, 1) at the generating θ of each of the paper's three data sets.

    Flat for one cluster (α non-identifiable), a shallow hump for overlapping clusters, a clear peak near the
    generating α = 0.85 for separated ones. α increases left to right (the reference plotted it reversed).
    ``quick`` changes nothing: the figure costs milliseconds.
    """
    data = paper_datasets(n=n, seed=seed)
    alpha = np.linspace(0.0, 1.0, n_alpha + 2)[1:-1]  # open interval (0, 1)
    fig, axes = _panels()
    col = palette(3)
    for ax, (key, d), c in zip(axes, data.items(), col):
        ll = d.model.loglik(alpha, d.x) / d.x.size
        ax.plot(alpha, ll, color=c)
        j = int(np.argmax(ll))
        if np.ptp(ll) == 0:  # exactly constant: α is non-identifiable
            ax.set_ylim(ll[0] - 1.0, ll[0] + 1.0)
            ax.text(0.5, 0.62, "constant in α\n(exactly: μ₁ = μ₂, σ₁ = σ₂)", transform=ax.transAxes, ha="center",
                    fontsize=11)
        else:
            ax.plot(alpha[j], ll[j], "o", color=c, ms=7, label=f"max at α = {alpha[j]:.3f}")
        if d.alpha is not None:
            ax.axvline(d.alpha, color="0.3", ls="--", lw=1.2, label=f"generating α = {d.alpha:g}")
        ax.set_title(f"{d.label}\n{_theta_text(d.model.mu, d.model.sigma)}", fontsize=11.5)
        ax.set_xlim(0, 1)
        ax.set_xlabel("α  (weight of component 1)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower center")
    axes[0].set_ylabel("mean log-likelihood per point")
    fig.suptitle(f"Log-likelihood of the global latent α (n = {n} points)", fontsize=13)
    return fig


def _posterior_panel(ax, post, colour, title: str, true_alpha: float | None):
    """Posterior (filled) against the prior (dashed), KL and posterior mean/sd in a box, a zoom inset if sharp."""
    g = post.grid
    prior = post.prior_density
    ax.fill_between(g, post.density, color=colour, alpha=0.35, lw=0)
    ax.plot(g, post.density, color=colour, label="posterior p(α | x)")
    ax.plot(g, prior, color="0.2", ls="--", lw=1.6, label="prior Beta(5, 5)")
    if true_alpha is not None:
        ax.axvline(true_alpha, color="0.5", ls=":", lw=1.4, label="generating α")
    kl, m, s = post.kl_to_prior(), post.mean(), post.sd()
    kl_txt = f"{kl:.2e}" if abs(kl) < 1e-3 else f"{kl:.2f}"
    ax.text(0.03, 0.97, f"KL(post ‖ prior) = {kl_txt}\nmean {m:.3f}, sd {s:.4f}", transform=ax.transAxes,
            va="top", ha="left", fontsize=10.5, bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.45 * max(post.density.max(), prior.max()))  # headroom: the box above covers no curve
    ax.set_xlabel("α  (weight of component 1)")
    ax.set_title(title, fontsize=11.5)
    w = np.exp(post.log_weights)
    prior_mean = float(np.sum(w * prior * g))
    prior_sd = float(np.sqrt(np.sum(w * prior * (g - prior_mean) ** 2)))
    if s < 0.2 * prior_sd:  # sharp: zoom in on ±5 sd
        ins = ax.inset_axes([0.08, 0.28, 0.42, 0.42])
        lo, hi = max(m - 5 * s, 0.0), min(m + 5 * s, 1.0)
        keep = (g >= lo) & (g <= hi)
        ins.fill_between(g[keep], post.density[keep], color=colour, alpha=0.35, lw=0)
        ins.plot(g[keep], post.density[keep], color=colour, lw=1.5)
        if true_alpha is not None and lo <= true_alpha <= hi:
            ins.axvline(true_alpha, color="0.5", ls=":", lw=1.2)
        ins.set_xlim(lo, hi)
        ins.set_yticks([])
        ins.tick_params(labelsize=10)
        ins.locator_params(axis="x", nbins=3)
        ins.set_title("zoom", fontsize=10)


def _posterior_figure(models, data, suptitle: str):
    fig, axes = _panels()
    for ax, (key, d), c in zip(axes, data.items(), palette(3)):
        model = models[key]
        post = model.posterior(d.x)
        _posterior_panel(ax, post, c, f"{d.label}\n{_theta_text(model.mu, model.sigma)}", d.alpha)
    axes[0].set_ylabel("density of α")
    handles, labels = axes[-1].get_legend_handles_labels()
    handles[0] = plt.Line2D([], [], color="0.35", lw=2)  # posterior colour differs per panel: legend in grey
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle(suptitle, fontsize=13)
    return fig


@figure("02_gmm_posterior_true", "exact posterior of α vs the Beta(5,5) prior at the generating θ, with KL",
        notebook=_NB)
def gmm_posterior_true(*, quick: bool = False, n: int = 10_000, seed: int = config.DEFAULT_SEED):
    """Exact p(α | x; θ) (2001-point grid) against the prior for the three data sets at the generating θ.

    One cluster: the posterior *is* the prior (KL ≈ 1e-14, rounding only). Dotted line: generating α.
    """
    data = paper_datasets(n=n, seed=seed)
    models = {k: d.model for k, d in data.items()}
    return _posterior_figure(models, data, f"Exact posterior of α at the generating θ (n = {n})")


@figure("02_gmm_posterior_mle", "exact posterior of α vs the prior at a fitted θ (local likelihood maximum, α free)",
        notebook=_NB)
def gmm_posterior_mle(*, quick: bool = False, n: int = 10_000, seed: int = config.DEFAULT_SEED):
    """As ``02_gmm_posterior_true`` but with θ = (μ1, μ2, σ1, σ2) fitted (α free): a local maximum of the likelihood
    found by L-BFGS-B (``fit_mle``); with free σ the likelihood is unbounded, so there is no global maximum.

    The fitted θ is printed in each panel title; see notebook 02 for what changes and why.
    """
    data = paper_datasets(n=n, seed=seed)
    fits = {k: d.model.fit_mle(d.x, seed=seed) for k, d in data.items()}
    # θ to 4 decimals: L-BFGS-B's last digits differ between CPUs (SIMD sums); the drawn figure should not
    models = {k: data[k].model.with_params(np.round(f.mu, 4), np.round(f.sigma, 4)) for k, f in fits.items()}
    return _posterior_figure(models, data,
                             f"Exact posterior of α at a fitted θ, a local maximum of the likelihood (n = {n})")


@figure("02_gmm_posterior_sd_vs_n", "posterior sd of α against the number of data points, three regimes",
        notebook=_NB)
def gmm_posterior_sd_vs_n(*, quick: bool = False, n_max: int = 10_000, seed: int = config.DEFAULT_SEED):
    """Posterior sd of α (generating θ) on the first n points of each data set, n from 10 to ``n_max``.

    One cluster stays at the prior sd (non-identifiable for every n); overlapping and separated shrink like
    c/√n, with a larger c (less Fisher information per point) when the clusters overlap.
    """
    data = paper_datasets(n=n_max, seed=seed)
    ns = np.unique(np.round(np.geomspace(10, n_max, 9 if quick else 17)).astype(int))
    fig, ax = plt.subplots(figsize=(6.8, 4.6), layout="constrained")
    prior_sd = None
    for (key, d), c, mk in zip(data.items(), palette(3), "os^"):
        sds = [d.model.posterior(d.x[:k]).sd() for k in ns]
        ax.plot(ns, sds, marker=mk, color=c, label=d.label)
        prior_sd = float(np.sqrt(np.prod(d.model.prior) / (sum(d.model.prior) ** 2 * (sum(d.model.prior) + 1))))
    ax.axhline(prior_sd, color="0.2", ls="--", lw=1.4, label="prior sd")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of data points n")
    ax.set_ylabel("posterior sd of α")
    ax.set_title("How fast does the data pin down α?")
    ax.legend(loc="lower left")
    return fig
