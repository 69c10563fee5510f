"""The paper's Table 1 on Fashion-MNIST, recomputed: every method trained with the same budget, then AU/KL/MI/LL.

``python -m identkit table [--quick] [--seeds N] [--jobs N] [--device D] [--outdir DIR]`` trains each method of :data:`METHODS` on
Fashion-MNIST with fixed seeds, evaluates on held-out test images

* AU — the fraction of latent dimensions that are active, Cov_x(E_q[z_k]) ≥ 0.01 (Burda et al. 2016);
* KL — the mean KL(q(z|x) ‖ p(z));
* MI — I_q(x; z) under the aggregate posterior of the evaluation set;
* LL — the importance-weighted log-likelihood log (1/S) Σ_s p(x, z_s) / q(z_s|x), S = ``iw_samples``

(:func:`identkit.metrics.collapse_metrics`), and writes ``table1_fashion_mnist.csv`` (mean and sd over seeds),
``table1_fashion_mnist.md`` and, through :mod:`identkit.figures.table`, the figure ``08_table1``.

Every method gets the same encoder (MLP, ``hidden`` units, two layers), the same decoder budget (the VAE's MLP;
LIDVAE/IDGMVAE's injective decoder has a comparable parameter count, see :mod:`identkit.neural.decoders`), the
same optimiser (Adam, lr 1e-3, batch 100, gradient-norm clip 5), the same epochs and the same dynamically
binarised data; the evaluation images are binarised once with a fixed seed. The paper used RMSprop; its first
steps (an effective learning rate ~10× the nominal one) make the injective decoders' gradients overflow, so the
table uses Adam for every method (``--set optimizer=rmsprop`` restores the paper's choice). The Brenier maps'
strong-monotonicity λ is 3, where lesson 06's λ sweep shows the LIDVAE reaching a VAE-like ELBO (λ = 0.1 keeps
fewer units active and fits far worse).

Modes
-----
* quick (CI): 2 000 training and 500 evaluation images, latent 32, hidden 256 (lesson 06's quick networks), 20
  epochs (lesson 06's quick run has 30), Adam lr 2e-3, S = 100 importance samples (a smoke test of the
  code path: the LL bound is looser than at S = 500, the cost of its evaluation a fifth); one seed by default (the
  ``mode`` column says so). Two to three minutes on 2 CPU cores.
* full: all 60 000 training images, 2 000 test images for evaluation, the paper's networks (latent 64, hidden
  512, batch 100), :data:`FULL_EPOCHS` epochs, S = 500, 3 seeds. Its cost, per training step
  (``benchmarks/table_cost.py``, 2 CPU cores): VAE 10–22 ms, LIDVAE 12–35 ms (two machines of the same kind),
  IDGMVAE 13 ms, SA-VAE 35 ms, VampPrior 44 ms and the lagging encoder's aggressive step 0.3–1 s (up to
  ``lagging_max_inner`` encoder steps each, for as many epochs as the held-out MI keeps rising), so one seed of
  every method takes several hours of a 2-core machine; on one H100 (one process) VAE 3.1 ms, LIDVAE 9.4 ms,
  SA-VAE 21 ms, lagging 129 ms: batch-100 steps are bound by kernel launches, so a GPU speeds one run up only
  1.3–3×. ``--jobs N`` trains N (method, seed) runs at once in separate processes (on 2 cores, two one-thread
  runs give 1.4–1.8× the throughput of one two-thread run); ``--epochs`` and ``--methods`` trim the run.
  Training uses ``device`` (default: CUDA when present). Each finished (method, seed) is written as a JSON
  record under ``--cache-dir`` (default ``runs/table_cache/``, git-ignored), keyed by the settings and the data,
  so a table run that was stopped skips the finished runs when started again and ``--from-cache`` assembles the
  table from them. A (method, seed) run stopped mid-way resumes from its last finished epoch: it keeps its
  training state in ``<method>_seed<seed>.state.pt`` beside the records (git-ignored, deleted when the record is
  written), so the lagging encoder's hours-long run can span several sessions. The paper-scale records are
  committed in :data:`RESULTS_DIR` (``results/table1_runs/``).

The paper's reported Fashion-MNIST row is :data:`PAPER_FASHION_MNIST` (quoted, not recomputed).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

from . import config
from ._checks import check_int, check_seed

__all__ = [
    "evaluation_seed",
    "evaluate_run",
    "reevaluate",
    "load_validation_data",
    "PAPER_FASHION_MNIST",
    "PAPER_LABELS",
    "METHODS",
    "CSV_COLUMNS",
    "FULL_EPOCHS",
    "TableSettings",
    "table_settings",
    "build_method",
    "train_and_evaluate",
    "run_table",
    "read_table",
    "render_markdown",
    "commentary",
    "load_table_data",
    "parse_overrides",
    "main",
]

#: The paper's Table 1, Fashion-MNIST (Wang, Blei & Cunningham 2021), as reported: AU, KL, MI, LL.
PAPER_FASHION_MNIST: dict[str, dict[str, float]] = {
    "VAE": {"AU": 0.1, "KL": 0.2, "MI": 0.9, "LL": -258.8},
    "SA-VAE": {"AU": 0.2, "KL": 0.3, "MI": 1.3, "LL": -252.2},
    "Lagging VAE": {"AU": 0.4, "KL": 0.6, "MI": 1.6, "LL": -248.5},
    "β-VAE (0.2)": {"AU": 0.6, "KL": 1.2, "MI": 2.4, "LL": -245.3},
    "LIDGMVAE": {"AU": 1.0, "KL": 1.6, "MI": 2.6, "LL": -242.3},
}

#: Method key → label used in tables and figures.
METHODS: dict[str, str] = {
    "vae": "VAE",
    "beta_vae": "β-VAE (0.2)",
    "free_bits": "free bits",
    "kl_threshold": "KL threshold (Li et al.)",
    "lagging": "Lagging VAE",
    "sa_vae": "SA-VAE",
    "vampprior": "VampPrior",
    "lidvae": "LIDVAE",
    "gmvae": "GMVAE",
    "idgmvae": "IDGMVAE",
    "lidvae_lam3": "LIDVAE (λ = 3)",
    "idgmvae_lam3": "IDGMVAE (λ = 3)",
}

#: Second-λ rows of the identifiable models: key → (model key, λ). Everything else as the row of the model key
#: (``lid_activation``, ``lid_init_ratio``); λ = 3 is where lesson 06's sweep (10 000 images, latent 32) found
#: every unit active at an ELBO above the VAE's, while the ablation (5 000 images, 8 epochs) chose λ = 1.
INJECTIVE_LAMBDA_ROWS: dict[str, tuple[str, float]] = {"lidvae_lam3": ("lidvae", 3.0),
                                                        "idgmvae_lam3": ("idgmvae", 3.0)}
#: Identifiable rows and the non-identifiable twin each is compared with (a second-λ row: its model's twin).
IDENTIFIABLE_TWINS: dict[str, str] = {"lidvae": "vae", "idgmvae": "gmvae"}
IDENTIFIABLE_TWINS.update({k: IDENTIFIABLE_TWINS[base] for k, (base, _) in INJECTIVE_LAMBDA_ROWS.items()})

#: Our method key → the paper's row it corresponds to (the paper's identifiable GMVAE is "LIDGMVAE").
PAPER_LABELS: dict[str, str] = {"vae": "VAE", "sa_vae": "SA-VAE", "lagging": "Lagging VAE",
                                "beta_vae": "β-VAE (0.2)", "idgmvae": "LIDGMVAE"}

METRICS = ("AU", "KL", "MI", "MI_batch", "LL")
#: The paper's four columns (MI_batch has no counterpart there).
PAPER_METRICS = ("AU", "KL", "MI", "LL")
#: Rows derived from a method's records rather than trained on their own: SA-VAE evaluated at its refined
#: variational parameters (Kim et al.'s evaluation), beside the row at the encoder's output.
DERIVED_ROWS: dict[str, tuple[str, str, str]] = {"sa_vae_refined": ("sa_vae", "refined", "SA-VAE (refined q)")}
CSV_COLUMNS = ["method", "label", *METRICS, *(f"{m}_sd" for m in METRICS), "AU_count", "n_seeds", "mode",
               "train_time_s", "eval_time_s", "MI_ceiling", "MI_batch_ceiling",
               "paper_AU", "paper_KL", "paper_MI", "paper_LL"]
CSV_NAME = "table1_fashion_mnist.csv"
MD_NAME = "table1_fashion_mnist.md"
#: Epochs of the full-mode table.
FULL_EPOCHS = 50
CACHE_DIR = config.REPO_ROOT / "runs" / "table_cache"
#: The committed per-run records of the paper-scale (full-mode) table, one JSON per (method, seed).
RESULTS_DIR = config.REPO_ROOT / "results" / "table1_runs"


@dataclasses.dataclass(frozen=True)
class TableSettings:
    """Everything that determines one table run (hashed into the cache key).

    Attributes
    ----------
    latent_dim, hidden : int
        Latent dimension K and hidden width of encoder and decoder MLPs (2 hidden layers each).
    n_clusters : int
        Mixture components of GMVAE / IDGMVAE (≤ latent_dim).
    epochs, batch_size : int
    optimizer : {"adam", "rmsprop"}
    lr : float
        Learning rate.
    clip_grad : float
        Gradient-norm clip.
    n_train, n_eval : int or None
        Training / evaluation image counts (None: the whole split).
    iw_samples : int
        Importance samples S of the LL estimate.
    beta : float
        β of the β-VAE.
    free_bits : float
        Free-bits threshold λ (nats per dimension, of the batch mean; Kingma et al.).
    kl_threshold, kl_threshold_pretrain : float, int
        Li et al.'s per-example, per-dimension threshold λ (nats) and their autoencoder pretraining epochs
        (added to ``epochs`` for that method).
    warmup_epochs : float
        KL warm-up of the methods whose authors use one (lagging, SA-VAE, KL thresholding), in epochs.
    lagging_max_inner, lagging_check_every, lagging_patience : int
        He et al.'s inner-loop cap, improvement window and stopping patience (image script: 99, 10, 5).
    svi_steps : int
    svi_lr : float
        SA-VAE refinement steps and step size (Kim et al.: 20 and 1).
    n_pseudo : int
        VampPrior pseudo-inputs.
    lid_lam : float
        Strong-monotonicity λ of the injective decoders' Brenier maps.
    lid_activation : str
        Activation of their ICNN layers ≥ 2.
    lid_init_ratio : float or None
        Initial size of their nonlinear parts relative to λu (None: the ICNNs' own, almost linear start).
    n_val : int
        Validation images (test images outside the evaluation subset) for the lagging encoder's MI check.
    mi_batch_size : int
        B of He et al.'s per-minibatch MI (``MI_batch``).
    data_seed : int
        Seed of the training/evaluation subsets and of the evaluation binarisation (the same for all methods).
    eval_seed : int
        Base of the evaluation's Monte-Carlo seeds (:func:`evaluation_seed`), independent of the training seeds.
    """

    latent_dim: int = 64
    hidden: int = 512
    n_clusters: int = 10
    epochs: int = FULL_EPOCHS
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 1e-3
    clip_grad: float = 5.0
    n_train: int | None = None
    n_eval: int | None = 2000
    iw_samples: int = 500
    beta: float = 0.2
    free_bits: float = 0.1
    kl_threshold: float = 0.25
    kl_threshold_pretrain: int = 10
    warmup_epochs: float = 10.0
    lagging_max_inner: int = 99
    lagging_check_every: int = 10
    lagging_patience: int = 5
    svi_steps: int = 20
    svi_lr: float = 1.0
    n_pseudo: int = 500
    lid_lam: float = 1.0
    lid_activation: str = "softplus"
    lid_init_ratio: float | None = 0.3
    n_val: int = 2000
    mi_batch_size: int = 100
    data_seed: int = config.DEFAULT_SEED
    eval_seed: int = 7

    def key(self) -> str:
        """A short hash of the settings (the cache folder name)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def table_settings(quick: bool | None = None, **overrides) -> TableSettings:
    """The settings of quick (CI) or full mode, with ``overrides`` (field=value) applied."""
    if config.resolve_quick(quick):
        base = TableSettings(latent_dim=32, hidden=256, n_clusters=10, epochs=20, lr=2e-3, n_train=2000, n_eval=500,
                             iw_samples=100, lagging_max_inner=20, lagging_check_every=5, lagging_patience=2,
                             svi_steps=5, n_pseudo=50, kl_threshold_pretrain=5, warmup_epochs=4, n_val=500)
    else:
        base = TableSettings()
    fields = {f.name for f in dataclasses.fields(TableSettings)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"overrides: unknown setting(s) {sorted(unknown)}; known: {sorted(fields)}")
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


# ------------------------------------------------------------------------------------------------ building
def _check_method(key: str) -> str:
    if key not in METHODS:
        raise ValueError(f"method: unknown method {key!r}; known methods: {', '.join(METHODS)}")
    return key


def build_method(key: str, settings: TableSettings, data_dim: int, seed: int, train_x=None, val_x=None):
    """Build ``(model, method)`` for method ``key`` with the shared budget of ``settings``.

    The model's weights are initialised from ``seed`` (the models leave torch's global RNG untouched);
    ``method`` is the :class:`identkit.neural.train.Method` that ``fit`` uses. ``val_x`` (binary validation
    images, not the evaluation set) is the lagging encoder's MI check set.
    """
    import torch

    from .neural import baselines, models
    from .neural.train import Method

    _check_method(key)
    s = settings
    common = dict(hidden=s.hidden, likelihood="bernoulli", seed=seed)  # the models seed their own init
    injective = dict(lam=s.lid_lam, activation=s.lid_activation, init_ratio=s.lid_init_ratio)
    if key in INJECTIVE_LAMBDA_ROWS:
        key, injective["lam"] = INJECTIVE_LAMBDA_ROWS[key]
    if key == "vampprior":
        init = None
        if train_x is not None and len(train_x) >= s.n_pseudo:
            # pseudo-inputs start at random training images (Tomczak & Welling)
            idx = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))[: s.n_pseudo]
            init = train_x[idx]
        model = baselines.VampPrior(data_dim, s.latent_dim, n_pseudo=s.n_pseudo, pseudo_init=init, **common)
    elif key == "lidvae":
        model = models.LIDVAE(data_dim, s.latent_dim, **injective, **common)
    elif key == "gmvae":
        model = models.GMVAE(data_dim, s.latent_dim, n_clusters=s.n_clusters, **common)
    elif key == "idgmvae":
        model = models.IDGMVAE(data_dim, s.latent_dim, n_clusters=s.n_clusters, **injective, **common)
    else:
        model = models.VAE(data_dim, s.latent_dim, **common)
    if key == "beta_vae":
        method = baselines.BetaVAE(s.beta)
    elif key == "free_bits":
        method = baselines.FreeBits(s.free_bits)
    elif key == "kl_threshold":
        method = baselines.KLThreshold(s.kl_threshold, s.kl_threshold_pretrain, warmup_epochs=s.warmup_epochs,
                                       reset_seed=seed)
    elif key == "lagging":
        method = baselines.LaggingEncoder(val_x, max_inner=s.lagging_max_inner, check_every=s.lagging_check_every,
                                          patience=s.lagging_patience, warmup_epochs=s.warmup_epochs,
                                          mi_seed=seed)
    elif key == "sa_vae":
        method = baselines.SemiAmortized(s.svi_steps, s.svi_lr, warmup_epochs=s.warmup_epochs)
    else:
        method = Method()
    return model, method


def evaluation_seed(settings: TableSettings, seed: int) -> int:
    """Seed of every Monte-Carlo draw of the evaluation of training seed ``seed``.

    Derived from ``settings.eval_seed`` and ``seed`` through ``numpy.random.SeedSequence`` (an independent
    stream, not the training seed itself): runs of different seeds do not share their evaluation noise, and the
    evaluation's draws never repeat the training's.
    """
    return int(np.random.SeedSequence([check_seed(settings.eval_seed), check_seed(seed), 0x4556414C]).generate_state(1)[0])


def evaluate_run(key: str, settings: TableSettings, model, method, eval_x, seed: int) -> dict:
    """The table's metrics of a trained (method, seed): AU, AU_count, KL, MI, MI_batch, LL, their ceilings.

    For SA-VAE also ``refined``: the same metrics at the refined variational parameters (T SVI steps from the
    encoder's output, as Kim et al. evaluate), from :meth:`~identkit.neural.baselines.SemiAmortized.refined_posterior`.
    """
    from . import metrics

    eseed = evaluation_seed(settings, seed)
    kw = dict(seed=eseed, samples=settings.iw_samples, mi_batch_size=settings.mi_batch_size)
    res = metrics.collapse_metrics(model, eval_x, **kw)
    row = {m: float(res[m]) for m in METRICS}
    row.update(AU_count=int(res["AU_count"]), MI_ceiling=float(res["MI_ceiling"]),
               MI_batch_ceiling=float(res["MI_batch_ceiling"]), eval_seed=eseed)
    if key == "sa_vae":
        refined = method.refined_posterior(model, seed=eseed, batch_size=settings.batch_size).prepare(eval_x)
        ref = metrics.collapse_metrics(refined, eval_x, **kw)
        row["refined"] = {m: float(ref[m]) for m in METRICS} | {"AU_count": int(ref["AU_count"])}
    return row


def train_and_evaluate(key: str, settings: TableSettings, train_x, eval_x, seed: int,
                       progress: bool = False, device=None, state_path=None, val_x=None, model_path=None) -> dict:
    """Train method ``key`` with ``seed`` on ``train_x`` and evaluate it on the (binary) rows of ``eval_x``.

    The model is initialised on the CPU from ``seed`` and then moved to ``device`` (default
    :func:`identkit.neural.train.default_device`: CUDA when present); every random draw of training and
    evaluation comes from CPU generators, so a GPU run sees the same minibatches, binarisations and noise as a
    CPU run and differs from it only by floating-point rounding. Evaluation draws come from
    :func:`evaluation_seed`, not from the training seed.

    ``state_path`` (optional) is a training-state file (``resume`` of :func:`identkit.neural.train.fit`): the
    run writes its state there after every epoch and, when the file exists, continues from it, so a long run
    can be stopped and resumed (bit-identical to an uninterrupted run on the same device and thread count).
    ``model_path`` (optional): where the trained model is saved (:func:`~identkit.neural.train.save_checkpoint`),
    so that :func:`reevaluate` can recompute the metrics without retraining. ``val_x``: the lagging encoder's
    validation images.

    Returns a dict with the metrics of :func:`evaluate_run`, train_time_s (summed over resumed pieces),
    eval_time_s, the epochs trained, the last epoch's training ELBO, the device, the method and seed, the torch
    version and thread count, ``resumed_at`` (the epochs it was resumed at) when it was resumed, the fraction of
    clipped steps and, for the lagging encoder, the number of aggressive epochs.
    """
    import torch

    from .neural.train import default_device, fit, save_checkpoint

    seed = check_seed(seed)
    device = default_device() if device is None else _check_device(device)
    model, method = build_method(key, settings, train_x.shape[1], seed, train_x, val_x)
    model.to(device)
    epochs = settings.epochs + int(getattr(method, "extra_epochs", 0))
    t0 = time.perf_counter()
    hist = fit(model, train_x, method=method, epochs=epochs, batch_size=settings.batch_size,
               lr=settings.lr, optimizer=settings.optimizer, seed=seed, clip_grad=settings.clip_grad, progress=progress,
               device=device, resume=state_path)
    t1 = time.perf_counter()
    if model_path is not None:
        save_checkpoint(model, model_path, method=key, seed=seed, settings=dataclasses.asdict(settings),
                        method_state=method.state_dict())
    row = evaluate_run(key, settings, model, method, eval_x, seed)
    t2 = time.perf_counter()
    resumed = hist.get("resumed_at", [])
    row.update(train_time_s=hist["wall_seconds"][-1] if resumed else t1 - t0, eval_time_s=t2 - t1, epochs=epochs,
               train_elbo=float(hist["elbo"][-1]) if hist.get("elbo") else float("nan"), device=str(device),
               method=key, seed=seed, torch=torch.__version__, threads=torch.get_num_threads())
    if hist.get("clipped"):
        row["clipped_fraction"] = float(np.mean(hist["clipped"]))
    if resumed:
        row["resumed_at"] = [int(e) for e in resumed]
    if key == "lagging":
        row["aggressive_epochs"] = int(method.aggressive_epochs)
    return row


def reevaluate(cache_dir: str | Path, settings: TableSettings | None = None, methods=None, progress: bool = True,
               device=None) -> list[Path]:
    """Recompute the metrics of every record in ``cache_dir`` that has its saved model; rewrite the records.

    Training fields (times, ELBO, device, …) are kept; the metrics of :func:`evaluate_run` are replaced and
    ``reevaluated`` (the torch version and date) is added. Records without a ``.model.pt`` beside them are left
    as they are (and named in a warning). Returns the rewritten records.
    """
    from tqdm.auto import tqdm

    from .neural.train import load_checkpoint

    folder = Path(cache_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"cache_dir: no folder {folder}")
    settings_path = folder / "settings.json"
    if settings is None:
        if not settings_path.exists():
            raise FileNotFoundError(f"cache_dir: {settings_path} is missing; pass settings=")
        settings = TableSettings(**json.loads(settings_path.read_text()))
    _, eval_x = load_table_data(settings)
    done, missing = [], []
    records = sorted(folder.glob("*_seed*.json"))
    for path in tqdm(records, desc="reevaluate", disable=not progress):
        rec = json.loads(path.read_text())
        if methods is not None and rec["method"] not in methods:
            continue
        model_file = _model_path(path)
        if not model_file.exists():
            missing.append(path.name)
            continue
        model = load_checkpoint(model_file, map_location=device or "cpu")
        _, method = build_method(rec["method"], settings, eval_x.shape[1], int(rec["seed"]))
        method.batch_size = settings.batch_size
        t0 = time.perf_counter()
        rec.update(evaluate_run(rec["method"], settings, model, method, eval_x.to(next(model.parameters()).device),
                                int(rec["seed"])))
        import torch

        rec["eval_time_s"] = time.perf_counter() - t0
        rec["reevaluated"] = {"torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
        _write_json_atomic(path, rec)
        done.append(path)
    if missing:
        warnings.warn(f"no saved model for {', '.join(missing)}: their metrics were not recomputed", RuntimeWarning,
                      stacklevel=2)
    return done


def _check_device(device):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device: {device!r} (use 'cpu', 'cuda' or 'cuda:N')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no GPU; use device='cpu'")
    return dev


#: Training time of one paper-scale (method, seed) run relative to a VAE's, from ``benchmarks/table_cost.py``
#: (one thread, 2-core CPU: a VAE step 29 ms, ≈ 14 min for 50 epochs; SA-VAE's 20 SVI steps through double
#: backward 386 ms, ≈ 3.2 h; the lagging encoder's aggressive step 0.5 s at 30 inner steps, for as many epochs as
#: its validation MI keeps reaching new bests); only orders the parallel jobs.
_RELATIVE_COST = {"sa_vae": 13.5, "vampprior": 4.5, "lagging": 4.0, "idgmvae": 1.5, "lidvae": 1.45,
                  "idgmvae_lam3": 1.5, "lidvae_lam3": 1.45,
                  "kl_threshold": 1.2, "vae": 1.0, "beta_vae": 1.0, "free_bits": 1.0, "gmvae": 0.8}


def _job(key: str, settings: TableSettings, seed: int, device, threads: int, path, data=None) -> tuple[str, int, dict]:
    """One (method, seed) run in a worker process: train, evaluate, write the cache entry; return the row."""
    import torch

    torch.set_num_threads(max(1, threads))
    if data is None:
        train_x, eval_x = load_table_data(settings)
        val_x = load_validation_data(settings) if key == "lagging" else None
    else:
        train_x, eval_x, val_x = data
    return key, seed, _run_one(key, settings, train_x, eval_x, seed, device, None if path is None else Path(path),
                               val_x=val_x)


def _state_path(record: Path) -> Path:
    """The training-state file of the run whose finished record will be ``record`` (git-ignored)."""
    return record.with_name(record.stem + ".state.pt")


def _model_path(record: Path) -> Path:
    """The trained model kept beside ``record`` (git-ignored), for :func:`reevaluate`."""
    return record.with_name(record.stem + ".model.pt")


def _run_one(key, settings, train_x, eval_x, seed, device, path: Path | None, progress: bool = False,
             val_x=None) -> dict:
    """Train and evaluate one (method, seed), resuming from its state file; write its record, drop the state."""
    state = None if path is None else _state_path(path)
    row = train_and_evaluate(key, settings, train_x, eval_x, seed, progress=progress, device=device, state_path=state,
                             val_x=val_x, model_path=None if path is None else _model_path(path))
    if path is not None:
        _write_json_atomic(path, row)
        state.unlink(missing_ok=True)
    return row


def _write_json_atomic(path: Path, row: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1, sort_keys=True))
    tmp.replace(path)


# ------------------------------------------------------------------------------------------------ data
def load_table_data(settings: TableSettings):
    """Fashion-MNIST subsets of ``settings``: (train_x grey levels (N, 784), eval_x binarised once (M, 784))."""
    from .data import fashion_mnist_subsets

    train_x, _, eval_x, _ = fashion_mnist_subsets(settings.n_train, settings.n_eval, settings.data_seed,
                                                   eval_seed=settings.data_seed)
    return train_x, eval_x


def load_validation_data(settings: TableSettings):
    """``settings.n_val`` binary test images outside the evaluation subset (the lagging encoder's MI check set).

    The evaluation subset is ``subsample(10 000, n_eval, data_seed)`` of the test split; the validation rows are
    a seeded draw (``data_seed + 1``) from the other test rows, binarised once with ``data_seed + 1``. Training
    data are untouched, so every method still trains on the same images.
    """
    from .data import binarize, load_fashion_mnist
    from .data.loaders import subsample

    xt, _ = load_fashion_mnist("test")
    taken = set(subsample(len(xt), settings.n_eval, settings.data_seed).tolist())
    rest = np.array([i for i in range(len(xt)) if i not in taken])
    if len(rest) < settings.n_val:
        raise ValueError(f"n_val: only {len(rest)} test images lie outside the evaluation subset "
                         f"(n_eval={settings.n_eval}); lower n_val or n_eval")
    pick = np.sort(np.random.default_rng(settings.data_seed + 1).choice(rest, size=settings.n_val, replace=False))
    return binarize(xt[pick], settings.data_seed + 1)


def _fingerprint(x) -> str:
    """Short fingerprint of a data tensor's float32 values (part of the cache folder name)."""
    from .neural.train import tensor_sha256

    return tensor_sha256(x.float())[:12]


# ------------------------------------------------------------------------------------------------ the table
def _mode_string(quick: bool, n_seeds: int, custom: bool = False, partial: bool = False) -> str:
    base = ("quick" if quick else "full") + ("-custom" if custom else "")
    if partial:  # assembled from the cache: methods may have fewer seeds (the n_seeds column)
        return f"{base} (finished runs so far; up to {n_seeds} seed{'s' if n_seeds != 1 else ''} per method)"
    return f"{base} ({n_seeds} seed{'s' if n_seeds != 1 else ''}{'; no sd' if n_seeds < 2 else ''})"


def _summarise(key: str, runs: list[dict], mode: str, label: str | None = None) -> dict:
    row: dict = {"method": key, "label": label or METHODS[key]}
    for m in METRICS:
        vals = np.array([r.get(m, float("nan")) for r in runs], dtype=float)
        row[m] = float(vals.mean())
        row[f"{m}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
    row["AU_count"] = float(np.mean([r["AU_count"] for r in runs]))
    row["n_seeds"] = len(runs)
    row["mode"] = mode
    row["train_time_s"] = float(np.mean([r["train_time_s"] for r in runs]))
    row["eval_time_s"] = float(np.mean([r["eval_time_s"] for r in runs]))
    for c in ("MI_ceiling", "MI_batch_ceiling"):
        row[c] = float(np.mean([r.get(c, float("nan")) for r in runs]))
    paper = PAPER_FASHION_MNIST.get(PAPER_LABELS.get(key, ""), {})
    for m in PAPER_METRICS:
        row[f"paper_{m}"] = paper.get(m, float("nan"))
    return row


def _derived_runs(runs: list[dict], field: str) -> list[dict]:
    """Per-seed records of a derived row: ``run[field]``'s metrics with the run's times and ceilings."""
    out = []
    for r in runs:
        if field in r:
            out.append({**{k: r[k] for k in ("train_time_s", "eval_time_s", "MI_ceiling", "MI_batch_ceiling")
                           if k in r}, **r[field]})
    return out


def run_table(quick: bool | None = None, seeds: int | None = None, outdir: str | Path | None = None,
              progress: bool = True, *, methods: list[str] | None = None, train_x=None, eval_x=None,
              settings: TableSettings | None = None, cache_dir: str | Path | None = CACHE_DIR,
              write: bool = True, jobs: int = 1, device=None, train: bool = True, shortest_first: bool = False,
              **overrides) -> list[dict]:
    """Train and evaluate every method in ``methods`` for ``seeds`` seeds; write and return the summary rows.

    Parameters
    ----------
    quick : bool, optional
        Quick (CI) or full settings (:func:`table_settings`); default :data:`identkit.config.QUICK`.
    seeds : int, optional
        Number of seeds, ``DEFAULT_SEED + i`` for i < seeds (default 1 in quick mode, 3 in full mode).
    outdir : path, optional
        Folder of the CSV and markdown table (default :data:`identkit.config.FIGURE_DIR`).
    progress : bool
        tqdm bars over runs and epochs.
    methods : list of str, optional
        Keys of :data:`METHODS` (default: all).
    train_x, eval_x : tensor, optional
        Data to use instead of Fashion-MNIST (grey levels in [0, 1]; ``eval_x`` is binarised here with
        ``settings.data_seed``). Give both or neither.
    settings : TableSettings, optional
        Overrides the mode's settings entirely; ``**overrides`` (field=value) change single fields.
    cache_dir : path or None
        Per-(method, seed) JSON cache (None: no cache). Entries are keyed by the settings and the data.
    write : bool
        Write ``table1_fashion_mnist.{csv,md}`` to ``outdir``.
    jobs : int
        Number of (method, seed) runs trained at once, each in its own process (spawned; longest first) with
        (usable CPUs) // ``jobs`` torch threads; more jobs than usable CPUs only time-share them. Useful on a GPU, where one small-batch run leaves the device mostly
        idle, and on many-core CPUs. Results do not depend on ``jobs`` beyond floating-point rounding.
    device : str or torch.device, optional
        Where to train (default: CUDA when present, else CPU).
    shortest_first : bool
        Order parallel jobs cheapest first (records accumulate early, for runs spread over sessions) instead of
        longest first (the shortest total time).
    train : bool
        False: train nothing, write the table from the runs already in the cache (each row's ``n_seeds`` says
        how many; methods without a finished run are left out with a warning). For a long full run done in
        pieces.

    Returns
    -------
    list of dict
        One row per method with the :data:`CSV_COLUMNS`.

    Notes
    -----
    A quick-mode run never overwrites a full-mode CSV: when ``outdir`` already holds one, the quick table is
    written as ``table1_fashion_mnist_quick.{csv,md}`` instead.
    """
    import torch
    from tqdm.auto import tqdm

    quick = config.resolve_quick(quick)
    settings = settings if settings is not None else table_settings(quick)
    if overrides:
        fields = {f.name for f in dataclasses.fields(TableSettings)}
        unknown = set(overrides) - fields
        if unknown:
            raise ValueError(f"overrides: unknown setting(s) {sorted(unknown)}; known: {sorted(fields)}")
        settings = dataclasses.replace(settings, **overrides)
    seeds = (1 if quick else 3) if seeds is None else check_int(seeds, "seeds")
    methods = list(METHODS) if methods is None else [_check_method(m) for m in methods]
    if (train_x is None) != (eval_x is None):
        raise ValueError("train_x and eval_x: give both or neither")
    from_disk = train_x is None
    val_x = None  # given tensors: the lagging encoder checks MI on the last training rows (its default)
    if from_disk:
        train_x, eval_x = load_table_data(settings)
        if "lagging" in methods and train:
            val_x = load_validation_data(settings)
    else:
        for name, x in (("train_x", train_x), ("eval_x", eval_x)):
            if not torch.is_tensor(x) or x.ndim != 2 or len(x) < 2:
                raise ValueError(f"{name} must be a (N, D) tensor with N >= 2")
            if not torch.isfinite(x).all() or (x < 0).any() or (x > 1).any():
                raise ValueError(f"{name} must be finite with values in [0, 1]")
        if train_x.shape[1] != eval_x.shape[1]:
            raise ValueError(f"eval_x has {eval_x.shape[1]} columns, train_x {train_x.shape[1]}")
        eval_x = torch.bernoulli(eval_x.float(), generator=torch.Generator().manual_seed(settings.data_seed))
        train_x = train_x.float()
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{settings.key()}-{_fingerprint(train_x)}-{_fingerprint(eval_x)}"
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "settings.json").write_text(json.dumps(dataclasses.asdict(settings), indent=1, sort_keys=True))

    jobs = check_int(jobs, "jobs")
    if device is not None:
        device = _check_device(device)
    seed_values = [config.DEFAULT_SEED + i for i in range(seeds)]
    done: dict[tuple[str, int], dict] = {}
    todo: list[tuple[str, int, Path | None]] = []
    for key in methods:
        for seed in seed_values:
            path = None if cache is None else cache / f"{key}_seed{seed}.json"
            if path is not None and path.exists():
                done[key, seed] = json.loads(path.read_text())
            else:
                todo.append((key, seed, path))
    if not train:
        if cache is None:
            raise ValueError("train=False assembles the table from the cache: give a cache_dir")
        todo = []
    bar = tqdm(total=len(todo), desc="table", disable=not progress or not todo)
    if jobs == 1 or len(todo) <= 1:
        for key, seed, path in todo:
            bar.set_postfix(method=key, seed=seed)
            done[key, seed] = _run_one(key, settings, train_x, eval_x, seed, device, path, progress, val_x=val_x)
            bar.update()
    else:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor, as_completed

        sign = 1.0 if shortest_first else -1.0
        todo.sort(key=lambda job: sign * _RELATIVE_COST.get(job[0], 1.0))
        workers = min(jobs, len(todo))
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cpus // workers)  # CPUs this process may use, not the machine's count
        if workers > cpus:
            warnings.warn(f"jobs={workers} but only {cpus} CPU(s) are usable here: the runs will time-share them "
                          "(each run is driven by one CPU even on a GPU)", RuntimeWarning, stacklevel=2)
        data = None if from_disk else (train_x, eval_x, val_x)  # workers reload Fashion-MNIST themselves
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_job, key, settings, seed, device, threads, path, data)
                       for key, seed, path in todo]
            for fut in as_completed(futures):
                key, seed, row = fut.result()
                done[key, seed] = row
                bar.update()
                if progress:
                    bar.write(f"{key} seed {seed}: AU {row['AU']:.2f} KL {row['KL']:.2f} MI {row['MI']:.2f} "
                              f"LL {row['LL']:.1f} (train {row['train_time_s']:.0f} s on {row.get('device', '?')})")
    bar.close()
    results = {m: [done[m, s] for s in seed_values if (m, s) in done] for m in methods}
    missing = [m for m in methods if not results[m]]
    if missing:
        warnings.warn(f"no finished run in the cache for {', '.join(missing)}: left out of the table",
                      RuntimeWarning, stacklevel=2)
    partial = len(done) < len(methods) * len(seed_values)
    found = max((len(r) for r in results.values()), default=0)
    mode = _mode_string(quick, found if partial else seeds, custom=settings != table_settings(quick), partial=partial)
    rows = []
    for k in methods:
        if results[k]:
            rows.append(_summarise(k, results[k], mode))
        for derived, (base, field, label) in DERIVED_ROWS.items():
            if base == k and _derived_runs(results[k], field):
                rows.append(_summarise(derived, _derived_runs(results[k], field), mode, label=label))
    if write:
        _write(rows, settings, quick, outdir)
    return rows


def _write(rows: list[dict], settings: TableSettings, quick: bool, outdir) -> tuple[Path, Path]:
    out = Path(config.FIGURE_DIR if outdir is None else outdir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / CSV_NAME, out / MD_NAME
    if quick and csv_path.exists():
        existing = read_table(csv_path)
        if existing and str(existing[0].get("mode", "")).startswith("full"):
            csv_path, md_path = out / CSV_NAME.replace(".csv", "_quick.csv"), out / MD_NAME.replace(".md", "_quick.md")
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    md_path.write_text(render_markdown(rows, settings))
    return csv_path, md_path


def read_table(path: str | Path | None = None) -> list[dict]:
    """Read a table CSV written by :func:`run_table` (default: ``FIGURE_DIR/table1_fashion_mnist.csv``)."""
    path = Path(config.FIGURE_DIR / CSV_NAME if path is None else path)
    if not path.exists():
        raise FileNotFoundError(f"no table at {path}; run `python -m identkit table [--quick]`")
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out: dict = {}
            for k, v in r.items():
                if k in ("method", "label", "mode"):
                    out[k] = v
                elif k == "n_seeds":
                    out[k] = int(v)
                else:
                    out[k] = float(v) if v not in ("", None) else float("nan")
            rows.append(out)
    return rows


def _pm(mean: float, sd: float, digits: int) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if math.isfinite(sd) else "")


def render_markdown(rows: list[dict], settings: TableSettings | None = None) -> str:
    """A markdown table of ``rows`` (mean ± sd over seeds) beside the paper's reported Fashion-MNIST row."""
    lines = ["# Table 1, Fashion-MNIST: ours (mean ± sd over seeds) and the paper's reported values", ""]
    if rows:
        lines.append(f"Mode: {rows[0]['mode']}.")
    if settings is not None:
        s = settings
        opt = {"adam": "Adam", "rmsprop": "RMSprop", "rmsprop_tf": "RMSprop (TF1)"}.get(s.optimizer, s.optimizer)
        init = "unscaled" if s.lid_init_ratio is None else f"nonlinear part {s.lid_init_ratio:g}·λu at init"
        lines.append(f"Settings: latent {s.latent_dim}, hidden {s.hidden}, {s.epochs} epochs, batch {s.batch_size}, "
                     f"{opt} lr {s.lr:g}; injective decoders: λ = {s.lid_lam:g}, {s.lid_activation} ICNNs, {init}; "
                     f"SA-VAE {s.svi_steps} SVI steps; {s.n_train or 60000} training / "
                     f"{s.n_eval or 10000} evaluation images, S = {s.iw_samples} importance samples.")
    ceil = [r for r in rows if math.isfinite(float(r.get("MI_ceiling", float("nan"))))]
    mi_note = ""
    if ceil:
        mi_note = (f" MI uses the aggregate posterior of the whole evaluation set (at most log N = "
                   f"{ceil[0]['MI_ceiling']:.2f}); MI_batch He et al.'s per-minibatch estimate (at most log B = "
                   f"{ceil[0]['MI_batch_ceiling']:.2f}).")
    lines += ["AU is the fraction of active latent dimensions; LL in nats per image (higher is better); seeds: "
              "runs behind a row (no ± with one)." + mi_note, "",
              "| method | seeds | AU | KL | MI | MI_batch | LL | paper AU | paper KL | paper MI | paper LL | train s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["label"], str(int(r["n_seeds"])), _pm(r["AU"], r["AU_sd"], 2), _pm(r["KL"], r["KL_sd"], 2),
                 _pm(r["MI"], r["MI_sd"], 2), _pm(r.get("MI_batch", float("nan")), r.get("MI_batch_sd", float("nan")), 2),
                 _pm(r["LL"], r["LL_sd"], 1)]
        cells += [("—" if not math.isfinite(float(r.get(f"paper_{m}", float("nan")))) else
                   f"{float(r[f'paper_{m}']):.1f}") for m in PAPER_METRICS]
        cells.append(f"{float(r['train_time_s']):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Paper values: Wang, Blei & Cunningham (NeurIPS 2021), Table 1 (as reported; LIDGMVAE is compared "
              "with our IDGMVAE row; the paper's SA-VAE row is Kim et al.'s method, which evaluates at the refined "
              "parameters). Our numbers use our settings above, not the paper's unreported ones.", ""]
    return "\n".join(lines)


#: The paper's claim for an identifiable row, as a test: AU at least this, LL at most this many nats below its twin.
GOAL_AU, GOAL_LL_GAP = 0.95, 1.0


def commentary(rows: list[dict], collapse_below: float = 0.5) -> str:
    """Plain-language reading of a table, computed from its numbers (what notebook 08 prints).

    A method "collapses" when fewer than ``collapse_below`` of its latent dimensions are active. Each identifiable
    row is compared with its twin (:data:`IDENTIFIABLE_TWINS`: AU and LL difference in nats, and whether it meets
    the paper's goal, AU ≥ :data:`GOAL_AU` at an LL within :data:`GOAL_LL_GAP` nat of the twin); the row whose AU has
    the largest standard deviation over seeds is named (collapse that depends on the seed).
    """
    if not rows:
        return "empty table"
    by = {r["method"]: r for r in rows}
    lines = [f"mode: {rows[0]['mode']}"]
    if str(rows[0]["mode"]).startswith("quick"):
        lines.append("quick mode: 2 000 images, one seed and a few epochs; the numbers show the direction of the "
                     "effect on a small budget, not the paper's full-scale values.")
    collapsed = [r["label"] for r in rows if r["AU"] < collapse_below]
    lines.append("collapsed (AU < {:.0%} of dims): {}".format(collapse_below, ", ".join(collapsed) or "none"))
    full = [r["label"] for r in rows if r["AU"] >= 0.999]
    lines.append("all dimensions active: " + (", ".join(full) or "none"))
    for ours, base in IDENTIFIABLE_TWINS.items():
        if ours in by and base in by:
            o, b = by[ours], by[base]
            goal = o["AU"] >= GOAL_AU and o["LL"] >= b["LL"] - GOAL_LL_GAP
            lines.append(f"{o['label']} vs {b['label']}: AU {o['AU']:.2f} vs {b['AU']:.2f}, MI {o['MI']:.2f} vs "
                         f"{b['MI']:.2f}, LL {o['LL']:.1f} vs {b['LL']:.1f} ({o['LL'] - b['LL']:+.1f} nats); "
                         f"paper's goal (AU >= {GOAL_AU}, LL within {GOAL_LL_GAP:g} nat): {'met' if goal else 'not met'}")
    spread = [r for r in rows if math.isfinite(float(r.get("AU_sd", float("nan"))))]
    if spread:
        top = max(spread, key=lambda r: r["AU_sd"])
        lines.append(f"AU varies most across seeds: {top['label']} (sd {top['AU_sd']:.2f} over "
                     f"{int(top['n_seeds'])} seeds)")
    best = max(rows, key=lambda r: r["LL"])
    lines.append(f"best LL: {best['label']} ({best['LL']:.1f})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``table`` subcommand's options."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="quick (CI) settings: small subset, small nets")
    mode.add_argument("--full", action="store_true", help="full settings even when CI/IDENTKIT_QUICK is set")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 1 quick, 3 full)")
    parser.add_argument("--outdir", default=None, help="folder of the CSV/markdown (default: figures/)")
    parser.add_argument("--methods", nargs="+", metavar="NAME", default=None,
                        help=f"subset of methods (default: all): {', '.join(METHODS)}")
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any TableSettings field, e.g. --set n_train=10000 --set hidden=256")
    parser.add_argument("--jobs", type=int, default=1,
                        help="(method, seed) runs trained at once, one process each (default 1; 2 on two CPU cores)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="per-(method, seed) run records (default runs/table_cache; the committed paper-scale "
                             "runs are in results/table1_runs)")
    parser.add_argument("--no-cache", action="store_true", help="ignore and do not write the per-run cache")
    parser.add_argument("--from-cache", action="store_true",
                        help="train nothing: write the table from the finished runs in the cache so far")
    parser.add_argument("--shortest-first", action="store_true",
                        help="with --jobs > 1: cheapest (method, seed) runs first, so records accumulate early")
    parser.add_argument("--reevaluate", action="store_true",
                        help="train nothing: recompute the metrics of every finished run from its saved model "
                             "(<method>_seed<seed>.model.pt beside the record), rewrite the records, then the table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_overrides(items: list[str]) -> dict:
    """``["n_train=10000", "lr=0.001", "n_eval=None"]`` → typed overrides of :class:`TableSettings` fields."""
    fields = {f.name: f for f in dataclasses.fields(TableSettings)}
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ValueError(f"--set: expected KEY=VALUE with KEY among {sorted(fields)}, got {item!r}")
        default = getattr(TableSettings(), key)
        if value.strip().lower() == "none":
            out[key] = None
        elif isinstance(default, float):
            out[key] = float(value)
        else:
            try:
                out[key] = int(value)
            except ValueError as exc:
                raise ValueError(f"--set: {key} needs an integer, got {value!r}") from exc
    return out


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Run the table from parsed CLI arguments (or an argv list) and print where it was written."""
    if not isinstance(args, argparse.Namespace):
        args = add_arguments(argparse.ArgumentParser(prog="python -m identkit table")).parse_args(args)
    quick = True if args.quick else (False if args.full else None)
    overrides = parse_overrides(getattr(args, "set", None) or [])
    if args.epochs is not None:
        overrides["epochs"] = check_int(args.epochs, "epochs")
    cache_dir = None if args.no_cache else (args.cache_dir or CACHE_DIR)
    if getattr(args, "reevaluate", False):
        if cache_dir is None:
            raise ValueError("--reevaluate needs the run records: drop --no-cache")
        settings = table_settings(quick, **overrides)
        train_x, eval_x = load_table_data(settings)
        folder = Path(cache_dir) / f"{settings.key()}-{_fingerprint(train_x)}-{_fingerprint(eval_x)}"
        reevaluate(folder, settings, methods=args.methods, progress=not args.no_progress, device=args.device)
        args.from_cache = True
    rows = run_table(quick=quick, seeds=args.seeds, outdir=args.outdir, progress=not args.no_progress,
                     methods=args.methods, cache_dir=cache_dir, jobs=args.jobs, device=args.device,
                     train=not args.from_cache, shortest_first=getattr(args, "shortest_first", False), **overrides)
    print(render_markdown(rows))
    out = Path(config.FIGURE_DIR if args.outdir is None else args.outdir)
    print(f"wrote the table to {out}")
    return 0
