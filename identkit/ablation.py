"""How the injective decoder's details change what a LIDVAE learns: a measured ablation at the quick scale.

``python -m identkit ablation [--quick] [--jobs N] [--out results/injective_ablation.csv]`` trains the VAE and
LIDVAE variants of :data:`VARIANTS` (one factor changed at a time from :data:`CENTER`) for :data:`SEEDS` seeds on
the same Fashion-MNIST subset and writes one CSV row per (variant, seed):

* fit: ``elbo`` (held-out ELBO, S = 10 draws per image) and ``LL`` (importance-weighted, S = ``iw_samples``);
* collapse: ``AU`` (fraction of active dimensions), ``KL``, ``MI`` and ``MI_batch``
  (:func:`identkit.metrics.collapse_metrics`);
* the decoder's nonlinearity, ``‖e^{a}∇ψ(u)‖ / ‖λu‖`` of g1 and g2, at initialisation and after training
  (medians over the evaluation images' posterior means), and ``clipped``, the fraction of training steps whose
  gradient norm exceeded the clip;
* ``train_s``, the settings and the torch version.

Factors (each against :data:`CENTER`): the initial scale of the potentials (``init_ratio``; None is the ICNNs'
own, almost linear initialisation), λ ∈ {0.3, 1, 3}, the activation of ICNN layers ≥ 2 (leaky ReLU, whose
gradient map is discontinuous, vs softplus/CELU, which give continuous Brenier maps), g2's width, and the
optimiser (Adam vs :class:`~identkit.neural.train.TFRMSprop`, the reference's TF1 RMSprop). Every variant
stays provably injective (strongly monotone g1, g2 with margin λ; β with singular values ≥ 0.1).

The scale is lesson 07's quick scale (:data:`SCALE`): 5 000 training images, 1 000 test images, latent 32,
hidden 256, 8 epochs, batch 100, lr 2e-3. ``--quick`` is a smoke test (tiny data, one seed) for CI.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import time
from pathlib import Path

from . import config
from ._checks import check_int

__all__ = ["SCALE", "CENTER", "VARIANTS", "SEEDS", "ABLATION_CSV", "run_variant", "run_ablation",
           "read_ablation", "summarise_ablation", "main"]

#: The committed ablation records.
ABLATION_CSV = config.REPO_ROOT / "results" / "injective_ablation.csv"
#: Training seeds (3 per variant).
SEEDS = (config.DEFAULT_SEED, config.DEFAULT_SEED + 1, config.DEFAULT_SEED + 2)
#: Evaluation seed of every Monte-Carlo draw at evaluation (independent of the training seeds).
EVAL_SEED = 7


@dataclasses.dataclass(frozen=True)
class Scale:
    """Data and training budget shared by every variant."""

    n_train: int = 5000
    n_eval: int = 1000
    latent_dim: int = 32
    hidden: int = 256
    epochs: int = 8
    batch_size: int = 100
    lr: float = 2e-3
    clip_grad: float = 5.0
    iw_samples: int = 100
    data_seed: int = config.DEFAULT_SEED


SCALE = Scale()
_QUICK_SCALE = Scale(n_train=300, n_eval=100, latent_dim=8, hidden=32, epochs=2, iw_samples=10)

#: The reference point the factors are varied around.
CENTER = {"model": "lidvae", "init_ratio": 1.0, "lam": 1.0, "activation": "leaky_relu", "icnn_hidden": None,
          "optimizer": "adam"}

#: Variant name → settings (each differs from CENTER in one factor; "vae" is the non-identifiable reference).
VARIANTS: dict[str, dict] = {
    "vae": {"model": "vae", "optimizer": "adam"},
    "center": dict(CENTER),
    "init_none": {**CENTER, "init_ratio": None},
    "init_0.1": {**CENTER, "init_ratio": 0.1},
    "init_0.3": {**CENTER, "init_ratio": 0.3},
    "init_3": {**CENTER, "init_ratio": 3.0},
    "lam_0.3": {**CENTER, "lam": 0.3},
    "lam_3": {**CENTER, "lam": 3.0},
    "lam_3_init_none": {**CENTER, "lam": 3.0, "init_ratio": None},  # the table's LIDVAE before this ablation
    "softplus": {**CENTER, "activation": "softplus"},
    "celu": {**CENTER, "activation": "celu"},
    "g2_wide": {**CENTER, "icnn_hidden": 256},
    "rmsprop_tf": {**CENTER, "optimizer": "rmsprop_tf"},
    # second round: the continuous (softplus) map, with the factors that moved AU and fit most
    "softplus_init_0.3": {**CENTER, "activation": "softplus", "init_ratio": 0.3},
    "softplus_lam_3": {**CENTER, "activation": "softplus", "lam": 3.0},
    "softplus_rmsprop_tf": {**CENTER, "activation": "softplus", "optimizer": "rmsprop_tf"},
}

COLUMNS = ["variant", "seed", "model", "init_ratio", "lam", "activation", "icnn_hidden", "optimizer", "elbo", "LL",
           "AU", "KL", "MI", "MI_batch", "ratio_g1_init", "ratio_g2_init", "ratio_g1", "ratio_g2", "clipped",
           "train_s", "n_train", "n_eval", "latent_dim", "hidden", "epochs", "lr", "torch"]


def _build(spec: dict, scale: Scale, seed: int):
    from .neural import models

    if spec["model"] == "vae":
        return models.VAE(784, scale.latent_dim, scale.hidden, seed=seed)
    return models.LIDVAE(784, scale.latent_dim, scale.hidden, lam=spec["lam"], activation=spec["activation"],
                         init_ratio=spec["init_ratio"], icnn_hidden=spec["icnn_hidden"], seed=seed)


def _ratios(model, mu) -> tuple[float, float]:
    import torch

    dec = getattr(model, "decoder", None)
    if not hasattr(dec, "nonlinearity_ratios"):
        return float("nan"), float("nan")
    return dec.nonlinearity_ratios(torch.as_tensor(mu, dtype=torch.float32))


def run_variant(name: str, seed: int, scale: Scale = SCALE, data=None) -> dict:
    """Train variant ``name`` with ``seed`` and return its CSV row (see the module docstring)."""
    import torch

    from . import metrics
    from .neural.train import evaluate_elbo, fit, reproducible
    from .table import load_table_data, table_settings

    if name not in VARIANTS:
        raise ValueError(f"name: unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    spec = VARIANTS[name]
    if data is None:
        data = load_table_data(table_settings(False, n_train=scale.n_train, n_eval=scale.n_eval,
                                              data_seed=scale.data_seed))
    train_x, eval_x = data
    with reproducible(1):
        model = _build(spec, scale, seed)
        mu0, _ = metrics.encode_all(model, eval_x)
        r1_init, r2_init = _ratios(model, mu0)
        t0 = time.perf_counter()
        hist = fit(model, train_x, epochs=scale.epochs, batch_size=scale.batch_size, lr=scale.lr,
                   optimizer=spec["optimizer"], seed=seed, clip_grad=scale.clip_grad, progress=False)
        train_s = time.perf_counter() - t0
        res = metrics.collapse_metrics(model, eval_x, seed=EVAL_SEED, samples=scale.iw_samples)
        elbo = evaluate_elbo(model, eval_x, seed=EVAL_SEED, samples=10)
        mu, _ = metrics.encode_all(model, eval_x)
        r1, r2 = _ratios(model, mu)
    clipped = hist.get("clipped", [float("nan")])
    steps = [math.ceil(len(train_x) / scale.batch_size)] * len(clipped)
    row = {"variant": name, "seed": seed, **{k: spec.get(k) for k in CENTER},
           "elbo": elbo, "LL": res["LL"], "AU": res["AU"], "KL": res["KL"], "MI": res["MI"],
           "MI_batch": res["MI_batch"], "ratio_g1_init": r1_init, "ratio_g2_init": r2_init, "ratio_g1": r1,
           "ratio_g2": r2, "clipped": sum(c * s for c, s in zip(clipped, steps)) / max(sum(steps), 1),
           "train_s": train_s, **{k: getattr(scale, k) for k in ("n_train", "n_eval", "latent_dim", "hidden",
                                                                  "epochs", "lr")},
           "torch": torch.__version__}
    return row


def _job(name, seed, scale):
    return run_variant(name, seed, scale)


def run_ablation(out: str | Path | None = ABLATION_CSV, quick: bool | None = None, variants=None, seeds=None,
                 jobs: int = 1, progress: bool = True) -> list[dict]:
    """Run (variant, seed) pairs, resuming from the rows already in ``out``; write ``out``; return every row.

    Rows are appended as runs finish, so a stopped ablation continues where it stopped. ``quick`` (default
    :data:`identkit.config.QUICK`) uses a tiny scale and one seed, for CI.
    """
    from tqdm.auto import tqdm

    quick = config.resolve_quick(quick)
    scale = _QUICK_SCALE if quick else SCALE
    variants = list(VARIANTS) if variants is None else list(variants)
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"variants: unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    seeds = list(SEEDS[:1] if quick else SEEDS) if seeds is None else [int(s) for s in seeds]
    jobs = check_int(jobs, "jobs")
    path = None if out is None else Path(out)
    rows = read_ablation(path) if path is not None and path.exists() else []
    done = {(r["variant"], int(r["seed"])) for r in rows}
    todo = [(v, s) for v in variants for s in seeds if (v, s) not in done]
    bar = tqdm(total=len(todo), desc="ablation", disable=not progress or not todo)
    if jobs == 1:
        for v, s in todo:
            rows.append(run_variant(v, s, scale))
            _write(path, rows)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for fut in as_completed([pool.submit(_job, v, s, scale) for v, s in todo]):
                rows.append(fut.result())
                _write(path, rows)
                bar.update()
    bar.close()
    return rows


def _write(path: Path | None, rows: list[dict]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    order = {name: i for i, name in enumerate(VARIANTS)}
    rows = sorted(rows, key=lambda r: (order.get(r["variant"], len(order)), int(r["seed"])))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else ("" if r[k] is None else r[k]))
                        for k in COLUMNS})
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"scale": dataclasses.asdict(SCALE), "variants": VARIANTS,
                                                      "seeds": list(SEEDS), "eval_seed": EVAL_SEED},
                                                     indent=1, sort_keys=True) + "\n")


_TEXT = {"variant", "model", "activation", "optimizer", "torch"}


def read_ablation(path: str | Path | None = None) -> list[dict]:
    """Rows of an ablation CSV (default :data:`ABLATION_CSV`), numbers as floats (blank → None)."""
    path = Path(ABLATION_CSV if path is None else path)
    if not path.exists():
        raise FileNotFoundError(f"no ablation at {path}; run `python -m identkit ablation`")
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append({k: (v if k in _TEXT else (None if v == "" else float(v))) for k, v in r.items()})
    return rows


def summarise_ablation(rows: list[dict]) -> list[dict]:
    """Mean and sd over seeds per variant, and the ELBO/LL difference to the VAE (positive: better than the VAE)."""
    import numpy as np

    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    vae_elbo = np.mean([r["elbo"] for r in by["vae"]]) if "vae" in by else float("nan")
    vae_ll = np.mean([r["LL"] for r in by["vae"]]) if "vae" in by else float("nan")
    out = []
    for name in [v for v in VARIANTS if v in by] + [v for v in by if v not in VARIANTS]:
        rs = by[name]
        row = {"variant": name, "n_seeds": len(rs)}
        for k in ("elbo", "LL", "AU", "KL", "MI", "MI_batch", "ratio_g1", "ratio_g2", "clipped", "train_s"):
            vals = np.array([np.nan if r[k] is None else r[k] for r in rs], dtype=float)
            row[k] = float(np.mean(vals))
            row[k + "_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
        row["elbo_vs_vae"] = row["elbo"] - vae_elbo
        row["LL_vs_vae"] = row["LL"] - vae_ll
        out.append(row)
    return out


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """CLI entry: run the ablation and print its summary."""
    if not isinstance(args, argparse.Namespace):
        args = add_arguments(argparse.ArgumentParser(prog="python -m identkit ablation")).parse_args(args)
    quick = True if args.quick else None
    out = None if args.out == "-" else (args.out or (None if config.resolve_quick(quick) else ABLATION_CSV))
    rows = run_ablation(out, quick=quick, variants=args.variants, jobs=args.jobs, progress=not args.no_progress)
    for r in summarise_ablation(rows):
        print(f"{r['variant']:16s} seeds {r['n_seeds']}  ELBO {r['elbo']:8.2f} ({r['elbo_vs_vae']:+.2f} vs VAE)  "
              f"LL {r['LL']:8.2f} ({r['LL_vs_vae']:+.2f})  AU {r['AU']:.2f}  KL {r['KL']:6.2f}  "
              f"ratio g1 {r['ratio_g1']:.3g} g2 {r['ratio_g2']:.3g}  clipped {r['clipped']:.2f}  {r['train_s']:.0f} s")
    if out is not None:
        print(f"wrote {out}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``ablation`` subcommand's options."""
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test scale, one seed (written nowhere "
                                                             "unless --out is given)")
    parser.add_argument("--variants", nargs="+", default=None, metavar="NAME", help=f"subset of {list(VARIANTS)}")
    parser.add_argument("--jobs", type=int, default=1, help="(variant, seed) runs at once, one process each")
    parser.add_argument("--out", default=None, help=f"CSV to write and resume from (default {ABLATION_CSV}; "
                                                    "'-' writes nothing)")
    parser.add_argument("--no-progress", action="store_true")
    return parser
