"""Figures of lesson 03: probabilistic PCA, exact posteriors of local latents, and collapse as σ grows."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from .. import config
from ..classical.ppca import PPCA, nonidentifiable_directions, reference_W
from ..plotting import legend_below, palette
from . import figure

NOTEBOOK = "03_probabilistic_pca"
SIGMAS = (0.1, 0.2, 0.5, 1.0, 2.0)
_CASE_TITLES = {
    "zero_column": r"$W=[w_1, 0]$: $z_2$ non-identifiable",
    "full_rank": r"$W=[w_1, w_2]$: full column rank",
    "repeated": r"$W=[w, w]$: direction $(1,-1)/\sqrt{2}$ non-identifiable",
}


def _grid2d(lim: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square grid; Z has rows (z₁, z₂) with z₁ varying fastest, so ``values.reshape(n, n)`` is [z₂, z₁]."""
    g = np.linspace(-lim, lim, n)
    Z1, Z2 = np.meshgrid(g, g)  # Z1[i, j] = g[j] (horizontal), Z2[i, j] = g[i] (vertical)
    return Z1, Z2, np.column_stack([Z1.ravel(), Z2.ravel()])


def _prior_contours(ax, Z1, Z2, color="0.45"):
    """Contours of the N(0, I₂) prior at the 1σ, 2σ radii (dashed)."""
    r2 = Z1**2 + Z2**2
    cs = ax.contour(Z1, Z2, np.exp(-0.5 * r2), levels=np.exp(-0.5 * np.array([4.0, 1.0])),
                    colors=color, linestyles="--", linewidths=1.2)
    return cs


def _posterior_contours(ax, model: PPCA, x, Z, Z1, Z2, color):
    """Contours of the exact Gaussian posterior p(z | x) at the same 1σ, 2σ Mahalanobis levels."""
    logp = model.posterior_logpdf(Z, x).reshape(Z1.shape)
    peak = -0.5 * (model.K * np.log(2 * np.pi)) + model.mutual_information()  # log density at the mode
    levels = peak - 0.5 * np.array([4.0, 1.0])
    return ax.contour(Z1, Z2, logp, levels=levels, colors=[color], linewidths=1.8, linestyles="solid")


def _point(model_case: str, sigma: float, seed: int, index: int = 0):
    """The model of a reference case and one real data point x_i sampled from it (with its true z_i)."""
    model = PPCA(reference_W(model_case, seed=seed), sigma)
    x, z = model.sample(index + 1, seed=seed + 1)
    return model, x[index], z[index]


@figure("03_ppca_loglik_surface", "log p(x_i | z) over z ∈ [−2, 2]² for a sampled x_i: a ridge (z₂ unseen) vs a peak",
        notebook=NOTEBOOK)
def loglik_surface(*, quick: bool = False, sigma: float = 1.0, seed: int = config.DEFAULT_SEED,
                   lim: float = 2.0):
    """Log-likelihood surfaces log p(x_i | z) for one data point drawn from each model (σ = ``sigma``).

    Left: W = [w₁, 0], the surface is constant along z₂ (a ridge); right: full-rank W, a single peak.
    z₁ is horizontal, z₂ vertical; the cross marks the true z_i, the dot the posterior mean.
    """
    n = 60 if quick else 200
    Z1, Z2, Z = _grid2d(lim, n)
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.8), constrained_layout=True)
    for ax, case in zip(axes, ("zero_column", "full_rank")):
        model, x, z_true = _point(case, sigma, seed)
        ll = model.loglik(x, Z).reshape(Z1.shape)
        im = ax.contourf(Z1, Z2, ll, levels=30, cmap="viridis")
        ax.contour(Z1, Z2, ll, levels=10, colors="white", linewidths=0.5, alpha=0.6)
        mean, _ = model.posterior(x)
        ax.plot(*z_true, "x", color="black", ms=10, mew=2.5, label=r"true $z_i$")
        ax.plot(*mean, "o", color=palette(2)[1], ms=7, mec="black", label=r"posterior mean")
        ax.set(xlabel=r"$z_1$", ylabel=r"$z_2$", title=_CASE_TITLES[case], aspect="equal")
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.85, label=r"$\log p(x_i \mid z)$")
    legend_below(axes[0], ncols=2)
    fig.suptitle(rf"PPCA log-likelihood surfaces at a sampled data point ($D=5$, $\sigma={sigma:g}$)")
    return fig


@figure("03_ppca_posterior", "exact Gaussian posterior of (z₁, z₂) vs the N(0, I) prior, and its marginals",
        notebook=NOTEBOOK)
def posterior_vs_prior(*, quick: bool = False, sigma: float = 1.0, seed: int = config.DEFAULT_SEED,
                       lim: float = 3.0):
    """Rows: W = [w₁, 0] and full-rank W. Columns: joint posterior contours (solid) against the prior (dashed);
    the marginal posterior of z₁ and of z₂ against N(0, 1) for the same data point.

    In the first row the z₂ marginal coincides with the prior exactly (the curves overlap).
    """
    n = 80 if quick else 250
    Z1, Z2, Z = _grid2d(lim, n)
    u = np.linspace(-lim, lim, 400)
    c_prior, c_post = "0.45", palette(3)[0]
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.2), constrained_layout=True)
    for row, case in zip(axes, ("zero_column", "full_rank")):
        model, x, z_true = _point(case, sigma, seed)
        _prior_contours(row[0], Z1, Z2, c_prior)
        _posterior_contours(row[0], model, x, Z, Z1, Z2, c_post)
        row[0].plot(*z_true, "x", color="black", ms=9, mew=2.2)
        row[0].set(xlabel=r"$z_1$", ylabel=r"$z_2$", aspect="equal", title=_CASE_TITLES[case])
        mean, sd = model.marginal_posterior(x)
        kl = model.marginal_kl_to_prior(x)
        for k in range(2):
            ax = row[k + 1]
            ax.plot(u, stats.norm.pdf(u, mean[k], sd[k]), color=c_post, lw=3,
                    label=rf"$p(z_{k + 1}\mid x_i)$: KL $={kl[k]:.3f}$")
            ax.plot(u, stats.norm.pdf(u), "--", color=c_prior, label=r"prior $\mathcal{N}(0,1)$")
            ax.axvline(z_true[k], color="black", lw=1, ls=":")
            ax.set(xlabel=rf"$z_{k + 1}$", ylabel="density", xlim=(-lim, lim))
            legend_below(ax, ncols=1)
    axes[0, 0].plot([], [], "--", color=c_prior, label=r"prior $\mathcal{N}(0, I)$")
    axes[0, 0].plot([], [], color=c_post, label=r"posterior $p(z\mid x_i)$")
    legend_below(axes[0, 0], ncols=1)
    fig.suptitle(rf"Exact PPCA posterior for one sampled data point ($\sigma={sigma:g}$; contours at 1 and 2 sd; "
                 r"dotted: true $z_i$)")
    return fig


@figure("03_ppca_sigma_marginals", "posterior marginals of z₁, z₂ for σ ∈ {0.1, 0.2, 0.5, 1, 2} against the prior",
        notebook=NOTEBOOK)
def sigma_marginals(*, quick: bool = False, sigmas=SIGMAS, case: str = "full_rank",
                    seed: int = config.DEFAULT_SEED, lim: float = 3.0):
    """For each σ, the data point x_i = W z_i + σ ε_i (same z_i, ε_i for every σ) and the exact posterior
    marginals of z₁ (left) and z₂ (right), coloured by σ, against the N(0, 1) prior (dashed).
    As σ grows the posteriors widen and slide towards the prior: collapse grows with σ.
    """
    u = np.linspace(-lim, lim, 200 if quick else 600)
    W = reference_W(case, seed=seed)
    colors = palette(len(sigmas))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True, sharey=True)
    peak = stats.norm.pdf(0.0)
    for s, col in zip(sigmas, colors):
        model = PPCA(W, s)
        x, z = model.sample(1, seed=seed + 1)
        mean, sd = model.marginal_posterior(x[0])
        kl = model.marginal_kl_to_prior(x[0])
        peak = max(peak, float(stats.norm.pdf(0.0, 0.0, sd.min())))
        for k, ax in enumerate(axes):
            ax.plot(u, stats.norm.pdf(u, mean[k], sd[k]), color=col,
                    label=rf"$\sigma={s:g}$ (KL $={kl[k]:.2f}$)")
    for k, ax in enumerate(axes):
        ax.plot(u, stats.norm.pdf(u), "--", color="0.3", lw=2.2, label=r"prior $\mathcal{N}(0,1)$")
        ax.axvline(z[0, k], color="black", lw=1, ls=":")
        ax.set(xlabel=rf"$z_{k + 1}$", ylabel="density" if k == 0 else None,
               title=rf"posterior of $z_{k + 1}$ for one data point")
        legend_below(ax, ncols=3, title=r"noise sd $\sigma$")
    axes[0].set(yscale="log", ylim=(1e-2, 2.0 * peak))  # log axis: every width is visible, nothing is cut
    fig.suptitle(rf"Collapse grows with $\sigma$ ({_CASE_TITLES[case]}; dotted: true $z_i$; log density axis)")
    return fig


@figure("03_ppca_collapse_curve", "posterior sd and mean KL(posterior‖prior) of z₁, z₂ as continuous functions of σ",
        notebook=NOTEBOOK)
def collapse_curve(*, quick: bool = False, case: str = "full_rank", seed: int = config.DEFAULT_SEED,
                   sigma_range=(0.05, 10.0), n_data: int = 500):
    """Left: posterior sd of z₁ and z₂ against σ (log axis); it rises to the prior's 1.
    Right: the mean over ``n_data`` sampled points of the marginal KL(p(z_k | x_i) ‖ N(0, 1)) (dots), against its
    exact expectation −½ log Var(z_k | x) = I(z_k; x) (lines); it falls to 0 as σ grows.
    """
    sig = np.geomspace(*sigma_range, 40 if quick else 200)
    W = reference_W(case, seed=seed)
    sd = np.empty((sig.size, 2))
    ekl = np.empty((sig.size, 2))
    for j, s in enumerate(sig):
        model = PPCA(W, s)
        sd[j] = np.sqrt(np.diag(model.posterior_cov))
        ekl[j] = model.expected_kl_to_prior()
    mc_sig = np.geomspace(*sigma_range, 12)
    mc = np.array([PPCA(W, s).marginal_kl_to_prior(PPCA(W, s).sample(n_data, seed=seed + 1)[0]).mean(axis=0)
                   for s in mc_sig])
    colors = palette(2)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
    for k in range(2):
        axes[0].plot(sig, sd[:, k], color=colors[k], label=rf"$z_{k + 1}$")
        axes[1].plot(sig, ekl[:, k], color=colors[k], label=rf"$z_{k + 1}$: exact $E_x$ KL $= I(z_{k + 1};x)$")
        axes[1].plot(mc_sig, mc[:, k], "o", color=colors[k], mec="black", ms=5,
                     label=rf"$z_{k + 1}$: mean over {n_data} sampled $x_i$")
    axes[0].axhline(1.0, color="0.4", ls="--", lw=1.2, label="prior sd")
    for s in SIGMAS:
        for ax in axes:
            ax.axvline(s, color="0.85", lw=0.8, zorder=0)
    axes[0].set(xscale="log", xlabel=r"noise sd $\sigma$", ylabel="posterior sd", ylim=(0, 1.05),
                title="posterior sd (prior: 1)")
    axes[1].set(xscale="log", yscale="log", xlabel=r"noise sd $\sigma$", ylabel="nats",
                title=r"mean KL$(p(z_k\mid x)\,\|\,\mathcal{N}(0,1))$")
    legend_below(axes[0], ncols=3)
    legend_below(axes[1], ncols=2)
    fig.suptitle(rf"Collapse grows continuously with $\sigma$ ({_CASE_TITLES[case]}; grey lines: "
                 r"$\sigma\in\{0.1,0.2,0.5,1,2\}$)")
    return fig


@figure("03_ppca_repeated_columns", "W = [w, w]: the posterior along (1,−1)/√2 is the prior, along (1,1)/√2 it is sharp",
        notebook=NOTEBOOK)
def repeated_columns(*, quick: bool = False, sigma: float = 1.0, seed: int = config.DEFAULT_SEED,
                     lim: float = 3.0):
    """W = [w, w] (rank 1). Left: joint posterior (solid) vs prior (dashed) with the rotated axes
    u' = (z₁ + z₂)/√2 and v = (z₁ − z₂)/√2 = uᵀz, u = (1, −1)/√2 the null direction (W u = 0), as in lesson 03.
    Middle: the coordinates z₁, z₂ are only partly collapsed.
    Right: in rotated coordinates, v's posterior is the prior exactly, that of u' is sharp.
    """
    n = 80 if quick else 250
    Z1, Z2, Z = _grid2d(lim, n)
    t = np.linspace(-lim, lim, 400)
    model, x, z_true = _point("repeated", sigma, seed)
    null = nonidentifiable_directions(model.W)  # [(1, −1)/√2]
    rot = np.vstack([[1.0, 1.0] / np.sqrt(2.0), null[0]])
    c_prior, colors = "0.45", palette(4)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    ax = axes[0]
    _prior_contours(ax, Z1, Z2, c_prior)
    _posterior_contours(ax, model, x, Z, Z1, Z2, colors[0])
    for d, col, lab in zip(rot, (colors[2], colors[3]), ("u'", "v")):
        ax.annotate("", xy=2.4 * d, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=col, lw=2))
        ax.text(*(2.6 * d), rf"${lab}$", color=col, ha="center", va="center", fontsize=13)
    ax.plot(*z_true, "x", color="black", ms=9, mew=2.2)
    ax.set(xlabel=r"$z_1$", ylabel=r"$z_2$", aspect="equal", xlim=(-lim, lim), ylim=(-lim, lim),
           title=r"joint: posterior (solid) vs prior (dashed)")
    panels = [(axes[1], np.eye(2), (r"z_1", r"z_2"), "coordinates: partly collapsed"),
              (axes[2], rot, (r"u'=(z_1+z_2)/\sqrt{2}", r"v=(z_1-z_2)/\sqrt{2}"),
               "rotated: $v$ is exactly the prior")]
    for ax, U, names, title in panels:
        mean, sd = model.marginal_posterior(x, directions=U)
        kl = model.marginal_kl_to_prior(x, directions=U)
        ax.plot(t, stats.norm.pdf(t), "--", color=c_prior, lw=2.4, label=r"prior $\mathcal{N}(0,1)$")
        cols = (colors[1], colors[0]) if U is not rot else (colors[2], colors[3])
        styles = ("-", (0, (5, 3))) if U is not rot else ("-", ":")
        for k in range(2):
            ax.plot(t, stats.norm.pdf(t, mean[k], sd[k]), color=cols[k], ls=styles[k],
                    label=rf"${names[k]}$: sd $={sd[k]:.3f}$, KL $={kl[k]:.3f}$")
        ax.set(xlabel="value", ylabel="density", title=title, xlim=(-lim, lim))
        legend_below(ax, ncols=1)
    fig.suptitle(rf"$W=[w,w]$ ($\sigma={sigma:g}$): a direction, not a coordinate, collapses")
    return fig
