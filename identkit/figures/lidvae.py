"""Figures of lesson 07: LIDVAE vs VAE on Fashion-MNIST (collapse, identifiability meter, traversals, λ).

Training happens once per process and configuration: :func:`trained_models` and :func:`lambda_sweep` are
``functools.lru_cache``-d, and each run is also cached on disk by :func:`identkit.neural.train.cached_fit`
(``checkpoints/cache/``, git-ignored; keyed by model, settings, data and source code), so the notebook and
``python -m identkit figures`` never train the same model twice.

Settings (:data:`QUICK_CONFIG`, :data:`FULL_CONFIG`): both models get the same encoder, decoder width, data,
seed and optimiser. The injective decoder uses the table's setting (:class:`identkit.table.TableSettings`:
λ = 1, softplus ICNNs, nonlinear part calibrated to 0.3·λu at initialisation), chosen by the ablation of
:mod:`identkit.ablation` (figure ``07_injective_ablation``). Adam is used instead of the paper's RMSprop
because it reaches the collapsed regime of the VAE in few steps (quick mode has 600) and RMSprop's first
steps (10× the learning rate) can blow up the Brenier maps at learning rates above 1e-3.
"""
from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import config, metrics
from ..plotting import legend_below, palette
from ..table import TableSettings
from . import figure

NOTEBOOK = "07_lidvae_fashion_mnist"

#: The injective decoder's setting: the table's (chosen by the ablation), so lesson 07 and Table 1 agree.
INJECTIVE = dict(lam=TableSettings.lid_lam, activation=TableSettings.lid_activation,
                 init_ratio=TableSettings.lid_init_ratio)
#: Quick (CI) mode: 2 000 training images, 600 steps per model.
QUICK_CONFIG = dict(n_train=2000, n_eval=500, latent_dim=32, hidden=256, epochs=30, batch_size=100,
                    optimizer="adam", lr=2e-3, iw_samples=100, fisher_samples=4, **INJECTIVE)
#: Full mode: 10 000 training images, latent 64 and width 512 as in the paper, 2 000 steps per model.
FULL_CONFIG = dict(n_train=10000, n_eval=2000, latent_dim=64, hidden=512, epochs=20, batch_size=100,
                   optimizer="adam", lr=1e-3, iw_samples=500, fisher_samples=10, **INJECTIVE)
#: λ values of the sweep and its (smaller) model settings.
LAMBDAS = (0.1, 0.3, 1.0, 3.0)
SWEEP_QUICK = dict(n_train=1000, n_eval=500, latent_dim=16, hidden=128, epochs=20, batch_size=100,
                   optimizer="adam", lr=2e-3, activation=INJECTIVE["activation"], init_ratio=INJECTIVE["init_ratio"])
SWEEP_FULL = dict(n_train=10000, n_eval=2000, latent_dim=32, hidden=256, epochs=15, batch_size=100,
                  optimizer="adam", lr=1e-3, activation=INJECTIVE["activation"], init_ratio=INJECTIVE["init_ratio"])
#: Traversals: z_k moves over μ_k(x) + t, t ∈ [−TRAVERSAL_RANGE, TRAVERSAL_RANGE], for this many test images.
TRAVERSAL_RANGE = 3.0
TRAVERSAL_IMAGES = 50
_NAMES = {"vae": "VAE", "lidvae": "LIDVAE"}


def settings(quick: bool | None = None) -> dict:
    """The configuration used in quick or full mode."""
    return dict(QUICK_CONFIG if config.resolve_quick(quick) else FULL_CONFIG)


@functools.lru_cache(maxsize=4)
def _data(n_train: int, n_eval: int, seed: int):
    from ..data import fashion_mnist_subsets

    return fashion_mnist_subsets(n_train, n_eval, seed, eval_seed=seed + 1)


def _fit(kind: str, cfg: dict, seed: int, lam: float | None = None):
    from ..neural.models import LIDVAE, VAE
    from ..neural.train import cached_fit

    x, _, _, _ = _data(cfg["n_train"], cfg["n_eval"], seed)
    if kind == "vae":
        model = VAE(784, cfg["latent_dim"], hidden=cfg["hidden"], seed=seed)
    else:
        model = LIDVAE(784, cfg["latent_dim"], hidden=cfg["hidden"], lam=cfg["lam"] if lam is None else lam,
                       activation=cfg["activation"], init_ratio=cfg["init_ratio"], seed=seed)
    return cached_fit(model, x, tag=f"07-{kind}", epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                      optimizer=cfg["optimizer"], lr=cfg["lr"], seed=seed, progress=False)


@functools.lru_cache(maxsize=4)
def trained_models(quick: bool | None = None, seed: int = config.DEFAULT_SEED) -> dict:
    """Train (or load) a VAE and a LIDVAE with identical settings; cached per process.

    Returns
    -------
    dict
        ``models`` ({"vae", "lidvae"} → model), ``history`` (same keys), ``x_eval`` (binarised test images),
        ``y_eval`` (labels), ``config``.
    """
    quick = config.resolve_quick(quick)
    cfg = settings(quick)
    out = {"models": {}, "history": {}, "config": cfg}
    for kind in ("vae", "lidvae"):
        out["models"][kind], out["history"][kind] = _fit(kind, cfg, seed)
    _, _, out["x_eval"], out["y_eval"] = _data(cfg["n_train"], cfg["n_eval"], seed)
    return out


def _evaluate(model, x, cfg, seed, iw=True) -> dict:
    mu, lv = metrics.encode_all(model, x)
    kl_dim = metrics.kl_per_dimension(mu, lv)
    active = metrics.active_mask(mu)  # the table's AU criterion
    out = {"kl_per_dim": kl_dim, "fisher": metrics.identifiability_meter(model, x, samples=cfg["fisher_samples"],
                                                                         seed=seed) if "fisher_samples" in cfg
           else None,
           "active": active, "AU": float(active.mean()), "AU_count": int(active.sum()),
           "KL": float(kl_dim.sum()),
           "MI": metrics.mutual_information(mu, lv, seed=seed)}
    with torch.no_grad():
        out["ELBO"] = float(model.elbo(torch.as_tensor(x), seed=seed).mean())
    if iw:
        out["LL"] = float(np.mean(metrics.iw_loglik(model, x, samples=cfg["iw_samples"], seed=seed)))
    return out


def traversal_change(model, x: torch.Tensor, *, span: float = TRAVERSAL_RANGE, steps: int = 9) -> np.ndarray:
    r"""Per latent dimension, how much the decoded image moves along a traversal of that dimension alone.

    .. math:: \Delta_k = \frac1N\sum_{i=1}^N \max_{t\in T}\,\big\|\mathbb E[x\mid z=\mu(x_i)+t e_k]
              - \mathbb E[x\mid z=\mu(x_i)]\big\|_1,\qquad T = \mathrm{linspace}(-\text{span}, \text{span},
              \text{steps}),

    the largest total pixel change (sum of absolute changes of the Bernoulli means) over the traversal, averaged
    over the rows of ``x``. A dimension the decoder ignores has Δ_k = 0; an injective decoder has Δ_k > 0 for
    every k (its lower bound λ²s_min(β)|t| holds in Euclidean norm, and ‖·‖₁ ≥ ‖·‖₂).
    """
    ts = torch.linspace(-span, span, steps)
    with torch.no_grad():
        mu = model.encode(x)[0]
        base = model.mean(mu)
        out = np.zeros(mu.shape[1])
        for k in range(mu.shape[1]):
            z = mu.unsqueeze(0).repeat(steps, 1, 1)
            z[:, :, k] += ts[:, None]
            change = (model.mean(z.reshape(-1, mu.shape[1])).reshape(steps, *base.shape) - base).abs().sum(-1)
            out[k] = float(change.max(0).values.mean())
    return out


@functools.lru_cache(maxsize=4)
def summary(quick: bool | None = None, seed: int = config.DEFAULT_SEED) -> dict:
    """Per model: AU (fraction), AU_count, ``active`` (mask), KL, MI, LL (IW bound), ELBO, per-dim KL, Fisher meter,
    ``traversal_change`` (Δ_k of :func:`traversal_change` over the first :data:`TRAVERSAL_IMAGES` test images)."""
    quick = config.resolve_quick(quick)
    tm = trained_models(quick, seed)
    out = {k: _evaluate(m, tm["x_eval"], tm["config"], seed) for k, m in tm["models"].items()}
    for k, m in tm["models"].items():
        out[k]["traversal_change"] = traversal_change(m, tm["x_eval"][:TRAVERSAL_IMAGES])
    return out


@functools.lru_cache(maxsize=4)
def lambda_sweep(quick: bool | None = None, seed: int = config.DEFAULT_SEED) -> dict:
    """Train a LIDVAE for each λ in :data:`LAMBDAS` (and a VAE reference) with a small configuration.

    Returns ``{"lambdas": tuple, "lidvae": [metrics per λ], "vae": metrics}`` (AU, KL, MI, ELBO, active).
    """
    quick = config.resolve_quick(quick)
    cfg = dict(SWEEP_QUICK if quick else SWEEP_FULL)
    _, _, xe, _ = _data(cfg["n_train"], cfg["n_eval"], seed)
    out = {"lambdas": LAMBDAS, "config": cfg, "lidvae": []}
    for lam in LAMBDAS:
        model, _ = _fit("lidvae", cfg, seed, lam=lam)
        out["lidvae"].append(_evaluate(model, xe, cfg, seed, iw=False))
    model, _ = _fit("vae", cfg, seed)
    out["vae"] = _evaluate(model, xe, cfg, seed, iw=False)
    return out


# ---------------------------------------------------------------------------------------------- figures
@figure("07_lidvae_kl_per_dim", "Per-dimension KL(q(z_k|x) || p(z_k)) of VAE vs LIDVAE, inactive units marked",
        notebook=NOTEBOOK, cost="training")
def kl_per_dim(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Bars of the mean KL of each latent dimension (sorted), VAE vs LIDVAE; inactive units (AU criterion) pale.

    One collapse criterion only, the table's: a unit is active when Var_x E_q[z_k] ≥ 0.01 (He et al.). Inactive
    units are drawn in a pale shade; the title counts the active ones.
    """
    s = summary(quick, seed)
    return kl_bars([(_NAMES[kind], s[kind]["kl_per_dim"], s[kind]["active"]) for kind in ("vae", "lidvae")])


def kl_bars(panels, figsize=(10, 3.4)):
    """One panel per ``(name, kl_per_dim, active)``: bars of each dimension's mean KL, sorted, log axis; inactive
    units (the AU criterion, ``active`` False) in grey. Shared by lessons 07 and 10."""
    c = palette(len(panels))
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, sharey=True)
    for ax, (name, kl_per, active), col in zip(np.atleast_1d(axes), panels, c):
        order = np.argsort(kl_per)[::-1]
        kl = kl_per[order]
        ax.bar(np.arange(kl.size), np.maximum(kl, 1e-5), width=0.85,
               color=[col if a else "0.82" for a in active[order]])
        ax.set_yscale("log")
        ax.set_xlabel("latent dimension (sorted by KL)")
        ax.set_title(f"{name}: {int(active.sum())} of {kl.size} units active (grey: inactive)", fontsize=10)
    np.atleast_1d(axes)[0].set_ylabel(r"mean KL$(q(z_k|x)\,\|\,p(z_k))$ [nats]")
    fig.tight_layout()
    return fig


@figure("07_lidvae_identifiability_meter", "Identifiability meter (Fisher information per dim) vs KL per dim",
        notebook=NOTEBOOK, cost="training")
def identifiability_meter(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Scatter of the per-dimension expected Fisher information E(∂ log p(x|z)/∂z_k)² against the KL of the dim.

    Filled markers: active units; hollow: inactive ones (Var_x E_q[z_k] < 0.01). Dimensions the decoder
    ignores (Fisher ≈ 0: non-identifiable) are those whose posterior stays at the prior (KL ≈ 0).
    """
    s = summary(quick, seed)
    c = palette(2)
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for kind, col, mk in (("vae", c[0], "o"), ("lidvae", c[1], "s")):
        f, kl, act = np.maximum(s[kind]["fisher"], 1e-6), np.maximum(s[kind]["kl_per_dim"], 1e-5), s[kind]["active"]
        ax.scatter(f[act], kl[act], color=col, marker=mk, alpha=0.8, label=f"{_NAMES[kind]} active",
                   edgecolor="white", lw=0.5)
        if (~act).any():
            ax.scatter(f[~act], kl[~act], facecolor="none", edgecolor=col, marker=mk, lw=1,
                       label=f"{_NAMES[kind]} inactive")
    ax.set(xscale="log", yscale="log", xlabel=r"identifiability meter $E\,(\partial_{z_k}\log p(x|z))^2$",
           ylabel=r"mean KL$(q(z_k|x)\,\|\,p(z_k))$")
    ax.legend(frameon=False, loc="upper left")
    ax.set_title("each point is one latent dimension", fontsize=10)
    fig.tight_layout()
    return fig


def _img(ax, v, title=None):
    ax.imshow(np.asarray(v).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.spines[:].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)


@figure("07_lidvae_reconstructions", "Test images and their VAE / LIDVAE reconstructions", notebook=NOTEBOOK, cost="training")
def reconstructions(*, quick: bool = False, seed: int = config.DEFAULT_SEED, n: int = 10):
    """Rows: binarised test images, VAE reconstructions E[x|z=μ(x)], LIDVAE reconstructions."""
    tm = trained_models(quick, seed)
    x = tm["x_eval"][:n]
    rows = [("data", x)]
    with torch.no_grad():
        for kind in ("vae", "lidvae"):
            m = tm["models"][kind]
            rows.append((_NAMES[kind], m.mean(m.encode(x)[0])))
    fig, axes = plt.subplots(3, n, figsize=(n * 0.9 + 0.6, 3.0))
    for r, (name, imgs) in enumerate(rows):
        for j in range(n):
            _img(axes[r, j], imgs[j])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    fig.tight_layout(pad=0.3)
    return fig


@figure("07_lidvae_traversals", "Latent traversals: top-KL dims and the weakest dim, VAE vs LIDVAE",
        notebook=NOTEBOOK, cost="training")
def traversals(*, quick: bool = False, seed: int = config.DEFAULT_SEED, steps: int = 9, image: int = 0):
    """Decode μ(x) + t e_k for t ∈ [−3, 3] along the two highest-KL dims and the lowest-KL dim of each model.

    Row labels give the dimension's KL and Δ, the largest total pixel change along the row
    (:func:`traversal_change` for this image); figure ``07_lidvae_traversal_change`` shows Δ for every dimension.
    """
    tm, s = trained_models(quick, seed), summary(quick, seed)
    x = tm["x_eval"][image:image + 1]
    ts = torch.linspace(-3, 3, steps)
    fig, axes = plt.subplots(6, steps, figsize=(steps * 0.85 + 1.4, 6 * 0.95))
    r = 0
    for kind in ("vae", "lidvae"):
        m = tm["models"][kind]
        order = np.argsort(s[kind]["kl_per_dim"])[::-1]
        dims = [int(order[0]), int(order[1]), int(order[-1])]
        with torch.no_grad():
            mu = m.encode(x)[0][0]
            for k in dims:
                z = mu.repeat(steps, 1)
                z[:, k] = mu[k] + ts
                imgs = m.mean(z)
                change = float((imgs - imgs[steps // 2]).abs().sum(-1).max())
                for j in range(steps):
                    _img(axes[r, j], imgs[j], f"{float(ts[j]):+.1f}" if r == 0 else None)
                axes[r, 0].set_ylabel(f"{_NAMES[kind]} z{k}\nKL {s[kind]['kl_per_dim'][k]:.2f}\nΔ {change:.1f}",
                                      rotation=0, ha="right", va="center", fontsize=10)
                r += 1
    fig.tight_layout(pad=0.2)
    return fig


@figure("07_lidvae_traversal_change", "How much each latent dimension moves the decoded image (Δ_k, log axis), "
        "VAE vs LIDVAE", notebook=NOTEBOOK, cost="training")
def traversal_change_figure(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Δ_k of :func:`traversal_change` for every dimension, sorted by KL, both models (log axis; hollow: inactive).

    The traversal images of ``07_lidvae_traversals`` show three dimensions per model; this shows them all, averaged
    over :data:`TRAVERSAL_IMAGES` test images, so that "does a dimension change the image?" is read off a scale.
    """
    s = summary(quick, seed)
    c = palette(2)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    for kind, col, mk in (("vae", c[0], "o"), ("lidvae", c[1], "s")):
        order = np.argsort(s[kind]["kl_per_dim"])[::-1]
        d, act = s[kind]["traversal_change"][order], s[kind]["active"][order]
        k = np.arange(d.size)
        ax.plot(k, d, "-", color=col, lw=0.8, alpha=0.6)
        ax.scatter(k[act], d[act], color=col, marker=mk, s=18, label=f"{_NAMES[kind]} active", zorder=3)
        if (~act).any():
            ax.scatter(k[~act], d[~act], facecolor="white", edgecolor=col, marker=mk, s=18, lw=1,
                       label=f"{_NAMES[kind]} inactive", zorder=3)
    ax.set(yscale="log", xlabel="latent dimension (sorted by KL, per model)",
           ylabel=rf"$\Delta_k$: largest $\|\Delta\,\mathbb{{E}}[x|z]\|_1$" "\n"
                  rf"over $t\in[-{TRAVERSAL_RANGE:g},{TRAVERSAL_RANGE:g}]$")
    ax.set_xlim(-0.5, len(s["vae"]["traversal_change"]) - 0.5)
    legend_below(ax, ncols=4, frameon=False)
    ax.grid(axis="y", alpha=0.3, which="both")
    return fig


@figure("07_lidvae_lambda_sweep", "LIDVAE's inverse-Lipschitz knob λ vs collapse (AU, KL, ELBO)",
        notebook=NOTEBOOK, cost="training")
def lambda_sweep_figure(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Active units, total KL and test ELBO of LIDVAE against λ (log axis), the VAE as a dashed reference."""
    sw = lambda_sweep(quick, seed)
    lams = np.array(sw["lambdas"])
    c = palette(2)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, lab in zip(axes, ("AU", "KL", "ELBO"), ("active units (fraction)", "KL [nats]", "test ELBO")):
        ax.plot(lams, [r[key] for r in sw["lidvae"]], "o-", color=c[1], label="LIDVAE")
        ax.axhline(sw["vae"][key], color=c[0], ls="--", label="VAE")
        ax.set(xscale="log", xlabel=r"$\lambda$ (Brenier maps $\nabla\psi + \lambda u$)", ylabel=lab)
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig


@figure("07_injective_ablation", "Ablation of the injective decoder (initial scale, λ, activation, g2 width, "
        "optimiser): fit vs the VAE, active units, nonlinearity after training", notebook=NOTEBOOK)
def injective_ablation_figure(*, quick: bool = False, csv=None):
    """Three panels per variant of :data:`identkit.ablation.VARIANTS`, from the committed ablation records.

    Left: held-out ELBO and IW log-likelihood minus the VAE's (mean ± sd over seeds; small dots: each seed).
    Middle: active units (the 0.95 line is the paper's bar). Right: ``‖e^a∇ψ‖ / ‖λu‖`` of g1 and g2 after
    training (log axis; 1 means the nonlinear part is as large as the linear one). The table's setting is bold.
    Reads ``csv`` (default ``results/injective_ablation.csv``, written by ``python -m identkit ablation``);
    ``quick`` changes nothing (the figure only reads records).
    """
    from .. import ablation, table

    rows = ablation.read_ablation(csv)
    summary = ablation.summarise_ablation(rows)
    chosen = table.table_settings(quick=False)
    names = [r["variant"] for r in summary]
    y = np.arange(len(names))
    vae = {k: np.mean([r[k] for r in rows if r["variant"] == "vae"]) for k in ("elbo", "LL")}
    c = palette(3)
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.32 * len(names) + 1.8), sharey=True)
    for key, colour, dy, lab in (("elbo", c[0], -0.15, "ELBO"), ("LL", c[1], 0.15, "IW log-likelihood")):
        m = np.array([r[f"{key}_vs_vae"] for r in summary])
        sd = np.array([r[f"{key}_sd"] for r in summary])
        axes[0].errorbar(m, y + dy, xerr=np.nan_to_num(sd), fmt="o", color=colour, ms=5, capsize=2, label=lab)
        for i, name in enumerate(names):
            pts = [r[key] - vae[key] for r in rows if r["variant"] == name]
            axes[0].plot(pts, [i + dy] * len(pts), ".", color=colour, alpha=0.4, ms=4)
    axes[0].axvline(0, color="0.3", lw=0.8)
    axes[0].set(xlabel="minus the VAE's (nats; > 0: better fit)")
    legend_below(axes[0], ncols=2, frameon=False)  # below the panel: it covers no row
    au = np.array([r["AU"] for r in summary])
    axes[1].errorbar(au, y, xerr=np.nan_to_num([r["AU_sd"] for r in summary]), fmt="o", color=c[2], capsize=2)
    axes[1].axvline(0.95, color="0.3", ls="--", lw=0.8)
    axes[1].set(xlabel="active units (fraction)", xlim=(0.5, 1.03))
    for key, marker, lab in (("ratio_g1", "o", "g1"), ("ratio_g2", "s", "g2")):
        axes[2].plot([r[key] for r in summary], y, marker, ls="none", color="0.25", mfc="white" if lab == "g2"
                     else "0.25", ms=5, label=lab)
    axes[2].axvline(1.0, color="0.3", lw=0.8)
    axes[2].set(xscale="log", xlabel=r"$\|e^a\nabla\psi\| / \|\lambda u\|$ after training")
    legend_below(axes[2], ncols=2, frameon=False)
    axes[0].set_yticks(y, names)
    spec = ablation.VARIANTS
    for tick, name in zip(axes[0].get_yticklabels(), names):
        s = spec.get(name, {})
        if (s.get("model") == "lidvae" and s.get("lam") == chosen.lid_lam and s.get("activation") == chosen.lid_activation
                and s.get("init_ratio") == chosen.lid_init_ratio and s.get("icnn_hidden") is None
                and s.get("optimizer") == chosen.optimizer):
            tick.set_fontweight("bold")
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    sc = ablation.SCALE
    fig.suptitle(f"Injective-decoder ablation: {sc.n_train} images, latent {sc.latent_dim}, hidden {sc.hidden}, "
                 f"{sc.epochs} epochs, {len(ablation.SEEDS)} seeds each (bold: the table's setting)", fontsize=10)
    fig.tight_layout()
    return fig
