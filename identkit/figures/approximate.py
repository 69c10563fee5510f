"""Figures of lesson 04: what approximate inference sees, NUTS and ADVI against the exact posteriors.

The runs come from :mod:`identkit.approximate` (NumPyro), cached in memory there, so a notebook that prints the
numbers and draws the figure samples once. Their bytes depend on the machine (floating-point reductions in JAX),
so these are registered as ``cost="training"`` figures: their drawn numbers are kept in ``figures/data/``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from .. import config
from ..plotting import palette
from . import figure

__all__ = ["alpha_posteriors", "label_switching", "ppca_meanfield"]

NOTEBOOK = "04_approximate_inference"
_COLOURS = dict(exact="0.15", nuts=palette(4)[0], advi=palette(4)[1], fullrank=palette(4)[2], prior="0.45")


def _hist(ax, draws, bins, colour, label):
    """A density histogram as an outline (step), so that the exact curve under it stays visible."""
    ax.hist(np.ravel(draws), bins=bins, density=True, histtype="step", lw=1.8, color=colour, label=label)


@figure("04_approx_alpha_posteriors",
        "posterior of α: exact grid vs NUTS (4 chains) vs mean-field ADVI on the three Beta-mixture data sets",
        notebook=NOTEBOOK, cost="training")
def alpha_posteriors(*, quick: bool = False, n: int = 10_000, seed: int = config.DEFAULT_SEED):
    """p(α | x; θ) on the paper's three data sets (θ known): the exact grid posterior (filled), NUTS's draws and
    mean-field ADVI's draws (outlined histograms), the Beta(5, 5) prior (dashed).

    One cluster: all three are the prior (α non-identifiable). The sharp panels are zoomed to ±5 exact sds; their
    titles give each method's sd.
    """
    from ..approximate import compare_gmm

    runs = compare_gmm(n=n, seed=seed, quick=quick)
    fig, axes = plt.subplots(1, 3, figsize=(14.0, 4.4), layout="constrained")
    for ax, (name, c) in zip(axes, runs.items()):
        post = c.exact
        m, s = post.mean(), post.sd()
        lo, hi = (0.0, 1.0) if s > 0.05 else (max(m - 5 * s, 0.0), min(m + 5 * s, 1.0))
        keep = (post.grid >= lo) & (post.grid <= hi)
        g, dens = post.grid[keep], post.density[keep]
        ax.fill_between(g, dens, color=_COLOURS["exact"], alpha=0.18, lw=0)
        ax.plot(g, dens, color=_COLOURS["exact"], lw=2.2, label="exact p(α | x)")
        bins = np.linspace(lo, hi, 41)
        _hist(ax, c.nuts.flat("alpha"), bins, _COLOURS["nuts"], "NUTS, 4 chains")
        _hist(ax, c.advi.flat("alpha"), bins, _COLOURS["advi"], "ADVI, mean-field")
        if lo == 0.0:
            ax.plot(g, post.prior_density[keep], color=_COLOURS["prior"], ls="--", lw=1.6, label="prior Beta(5, 5)")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.15 * dens.max())
        ax.locator_params(axis="x", nbins=5)
        ax.set_xlabel("α  (weight of component 1)")
        ax.set_title(f"{c.data.label}{'' if lo == 0.0 else ' (zoomed)'}\nsd: exact {s:.4f}, "
                     f"NUTS {float(c.nuts.sd('alpha')):.4f}, ADVI {float(c.advi.sd('alpha')):.4f}", fontsize=11.5)
    axes[0].set_ylabel("density of α")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    b = runs["overlapping"].nuts.info
    fig.suptitle(f"Three ways to the posterior of α (n = {n}; NUTS {b['chains']} × ({b['warmup']} + "
                 f"{b['draws']}))", fontsize=13)
    return fig


@figure("04_approx_label_switching",
        "free means on the separated data: NUTS chains each stay in one labelling; the exact mean lies between",
        notebook=NOTEBOOK, cost="training")
def label_switching(*, quick: bool = False, n: int = 10_000, seed: int = config.DEFAULT_SEED):
    """NUTS with μ1, μ2 free on the separated data: (a) μ1 per chain against the iteration, (b) each chain's draws of
    (α, μ1) and mean-field ADVI's, with the exact posterior mean (1/2, 0) that the label symmetry forces.
    """
    from ..approximate import compare_label_switching

    d, r, q = compare_label_switching(n=n, seed=seed, quick=quick)
    alpha, mu = r.samples["alpha"], r.samples["mu"]
    chains = alpha.shape[0]
    colours = palette(chains + 2)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12.5, 4.6), layout="constrained")
    it = np.arange(alpha.shape[1])
    handles = []
    for k in range(chains):
        label = f"chain {k + 1}: mean α {alpha[k].mean():.2f}, μ₁ {mu[k, :, 0].mean():.1f}"
        a.plot(it, mu[k, :, 0], color=colours[k], lw=1.2, alpha=0.8)
        b.plot(alpha[k], mu[k, :, 0], ".", color=colours[k], ms=3, alpha=0.5)
        handles.append(plt.Line2D([], [], color=colours[k], marker="o", ls="-", lw=1.2, label=label))
    b.plot(q.flat("alpha"), q.flat("mu")[:, 0], ".", color="0.2", ms=2, alpha=0.3)
    handles.append(plt.Line2D([], [], color="0.2", marker="o", ls="none", label="ADVI, mean-field"))
    b.plot([0.5], [0.0], "*", color=colours[chains + 1], ms=16, mec="black")
    handles.append(plt.Line2D([], [], color=colours[chains + 1], marker="*", ms=11, mec="black", ls="none",
                              label="exact posterior mean (1/2, 0), by symmetry"))
    a.set(xlabel="iteration after warm-up", ylabel="μ₁",
          title=f"(a) μ₁ per chain: split R̂ = {float(r.r_hat['mu'][0]):.0f}")
    a.set_ylim(-13, 13)
    b.set(xlabel="α", ylabel="μ₁", title="(b) draws of (α, μ₁) per chain, and ADVI's")
    b.set_xlim(0, 1)
    b.set_ylim(-13, 13)
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    fig.suptitle(f"Separated data, means free (n = {n}): two labellings, each chain sees one", fontsize=13)
    return fig


def _ellipse(ax, mean, cov, colour, ls, label, r=(1.0, 2.0)):
    """The r-sd ellipses {mean + r L (cos t, sin t)} of a 2-D Gaussian (L L' = cov)."""
    t = np.linspace(0, 2 * np.pi, 200)
    L = np.linalg.cholesky(cov)
    for i, radius in enumerate(r):
        xy = mean + radius * (L @ np.vstack([np.cos(t), np.sin(t)])).T
        ax.plot(xy[:, 0], xy[:, 1], color=colour, ls=ls, lw=2.0, label=label if i == 0 else None)


@figure("04_approx_ppca_meanfield",
        "PPCA with W = [w, w]: exact posterior vs NUTS vs mean-field / full-rank ADVI, and the collapsed direction",
        notebook=NOTEBOOK, cost="training")
def ppca_meanfield(*, quick: bool = False, n: int = 20, seed: int = config.DEFAULT_SEED):
    """(a) p(z | x_1) for PPCA with W = [w, w] (σ = 1): NUTS's draws, the exact 1- and 2-sd ellipses, mean-field
    ADVI's (fitted, from its draws) and full-rank ADVI's; (b) the posterior of v = uᵀz, u = (1, −1)/√2, over all
    ``n`` points: exactly the prior N(0, 1), which NUTS and full-rank ADVI recover and mean-field ADVI shrinks to
    the closed-form mean-field variance.
    """
    from ..approximate import compare_ppca
    from ..classical.ppca import nonidentifiable_directions

    c = compare_ppca("repeated", n=n, seed=seed, quick=quick)
    (u,) = nonidentifiable_directions(c.ppca.W)
    u = u if u[0] > 0 else -u
    fig, (a, b) = plt.subplots(1, 2, figsize=(12.5, 5.0), layout="constrained")
    i = 0
    z = c.nuts.flat("z")[:, i]
    a.plot(z[:, 0], z[:, 1], ".", color=_COLOURS["nuts"], ms=2.5, alpha=0.35, label="NUTS draws")
    _ellipse(a, c.mean[i], c.cov, _COLOURS["exact"], "-", "exact")
    for draws, colour, ls, label in ((c.meanfield, _COLOURS["advi"], "--", "ADVI, mean-field"),
                                     (c.fullrank, _COLOURS["fullrank"], ":", "ADVI, full-rank")):
        zz = draws.flat("z")[:, i]
        _ellipse(a, zz.mean(axis=0), np.cov(zz.T), colour, ls, label)
    a.set(xlabel="z₁", ylabel="z₂", title="(a) p(z | x₁): 1- and 2-sd ellipses", aspect="equal")
    a.set_xlim(-3.5, 3.5)
    a.set_ylim(-3.5, 3.5)
    v_grid = np.linspace(-4, 4, 401)
    bins = np.linspace(-4, 4, 49)
    b.plot(v_grid, stats.norm.pdf(v_grid), color=_COLOURS["exact"], lw=2.2, label="exact")
    mf_sd = float(np.sqrt(u**2 @ c.meanfield_var))
    b.plot(v_grid, stats.norm.pdf(v_grid, scale=mf_sd), color=_COLOURS["prior"], ls="--", lw=1.6,
           label=f"best mean-field q, sd {mf_sd:.2f}")
    for draws, colour, label in ((c.nuts, _COLOURS["nuts"], "NUTS draws"), (c.meanfield, _COLOURS["advi"], "ADVI, mean-field"),
                                 (c.fullrank, _COLOURS["fullrank"], "ADVI, full-rank")):
        v = draws.flat("z") @ u  # (draws, n): v_i for every point
        _hist(b, v, bins, colour, label)
    b.set(xlabel="v = uᵀz,  u = (1, −1)/√2", ylabel="density (all points pooled)",
          title=f"(b) v | x: exactly the prior N(0, 1), {n} points")
    b.set_xlim(-4, 4)
    b.set_ylim(0, 1.1 * stats.norm.pdf(0, scale=mf_sd))
    ha, la = a.get_legend_handles_labels()
    hb, lb = b.get_legend_handles_labels()
    keep = [j for j, lab in enumerate(lb) if lab not in la]
    fig.legend(ha + [hb[j] for j in keep], la + [lb[j] for j in keep], loc="outside lower center", ncols=5,
               markerscale=3.0)
    fig.suptitle("PPCA with W = [w, w] (σ = 1): mean-field ADVI narrows the direction the data cannot see",
                 fontsize=13)
    return fig
