"""Figures of lesson 10: the LSTM-VAE vs the identifiable sequential VAE (IDSVAE) on text.

Two data sets: He et al.'s synthetic sentences, whose true 2-D latent is known (a mixture of four Gaussians at
(±2, ±2)), and Debian's fortunes (real English). On each, a :class:`~identkit.neural.sequence.LSTMVAE` and an
:class:`~identkit.neural.sequence.IDSVAE` are trained with identical encoders, decoder LSTMs, data, seed and
optimiser (the text table's networks, :mod:`identkit.table.text`, with a lesson-sized budget). Training is cached
per process (``functools.lru_cache``) and on disk (``checkpoints/cache/``), like lessons 07–08.
"""
from __future__ import annotations

import dataclasses
import functools

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import config, metrics
from ..plotting import palette
from . import figure
from .lidvae import kl_bars

NOTEBOOK = "10_text"
#: Lesson budgets on top of the text table's settings (``identkit.table.table_settings(quick, dataset=...)``).
QUICK_CONFIG = {"synthetic": dict(n_train=2000, n_eval=500, epochs=4, iw_samples=50),
                "fortunes": dict(n_train=1500, n_eval=300, epochs=4, iw_samples=20)}
FULL_CONFIG = {"synthetic": dict(n_train=None, n_eval=None, epochs=20, iw_samples=200),
               "fortunes": dict(n_train=None, n_eval=None, epochs=12, iw_samples=100)}
_NAMES = {"vae": "LSTM-VAE", "idsvae": "IDSVAE"}


def settings(dataset: str = "synthetic", quick: bool | None = None):
    """The lesson's settings for ``dataset`` ("synthetic" or "fortunes"): the text table's, with the lesson budget."""
    from ..table import table_settings

    quick = config.resolve_quick(quick)
    if dataset not in QUICK_CONFIG:
        raise ValueError(f"dataset must be one of {sorted(QUICK_CONFIG)}, got {dataset!r}")
    return dataclasses.replace(table_settings(quick, dataset=dataset),
                               **(QUICK_CONFIG if quick else FULL_CONFIG)[dataset])


@functools.lru_cache(maxsize=8)
def trained_text_models(dataset: str = "synthetic", quick: bool | None = None,
                        seed: int = config.DEFAULT_SEED) -> dict:
    """Train (or load) an LSTM-VAE and an IDSVAE on ``dataset`` with identical settings; cached per process.

    Returns ``models`` and ``history`` ({"vae", "idsvae"} → …), ``train`` and ``test`` (the
    :class:`~identkit.data.text.TextData` splits; ``test`` holds the evaluation documents) and ``settings``.
    """
    from ..data.text import load_text
    from ..neural.train import cached_fit
    from ..table import build_method

    s = settings(dataset, quick)
    kw = {"seed": s.data_seed} if dataset == "synthetic" else {"max_size": s.max_vocab}
    train = load_text(dataset, "train", n=s.n_train, **kw)
    full_vocab = load_text(dataset, "train", **kw).vocab
    test = load_text(dataset, "test", n=s.n_eval, vocab=full_vocab, **kw)
    out = {"models": {}, "history": {}, "train": train, "test": test, "settings": s}
    for kind in ("vae", "idsvae"):
        model, _ = build_method(kind, s, len(full_vocab), seed)
        out["models"][kind], out["history"][kind] = cached_fit(
            model, train.ids, tag=f"10-{dataset}-{kind}", epochs=s.epochs, batch_size=s.batch_size,
            optimizer=s.optimizer, lr=s.lr, clip_grad=s.clip_grad, seed=seed, progress=False)
    return out


@functools.lru_cache(maxsize=8)
def summary(dataset: str = "synthetic", quick: bool | None = None, seed: int = config.DEFAULT_SEED) -> dict:
    """Per model: the table's row on the test documents (:func:`identkit.table.evaluate_run`: AU, KL, MI,
    MI_batch, LL, PPL and, on the synthetic data, ``R2_z``, the recovery of the true z from E_q[z|x]), plus
    ``kl_per_dim``, ``active``, ``mu`` and the final training ELBO.

    On the synthetic data also ``R2_z_sampled`` (the same from one draw z ~ q(z|x) per sentence, what the
    decoder is fed: a collapsed encoder's means can still be correlated with the truth while its draws are prior
    noise) and
    ``component_accuracy`` (:func:`knn_accuracy` of the true mixture component).
    """
    from ..table import evaluate_run, evaluation_seed

    t = trained_text_models(dataset, quick, seed)
    s, x = t["settings"], t["test"].ids
    out = {}
    for kind, model in t["models"].items():
        res = evaluate_run(kind, s, model, None, x, seed)  # the table's row: AU, KL, MI, LL, PPL (and R2_z)
        mu, lv = metrics.encode_all(model, x)
        res.update(kl_per_dim=metrics.kl_per_dimension(mu, lv), active=metrics.active_mask(mu), mu=mu,
                   final_elbo=float(t["history"][kind]["elbo"][-1]))
        if t["test"].z is not None:
            z_true = t["test"].z.double().numpy()
            # what the decoder sees: one draw z ~ q(z|x) per sentence, not the mean
            eps = np.random.default_rng(evaluation_seed(s, seed)).standard_normal(mu.shape)
            res["R2_z_sampled"] = metrics.recovery_r2(mu + np.exp(0.5 * lv) * eps, z_true)
            res["component_accuracy"] = knn_accuracy(mu, t["test"].labels.numpy())
        out[kind] = res
    return out


def knn_accuracy(mu: np.ndarray, labels: np.ndarray, k: int = 15) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour vote predicting ``labels`` from the rows of ``mu``.

    Each coordinate of ``mu`` is first scaled to unit variance, so the score asks whether the posterior means
    *carry* the information, whatever their scale (a unit can be inactive by the AU criterion, Var < 0.01, and
    still order the documents). Chance is the largest class share (about 1/4 for the synthetic mixture).
    """
    z = (mu - mu.mean(0)) / np.maximum(mu.std(0), 1e-12)
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    votes = np.apply_along_axis(np.bincount, 1, labels[nearest], minlength=labels.max() + 1)
    return float((votes.argmax(1) == labels).mean())


@torch.no_grad()
def decoded_sentences(dataset: str = "fortunes", quick: bool | None = None, seed: int = config.DEFAULT_SEED,
                      steps: int = 5, n_prior: int = 4, max_length: int = 16) -> dict:
    """Sentences of each model decoded along a line in z space and from the prior, with common random numbers.

    The line runs from E_q[z|x_a] to E_q[z|x_b] for the first two test documents (``steps`` points); the prior
    draws are z ~ N(0, I) from a generator seeded with ``seed``. Each sentence is *sampled*,
    x_t ~ p(x_t | x_<t, z), with a generator re-seeded with ``seed + 1`` for every z, so all sentences of a model
    use the same random numbers and differ only through z: a decoder that ignores z writes the same sentence
    for every z. (Greedy decoding is uninformative on a 2 000-word vocabulary whose most frequent token is
    ``<unk>``.) Returns ``{"ends": (doc a, doc b), kind: {"line": [...], "prior": [...]}}`` with sentences as
    strings.
    """
    t = trained_text_models(dataset, quick, seed)
    vocab, test = t["train"].vocab, t["test"]
    out = {"ends": (" ".join(test.tokens(0)), " ".join(test.tokens(1)))}
    z_prior = torch.randn(n_prior, t["settings"].latent_dim, generator=torch.Generator().manual_seed(seed))
    for kind, model in t["models"].items():
        model.eval()
        mu, _ = model.encode(test.ids[:2])
        w = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
        line = (1 - w) * mu[0] + w * mu[1]
        out[kind] = {name: [" ".join(vocab.decode(model.generate(row[None], max_length=max_length, greedy=False,
                                                                 generator=seed + 1)[0], skip_specials=True))
                            for row in z]
                     for name, z in (("line", line), ("prior", z_prior))}
    return out


@figure("10_synthetic_latent", "He et al.'s synthetic text: the true 2-D latent vs the posterior means of the "
        "LSTM-VAE and the IDSVAE", notebook=NOTEBOOK, cost="training")
def synthetic_latent(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Three panels coloured by the true mixture component: the true z of the test sentences, then E_q[z|x] of
    the LSTM-VAE and of the IDSVAE (both latent 2), each titled with its AU, KL, R² of the true z and the k-NN
    accuracy of the true component from the (standardised) means (:func:`knn_accuracy`; chance ≈ 0.25)."""
    t = trained_text_models("synthetic", quick, seed)
    s = summary("synthetic", quick, seed)
    labels = t["test"].labels.numpy()
    c = palette(4)
    colours = [c[k] for k in labels]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9))
    panels = [("true latent z", t["test"].z.numpy(), "")]
    panels += [(_NAMES[k], s[k]["mu"], f"AU {s[k]['AU']:.1f}, KL {s[k]['KL']:.2f}, R² {s[k]['R2_z']:.2f}, "
                                       f"component acc. {s[k]['component_accuracy']:.2f}")
               for k in ("vae", "idsvae")]
    for ax, (name, pts, note) in zip(axes, panels):
        ax.scatter(pts[:, 0], pts[:, 1], s=5, c=colours, alpha=0.6, linewidths=0)
        ax.set_title(name + (f"\n{note}" if note else ""), fontsize=10)
        ax.set_xlabel(r"$z_1$" if name.startswith("true") else r"$\mathbb{E}_q[z_1|x]$")
        ax.set_ylabel(r"$z_2$" if name.startswith("true") else r"$\mathbb{E}_q[z_2|x]$")
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.05 * np.maximum(hi - lo, 1e-3)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    fig.tight_layout()
    return fig


@figure("10_text_kl_per_dim", "Fortunes: per-dimension KL of the LSTM-VAE vs the IDSVAE, inactive units grey",
        notebook=NOTEBOOK, cost="training")
def text_kl_per_dim(*, quick: bool = False, seed: int = config.DEFAULT_SEED):
    """Bars of each latent dimension's mean KL on the fortunes test documents (sorted, log axis), as in lesson 07."""
    s = summary("fortunes", quick, seed)
    return kl_bars([(_NAMES[k], s[k]["kl_per_dim"], s[k]["active"]) for k in ("vae", "idsvae")])
