"""Figures of notebook 06: ICNN potentials, their Brenier (gradient) maps, and why strict convexity (λ > 0) matters."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

from ..plotting import legend_below, palette
from . import figure

__all__ = [
    "fit_brenier_2d",
    "degenerate_potentials",
    "gradient_map",
    "monotonicity_ratios",
    "collapsed_fraction",
    "icnn_potential",
    "no_lambda_collapse",
    "lambda_sweep",
]

_LIM = 2.0


def _target_potential(u: torch.Tensor) -> torch.Tensor:
    """A smooth, strongly convex 2-D potential φ whose gradient the ICNN is fitted to (a bent, sheared map)."""
    affine = torch.stack([2.0 * u[:, 0] - u[:, 1], -u[:, 0] + 1.5 * u[:, 1] + 0.5, 0.5 * u[:, 1] - 1.0], dim=1)
    return torch.logsumexp(affine, dim=1) + 0.15 * u.square().sum(1) + 0.3 * F.softplus(2 * u[:, 0]) ** 2


def gradient_map(psi, lam: float):
    """The map ``u ↦ ∇ψ(u) + λu`` for a scalar potential ``psi`` on (B, d) tensors (autograd, detached output)."""

    def g(u: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            uu = u.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(psi(uu).sum(), uu)
        return grad + lam * u.detach()

    return g


def degenerate_potentials() -> dict:
    """Convex but not strictly convex 2-D potentials whose gradient maps are not injective.

    * ``"flat region"``: ``ψ(u) = ½ Σ_i relu(u_i)²``, ``∇ψ = relu(u)``: the whole negative quadrant ↦ 0 and each
      half-axis strip ↦ a half-axis (a ReLU-type ICNN has such flat pieces).
    * ``"one direction"``: ``ψ(u) = softplus(3 eᵀu)/3``, ``∇ψ = e sigmoid(3 eᵀu)``, with the unit vector
      e = (0.8, 0.6) (``w`` in the code): ψ depends on ``eᵀu`` only, so every line orthogonal to e ↦ one point and
      the plane ↦ a segment.
    """
    w = torch.tensor([0.8, 0.6])
    return {
        "flat region": lambda u: 0.5 * F.relu(u).square().sum(-1),
        "one direction": lambda u: F.softplus(3.0 * (u @ w.to(u.dtype))) / 3.0,
    }


def fit_brenier_2d(*, lam: float = 0.2, steps: int = 300, seed: int = 0, hidden: int = 32, layers: int = 3):
    """A 2-D :class:`~identkit.neural.BrenierMap` with seeded init, fitted by Adam to ``∇φ`` of a fixed convex φ.

    Returns the map (float64) and the list of training losses ``E‖g(u) − ∇φ(u)‖²`` (``u ~ U[−2, 2]²``).
    """
    from ..neural import BrenierMap

    torch.manual_seed(seed)
    g = BrenierMap(2, hidden, layers, lam).double()
    gen = torch.Generator().manual_seed(seed)
    target = gradient_map(_target_potential, 0.0)
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        u = _LIM * (2 * torch.rand(256, 2, generator=gen, dtype=torch.float64) - 1)
        loss = (g(u) - target(u)).square().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return g, losses


def monotonicity_ratios(g, n: int = 2000, seed: int = 0, scale: float = _LIM) -> np.ndarray:
    """``(g(u) − g(v))ᵀ(u − v)/‖u − v‖²`` for ``n`` random pairs in ``[−scale, scale]²`` (half of them close pairs)."""
    gen = torch.Generator().manual_seed(seed)
    u = scale * (2 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 1)
    step = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    step[: n // 2] *= 1e-2
    v = u + step
    with torch.no_grad():
        num = ((g(u) - g(v)) * (u - v)).sum(1)
    return (num / (u - v).square().sum(1)).numpy()


def collapsed_fraction(g, eps: float = 0.05, n: int = 101) -> float:
    """Fraction of an ``n × n`` grid on ``[−2, 2]²`` mapped within ``eps`` of ``g(0)``: how much of the input space
    the map squeezes into one small ball (for an injective map with ``‖g(u) − g(v)‖ ≥ λ‖u − v‖`` this is at most
    the fraction of the grid within ``eps/λ`` of the origin)."""
    t = torch.linspace(-_LIM, _LIM, n, dtype=torch.float64)
    uu = torch.cartesian_prod(t, t)
    with torch.no_grad():
        d = (g(uu) - g(torch.zeros(1, 2, dtype=torch.float64))).norm(dim=1)
    return float((d <= eps).double().mean())


def _grid_lines(n_lines: int, n_pts: int):
    t = np.linspace(-_LIM, _LIM, n_pts)
    for c in np.linspace(-_LIM, _LIM, n_lines):
        yield np.stack([np.full_like(t, c), t], 1), 0
        yield np.stack([t, np.full_like(t, c)], 1), 1


def _draw_grid_image(ax, g, n_lines, n_pts, colors):
    for pts, kind in _grid_lines(n_lines, n_pts):
        with torch.no_grad():
            img = g(torch.tensor(pts, dtype=torch.float64)).numpy()
        ax.plot(img[:, 0], img[:, 1], color=colors[kind], lw=0.8)


def _angle_colours(pts: np.ndarray) -> np.ndarray:
    """Colour points by their angle (the cyclic, perceptually uniform ``twilight`` map, readable with a colour
    vision deficiency, unlike a hue wheel) darkened towards the origin, so one can see where each point went."""
    angle = (np.arctan2(pts[:, 1], pts[:, 0]) / (2 * np.pi)) % 1.0
    shade = 0.45 + 0.55 * np.clip(np.linalg.norm(pts, axis=1) / (_LIM * np.sqrt(2)), 0, 1)
    return plt.get_cmap("twilight")(angle)[:, :3] * shade[:, None]


@figure("06_icnn_potential", "A fitted 2-D ICNN potential, its Brenier map as a deformed grid, and its "
        "monotonicity ratios (all ≥ λ)", notebook="06_icnn_brenier_maps", cost="training")
def icnn_potential(*, quick: bool = False, lam: float = 0.2, seed: int = 0):
    """(a) contours of ``ψ(u) + λ‖u‖²/2`` for a seeded ICNN fitted to a convex target map; (b) the image of a regular
    grid under ``g = ∇ψ + λu``; (c) histogram of ``(g(u) − g(v))ᵀ(u − v)/‖u − v‖²`` over random pairs, vs λ."""
    g, losses = fit_brenier_2d(lam=lam, steps=60 if quick else 300, seed=seed)
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.3))
    n = 61 if quick else 121
    t = torch.linspace(-_LIM, _LIM, n, dtype=torch.float64)
    uu = torch.cartesian_prod(t, t)
    with torch.no_grad():
        psi = g.psi(uu).reshape(n, n).numpy().T  # cartesian_prod varies the 2nd coordinate fastest
    ax = axes[0]
    cs = ax.contourf(t.numpy(), t.numpy(), psi, levels=20, cmap="viridis")
    ax.contour(t.numpy(), t.numpy(), psi, levels=20, colors="white", linewidths=0.4)
    fig.colorbar(cs, ax=ax, shrink=0.85, label="ψ(u) + λ‖u‖²/2")
    ax.set(title="(a) strictly convex potential ψ(u) + λ‖u‖²/2", xlabel="$u_1$", ylabel="$u_2$", aspect="equal")
    ax = axes[1]
    cols = palette(2)
    _draw_grid_image(ax, g, 13, 80 if quick else 200, cols)
    ax.plot([], [], color=cols[0], label="image of $u_1$ = const")
    ax.plot([], [], color=cols[1], label="image of $u_2$ = const")
    legend_below(ax, ncols=1)
    ax.set(title="(b) Brenier map g = ∇ψ + λu: image of a grid", xlabel="$g_1$", ylabel="$g_2$", aspect="equal")
    ax = axes[2]
    ratios = monotonicity_ratios(g, n=1000 if quick else 5000, seed=seed)
    ax.hist(ratios, bins=40, color=cols[0], alpha=0.8)
    ax.axvline(lam, color="k", ls="--", label=f"λ = {lam:g}")
    ax.axvline(ratios.min(), color=palette(3)[2], ls=":", label=f"min ratio = {ratios.min():.3f}")
    ax.set(title="(c) monotonicity ratios on random pairs", xlabel="(g(u)−g(v))·(u−v) / ‖u−v‖²", ylabel="pairs")
    ax.legend(fontsize=10)
    fig.tight_layout()
    return fig


@figure("06_no_lambda_collapse", "Convex but not strictly convex potentials: their gradient maps collapse a "
        "region or a direction (λ = 0); adding λu restores injectivity", notebook="06_icnn_brenier_maps",
        cost="training")
def no_lambda_collapse(*, quick: bool = False, lam: float = 0.3):
    """Images of a coloured grid of points under ``∇ψ`` (top) and ``∇ψ + λu`` (bottom) for the two degenerate
    potentials of :func:`degenerate_potentials`."""
    n = 31 if quick else 61
    t = np.linspace(-_LIM, _LIM, n)
    pts = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
    colours = _angle_colours(pts)
    pots = degenerate_potentials()
    fig, axes = plt.subplots(2, 3, figsize=(12.5, 8.2))
    ax = axes[0, 0]
    ax.scatter(pts[:, 0], pts[:, 1], c=colours, s=6)
    ax.set(title="input grid u (colour = position)", aspect="equal")
    axes[1, 0].axis("off")
    axes[1, 0].text(0.02, 0.5, "Top row: λ = 0 (convex, not strictly).\nPoints of different colours land on the\n"
                    "same spot: the gradient map is not\ninjective.\n\n"
                    f"Bottom row: the same potentials + λ‖u‖²/2,\nλ = {lam:g}: ‖g(u) − g(v)‖ ≥ λ‖u − v‖,\n"
                    "every point keeps its own place.", fontsize=10, va="center")
    u = torch.tensor(pts, dtype=torch.float64)
    for j, (name, psi) in enumerate(pots.items(), start=1):
        for i, lam_i in enumerate((0.0, lam)):
            g = gradient_map(psi, lam_i)
            img = g(u).numpy()
            ax = axes[i, j]
            ax.scatter(img[:, 0], img[:, 1], c=colours, s=6)
            margin = float(monotonicity_ratios(g, n=2000, seed=j).min())
            frac = collapsed_fraction(g, n=n)
            ax.set(title=f"{name}, λ = {lam_i:g}\nmin ratio {margin:.3f}; {100 * frac:.0f}% of grid within 0.05 of g(0)",
                   aspect="equal")
            ax.title.set_fontsize(10)
    fig.tight_layout()
    return fig


@figure("06_lambda_sweep", "λ sweep: the certified monotonicity margin equals or exceeds λ, and the share of the "
        "plane collapsed into a small ball vanishes once λ > 0", notebook="06_icnn_brenier_maps",
        cost="training")
def lambda_sweep(*, quick: bool = False, seeds: int = 3):
    """(a) ``min (g(u) − g(v))ᵀ(u − v)/‖u − v‖²`` over random pairs vs λ for random ICNN Brenier maps and the two
    degenerate potentials (margin = λ exactly: they have a flat direction); (b) :func:`collapsed_fraction` vs λ."""
    from ..neural import BrenierMap

    lams = np.logspace(-3, 0, 7 if quick else 13)
    n_pairs = 500 if quick else 2000
    n_grid = 41 if quick else 101
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.3))
    cols = palette(4)
    for k, (name, psi) in enumerate(degenerate_potentials().items()):
        margins = [monotonicity_ratios(gradient_map(psi, lam), n=n_pairs, seed=k).min() for lam in lams]
        fracs = [collapsed_fraction(gradient_map(psi, lam), n=n_grid) for lam in lams]
        fracs0 = collapsed_fraction(gradient_map(psi, 0.0), n=n_grid)
        style = {"marker": "o" if k == 0 else "s", "ms": 8 if k == 0 else 4, "ls": "-" if k == 0 else "--"}
        axes[0].plot(lams, margins, color=cols[k + 1], label=f"∇ψ + λu, ψ: {name}", **style)
        axes[1].plot(lams, fracs, color=cols[k + 1], label=f"{name} (λ = 0: {100 * fracs0:.0f}%)", **style)
    for s in range(seeds):
        margins, fracs = [], []
        for lam in lams:
            torch.manual_seed(s)
            g = BrenierMap(2, 32, 3, float(lam)).double()
            margins.append(monotonicity_ratios(g, n=n_pairs, seed=s).min())
            fracs.append(collapsed_fraction(g, n=n_grid))
        kw = {"label": "random ICNN Brenier maps"} if s == 0 else {}
        axes[0].plot(lams, margins, ".-", color=cols[0], alpha=0.7, **kw)
        axes[1].plot(lams, fracs, ".-", color=cols[0], alpha=0.7, **kw)
    axes[0].plot(lams, lams, "k--", lw=1, label="λ (the guarantee)")
    axes[0].set(xscale="log", yscale="log", xlabel="λ", ylabel="min monotonicity ratio (random pairs)",
                title="(a) certified margin ≥ λ")
    axes[1].set(xscale="log", xlabel="λ", ylabel="share of grid within 0.05 of g(0)",
                title="(b) collapse of input space vs λ")
    for ax in axes:
        ax.legend(fontsize=10)
    fig.tight_layout()
    return fig
