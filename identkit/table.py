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
    "lagging": "Lagging VAE",
    "sa_vae": "SA-VAE",
    "vampprior": "VampPrior",
    "lidvae": "LIDVAE",
    "gmvae": "GMVAE",
    "idgmvae": "IDGMVAE",
}

#: Our method key → the paper's row it corresponds to (the paper's identifiable GMVAE is "LIDGMVAE").
PAPER_LABELS: dict[str, str] = {"vae": "VAE", "sa_vae": "SA-VAE", "lagging": "Lagging VAE",
                                "beta_vae": "β-VAE (0.2)", "idgmvae": "LIDGMVAE"}

METRICS = ("AU", "KL", "MI", "LL")
CSV_COLUMNS = ["method", "label", *METRICS, *(f"{m}_sd" for m in METRICS), "AU_count", "n_seeds", "mode",
               "train_time_s", "eval_time_s", "paper_AU", "paper_KL", "paper_MI", "paper_LL"]
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
        Free-bits threshold λ (nats per dimension).
    lagging_max_inner, lagging_check_every : int
        He et al.'s inner-loop cap and improvement window.
    svi_steps : int
    svi_lr : float
        SA-VAE refinement steps and step size.
    n_pseudo : int
        VampPrior pseudo-inputs.
    lid_lam : float
        Strong-monotonicity λ of the injective decoders' Brenier maps.
    data_seed : int
        Seed of the training/evaluation subsets and of the evaluation binarisation (the same for all methods).
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
    lagging_max_inner: int = 100
    lagging_check_every: int = 15
    svi_steps: int = 10
    svi_lr: float = 1.0
    n_pseudo: int = 500
    lid_lam: float = 3.0
    data_seed: int = config.DEFAULT_SEED

    def key(self) -> str:
        """A short hash of the settings (the cache folder name)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def table_settings(quick: bool | None = None, **overrides) -> TableSettings:
    """The settings of quick (CI) or full mode, with ``overrides`` (field=value) applied."""
    if config.resolve_quick(quick):
        base = TableSettings(latent_dim=32, hidden=256, n_clusters=10, epochs=20, lr=2e-3, n_train=2000, n_eval=500,
                             iw_samples=100, lagging_max_inner=20, lagging_check_every=5, svi_steps=5, n_pseudo=50)
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


def build_method(key: str, settings: TableSettings, data_dim: int, seed: int, train_x=None):
    """Build ``(model, method)`` for method ``key`` with the shared budget of ``settings``.

    The model's weights are initialised from ``seed`` (the models leave torch's global RNG untouched);
    ``method`` is the :class:`identkit.neural.train.Method` that ``fit`` uses.
    """
    import torch

    from .neural import baselines, models
    from .neural.train import Method

    _check_method(key)
    s = settings
    common = dict(hidden=s.hidden, likelihood="bernoulli", seed=seed)  # the models seed their own init
    if key == "vampprior":
        init = None
        if train_x is not None and len(train_x) >= s.n_pseudo:
            # pseudo-inputs start at random training images (Tomczak & Welling)
            idx = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))[: s.n_pseudo]
            init = train_x[idx]
        model = baselines.VampPrior(data_dim, s.latent_dim, n_pseudo=s.n_pseudo, pseudo_init=init, **common)
    elif key == "lidvae":
        model = models.LIDVAE(data_dim, s.latent_dim, lam=s.lid_lam, **common)
    elif key == "gmvae":
        model = models.GMVAE(data_dim, s.latent_dim, n_clusters=s.n_clusters, **common)
    elif key == "idgmvae":
        model = models.IDGMVAE(data_dim, s.latent_dim, n_clusters=s.n_clusters, lam=s.lid_lam, **common)
    else:
        model = models.VAE(data_dim, s.latent_dim, **common)
    if key == "beta_vae":
        method = baselines.BetaVAE(s.beta)
    elif key == "free_bits":
        method = baselines.FreeBits(s.free_bits)
    elif key == "lagging":
        method = baselines.LaggingEncoder(max_inner=s.lagging_max_inner, check_every=s.lagging_check_every,
                                          mi_seed=seed)
    elif key == "sa_vae":
        method = baselines.SemiAmortized(s.svi_steps, s.svi_lr)
    else:
        method = Method()
    return model, method


def train_and_evaluate(key: str, settings: TableSettings, train_x, eval_x, seed: int,
                       progress: bool = False, device=None, state_path=None) -> dict:
    """Train method ``key`` with ``seed`` on ``train_x`` and evaluate it on the (binary) rows of ``eval_x``.

    The model is initialised on the CPU from ``seed`` and then moved to ``device`` (default
    :func:`identkit.neural.train.default_device`: CUDA when present); every random draw of training and
    evaluation comes from CPU generators, so a GPU run sees the same minibatches, binarisations and noise as a
    CPU run and differs from it only by floating-point rounding.

    ``state_path`` (optional) is a training-state file (``resume`` of :func:`identkit.neural.train.fit`): the
    run writes its state there after every epoch and, when the file exists, continues from it, so a long run
    can be stopped and resumed (bit-identical to an uninterrupted run on the same device and thread count).

    Returns a dict with AU (fraction of active dimensions), AU_count, KL, MI, LL, train_time_s (summed over
    resumed pieces), eval_time_s, the last epoch's training ELBO, the device, the method and seed, the torch
    version and thread count, ``resumed_at`` (the epochs it was resumed at) when it was resumed and, for the
    lagging encoder, the number of aggressive epochs.
    """
    import torch

    from . import metrics
    from .neural.train import default_device, fit

    seed = check_seed(seed)
    device = default_device() if device is None else _check_device(device)
    model, method = build_method(key, settings, train_x.shape[1], seed, train_x)
    model.to(device)
    t0 = time.perf_counter()
    hist = fit(model, train_x, method=method, epochs=settings.epochs, batch_size=settings.batch_size,
               lr=settings.lr, optimizer=settings.optimizer, seed=seed, clip_grad=settings.clip_grad, progress=progress,
               device=device, resume=state_path)
    t1 = time.perf_counter()
    res = metrics.collapse_metrics(model, eval_x, seed=seed, samples=settings.iw_samples)
    t2 = time.perf_counter()
    row = {m: float(res[m]) for m in METRICS}
    row["AU_count"] = int(res.get("AU_count", round(row["AU"] * settings.latent_dim)))
    resumed = hist.get("resumed_at", [])
    row.update(train_time_s=hist["wall_seconds"][-1] if resumed else t1 - t0, eval_time_s=t2 - t1,
               train_elbo=float(hist["elbo"][-1]) if hist.get("elbo") else float("nan"), device=str(device),
               method=key, seed=seed, torch=torch.__version__, threads=torch.get_num_threads())
    if resumed:
        row["resumed_at"] = [int(e) for e in resumed]
    if key == "lagging":
        row["aggressive_epochs"] = int(method.aggressive_epochs)
    return row


def _check_device(device):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device: {device!r} (use 'cpu', 'cuda' or 'cuda:N')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no GPU; use device='cpu'")
    return dev


#: Wall time (training + evaluation) of one paper-scale (method, seed) run relative to a VAE's, measured on the
#: committed one-thread CPU records (a VAE run ≈ 17 min; the lagging encoder's aggressive phase lasted 4-6 of 50
#: epochs there); only orders the parallel jobs, longest first.
_RELATIVE_COST = {"vampprior": 6.3, "lagging": 5.0, "sa_vae": 3.8, "idgmvae": 1.5, "lidvae": 1.4, "vae": 1.0,
                  "gmvae": 0.95, "beta_vae": 0.92, "free_bits": 0.9}


def _job(key: str, settings: TableSettings, seed: int, device, threads: int, path, data=None) -> tuple[str, int, dict]:
    """One (method, seed) run in a worker process: train, evaluate, write the cache entry; return the row."""
    import torch

    torch.set_num_threads(max(1, threads))
    train_x, eval_x = load_table_data(settings) if data is None else data
    return key, seed, _run_one(key, settings, train_x, eval_x, seed, device, None if path is None else Path(path))


def _state_path(record: Path) -> Path:
    """The training-state file of the run whose finished record will be ``record`` (git-ignored)."""
    return record.with_name(record.stem + ".state.pt")


def _run_one(key, settings, train_x, eval_x, seed, device, path: Path | None, progress: bool = False) -> dict:
    """Train and evaluate one (method, seed), resuming from its state file; write its record, drop the state."""
    state = None if path is None else _state_path(path)
    row = train_and_evaluate(key, settings, train_x, eval_x, seed, progress=progress, device=device, state_path=state)
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


def _summarise(key: str, runs: list[dict], mode: str) -> dict:
    row: dict = {"method": key, "label": METHODS[key]}
    for m in METRICS:
        vals = np.array([r[m] for r in runs], dtype=float)
        row[m] = float(vals.mean())
        row[f"{m}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
    row["AU_count"] = float(np.mean([r["AU_count"] for r in runs]))
    row["n_seeds"] = len(runs)
    row["mode"] = mode
    row["train_time_s"] = float(np.mean([r["train_time_s"] for r in runs]))
    row["eval_time_s"] = float(np.mean([r["eval_time_s"] for r in runs]))
    paper = PAPER_FASHION_MNIST.get(PAPER_LABELS.get(key, ""), {})
    for m in METRICS:
        row[f"paper_{m}"] = paper.get(m, float("nan"))
    return row


def run_table(quick: bool | None = None, seeds: int | None = None, outdir: str | Path | None = None,
              progress: bool = True, *, methods: list[str] | None = None, train_x=None, eval_x=None,
              settings: TableSettings | None = None, cache_dir: str | Path | None = CACHE_DIR,
              write: bool = True, jobs: int = 1, device=None, train: bool = True, **overrides) -> list[dict]:
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
    if from_disk:
        train_x, eval_x = load_table_data(settings)
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
            done[key, seed] = _run_one(key, settings, train_x, eval_x, seed, device, path, progress)
            bar.update()
    else:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor, as_completed

        todo.sort(key=lambda job: -_RELATIVE_COST.get(job[0], 1.0))
        workers = min(jobs, len(todo))
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cpus // workers)  # CPUs this process may use, not the machine's count
        if workers > cpus:
            warnings.warn(f"jobs={workers} but only {cpus} CPU(s) are usable here: the runs will time-share them "
                          "(each run is driven by one CPU even on a GPU)", RuntimeWarning, stacklevel=2)
        data = None if from_disk else (train_x, eval_x)  # workers reload Fashion-MNIST themselves
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
    rows = [_summarise(k, results[k], mode) for k in methods if results[k]]
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
        opt = {"adam": "Adam", "rmsprop": "RMSprop"}.get(s.optimizer, s.optimizer)
        lines.append(f"Settings: latent {s.latent_dim}, hidden {s.hidden}, {s.epochs} epochs, batch {s.batch_size}, "
                     f"{opt} lr {s.lr:g}, λ = {s.lid_lam:g}, {s.n_train or 60000} training / "
                     f"{s.n_eval or 10000} evaluation images, S = {s.iw_samples} importance samples.")
    lines += ["AU is the fraction of active latent dimensions; LL in nats per image (higher is better); seeds: "
              "runs behind a row (no ± with one).", "",
              "| method | seeds | AU | KL | MI | LL | paper AU | paper KL | paper MI | paper LL | train s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["label"], str(int(r["n_seeds"])), _pm(r["AU"], r["AU_sd"], 2), _pm(r["KL"], r["KL_sd"], 2),
                 _pm(r["MI"], r["MI_sd"], 2), _pm(r["LL"], r["LL_sd"], 1)]
        cells += [("—" if not math.isfinite(float(r.get(f"paper_{m}", float("nan")))) else
                   f"{float(r[f'paper_{m}']):.1f}") for m in METRICS]
        cells.append(f"{float(r['train_time_s']):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Paper values: Wang, Blei & Cunningham (NeurIPS 2021), Table 1 (as reported; LIDGMVAE is compared "
              "with our IDGMVAE row). Our numbers use our settings above, not the paper's unreported ones.", ""]
    return "\n".join(lines)


def commentary(rows: list[dict], collapse_below: float = 0.5) -> str:
    """Plain-language reading of a table, computed from its numbers (what notebook 08 prints).

    A method "collapses" when fewer than ``collapse_below`` of its latent dimensions are active. The LIDVAE and
    IDGMVAE rows are compared with the VAE and GMVAE rows (AU and LL difference in nats); the row whose AU has
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
    for ours, base in (("lidvae", "vae"), ("idgmvae", "gmvae")):
        if ours in by and base in by:
            o, b = by[ours], by[base]
            lines.append(f"{o['label']} vs {b['label']}: AU {o['AU']:.2f} vs {b['AU']:.2f}, MI {o['MI']:.2f} vs "
                         f"{b['MI']:.2f}, LL {o['LL']:.1f} vs {b['LL']:.1f} ({o['LL'] - b['LL']:+.1f} nats)")
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
    rows = run_table(quick=quick, seeds=args.seeds, outdir=args.outdir, progress=not args.no_progress,
                     methods=args.methods, cache_dir=cache_dir, jobs=args.jobs, device=args.device,
                     train=not args.from_cache, **overrides)
    print(render_markdown(rows))
    out = Path(config.FIGURE_DIR if args.outdir is None else args.outdir)
    print(f"wrote the table to {out}")
    return 0
