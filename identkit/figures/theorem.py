"""Figures of notebook 01: the theorem on a discrete toy, a continuous toy, and at the global optimum."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from .. import theory
from ..plotting import palette
from . import figure

NOTEBOOK = "01_theorem"


@figure("01_theorem_discrete", "Discrete toy: posterior = prior iff the likelihood ignores z; KL grows with strength a",
        notebook=NOTEBOOK)
def theorem_discrete(*, quick: bool = False, x_obs: float = 0.8, prior=(0.5, 0.3, 0.2)):
    """Left: prior and exact posterior p(z|x) at strength a = 0 and a = 1.5. Right: KL(p(z|x)‖p(z)) against a."""
    toy = theory.DiscreteToy(prior)
    c = palette(3)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    width = 0.27
    k = toy.support
    ax0.bar(k - width, toy.prior, width, color="0.6", label="prior p(z)")
    for j, s in enumerate((0.0, 1.5)):
        ax0.bar(k + j * width, toy.posterior(x_obs, s)[0], width, color=c[j], label=f"p(z | x={x_obs:g}), a = {s:g}")
    ax0.set(xticks=k, xlabel="z", ylabel="probability", title="Exact posterior on a finite support", ylim=(0, 0.8))
    ax0.legend(loc="upper right")
    strengths = np.linspace(-3, 3, 241 if not quick else 121)
    for j, x in enumerate((-2.0, 0.8, 2.5)):
        kl = np.array([toy.kl_to_prior(x, s)[0] for s in strengths])
        ax1.plot(strengths, kl, color=c[j], label=f"x = {x:g}")
    mi = np.array([toy.expected_kl(s, n=2000 if quick else 8000, seed=0) for s in strengths[::8]])
    ax1.plot(strengths[::8], mi, "k--", lw=1.5, label="average over x ~ p(x): I(x; z)")
    ax1.axvline(0, color="0.3", lw=0.8)
    ax1.set(xlabel="strength a of the dependence of p(x|z) on z", ylabel="KL(p(z|x) ‖ p(z))  [nats]",
            title="KL = 0 exactly at a = 0 (non-identifiable)")
    ax1.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it covers no curve
    fig.tight_layout()
    return fig


@figure("01_theorem_continuous", "Gaussian toy: posterior of z vs prior as the likelihood's slope a grows",
        notebook=NOTEBOOK)
def theorem_continuous(*, quick: bool = False, x_obs: float = 1.0, sigma: float = 1.0):
    """Left: closed-form posteriors of z for several strengths a against the prior.
    Right: KL vs a, closed form + quadrature."""
    toy = theory.GaussianToy(sigma)
    strengths = (0.0, 0.3, 1.0, 3.0)
    c = palette(len(strengths))
    zs = np.linspace(-4, 4, 801)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax0.plot(zs, stats.norm.pdf(zs), color="0.2", lw=4, alpha=0.35, label="prior N(0, 1)")
    for j, s in enumerate(strengths):
        m, v = toy.posterior(x_obs, s)
        ax0.plot(zs, stats.norm.pdf(zs, m[0], np.sqrt(v)), color=c[j], ls="--" if s == 0 else "-",
                 label=f"p(z | x={x_obs:g}), a = {s:g}")
    ax0.set(xlabel="z", ylabel="density", title=r"$x \mid z \sim \mathcal{N}(a\,z,\ \sigma^2)$")
    ax0.legend(loc="upper left")
    s_grid = np.linspace(0, 3, 301)
    ax1.plot(s_grid, [toy.kl_to_prior(x_obs, s)[0] for s in s_grid], color=c[2], label="closed form")
    s_dots = np.linspace(0, 3, 7 if quick else 13)
    ax1.plot(s_dots, [toy.grid_posterior(x_obs, s).kl_to_prior() for s in s_dots], "o", color="k", ms=5,
             label="quadrature on a grid")
    ax1.plot(s_grid, [toy.mutual_information(s) for s in s_grid], color=c[3], ls=":",
             label=r"average over x: $\frac{1}{2}\log(1+a^2/\sigma^2)$")
    ax1.set(xlabel="strength a", ylabel="KL(p(z|x) ‖ p(z))  [nats]", title=f"x = {x_obs:g}: KL = 0 only at a = 0")
    ax1.legend(loc="upper left")
    fig.tight_layout()
    return fig


@figure("01_global_optimum", "Population likelihood of a 2-component mixture on N(0,1) data peaks at a collapsed model",
        notebook=NOTEBOOK)
def global_optimum(*, quick: bool = False, weight: float = 0.7):
    """Population log-likelihood against the separation δ of the two means; at the optimum δ = 0 the cluster label w is
    non-identifiable."""
    deltas = np.linspace(-4, 4, 161 if quick else 401)
    ll = theory.location_mixture_population_loglik(deltas, weight=weight)
    best = -0.5 * np.log(2 * np.pi) - 0.5
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    ax.plot(deltas, ll, color=palette(1)[0])
    ax.axhline(best, color="0.4", ls=":", lw=1.2, label=r"$-\frac{1}{2}\log 2\pi e$ (true density)")
    ax.plot([0], [best], "o", color="k", ms=7, label="global optimum δ = 0: w non-identifiable")
    ax.set(xlabel="separation δ of the cluster means", ylabel=r"$E_{x\sim N(0,1)}\,\log p(x;\delta)$",
           title="Collapse at the global optimum, not a local one")
    ax.legend(loc="lower center")
    fig.tight_layout()
    return fig
