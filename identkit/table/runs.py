"""Training and evaluating the table's (method, seed) runs, their records, resuming, re-evaluation, run_table.

Shared by every data set of :mod:`identkit.table.datasets`: a run is ``(settings, method key, seed)``; its
record is one JSON file ``<method>_seed<seed>.json`` under a cache folder named by the settings and the data
(:func:`cache_folder`), its trained model ``<method>_seed<seed>.model.pt`` beside it (git-ignored, for
:func:`reevaluate`) and, while it trains, its resumable state ``<method>_seed<seed>.state.pt``.
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from .._checks import check_int, check_seed
from .datasets import dataset_of, get_dataset, method_overrides, method_settings, settings_json, settings_key
from .render import BASE_METRICS, mode_string, summarise_runs, write_table

__all__ = ["CACHE_DIR", "table_settings", "settings_from_json", "build_method", "load_table_data",
           "load_validation_data", "cache_folder", "evaluation_seed", "evaluate_run", "train_and_evaluate",
           "reevaluate", "add_fixed_latent_ll", "run_table"]

Settings = Any  # a data set's settings dataclass (TableSettings, TextTableSettings)
#: Default folder of the per-run records (git-ignored); the committed paper-scale ones are under results/.
CACHE_DIR = config.REPO_ROOT / "runs" / "table_cache"


def _replace(settings, overrides: dict):
    fields = {f.name for f in dataclasses.fields(settings)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"overrides: unknown setting(s) {sorted(unknown)}; known: {sorted(fields)}")
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def table_settings(quick: bool | None = None, dataset: str = "fashion_mnist", **overrides):
    """The settings of quick (CI) or full mode for ``dataset``, with ``overrides`` (field=value) applied."""
    spec = get_dataset(dataset)
    return _replace(spec.base_settings(config.resolve_quick(quick)), overrides)


def settings_from_json(data: dict):
    """Rebuild a settings object from its ``settings.json`` (a Fashion-MNIST one has no ``dataset`` field)."""
    name = data.get("dataset", "fashion_mnist")
    spec = get_dataset(name)
    return spec.settings_type(**data)


def build_method(key: str, settings, data_dim: int, seed: int, train_x=None, val_x=None):
    """``(model, method)`` for method ``key`` of the data set of ``settings`` (its :attr:`TableDataset.build`), with
    the method's own ``method_overrides`` applied."""
    return dataset_of(settings).build(key, method_settings(settings, key), data_dim, seed, train_x, val_x)


def load_table_data(settings):
    """(train_x, eval_x) of the data set of ``settings`` (eval_x as evaluated: binarised once for images)."""
    return dataset_of(settings).load(settings)


def load_validation_data(settings):
    """The held-out rows (not the evaluation rows) of the data set of ``settings``."""
    return dataset_of(settings).load_validation(settings)


def cache_folder(cache_dir, settings, train_x, eval_x) -> Path:
    """``cache_dir/<settings hash>-<train fingerprint>-<eval fingerprint>`` (created, with its settings.json)."""
    folder = Path(cache_dir) / f"{settings_key(settings)}-{_fingerprint(train_x)}-{_fingerprint(eval_x)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings_json(settings), indent=1, sort_keys=True))
    return folder


def _fingerprint(x) -> str:
    """Short fingerprint of a data tensor's float32 values (part of the cache folder name)."""
    from ..neural.train import tensor_sha256

    return tensor_sha256(x.float())[:12]


def evaluation_seed(settings: Settings, seed: int) -> int:
    """Seed of every Monte-Carlo draw of the evaluation of training seed ``seed``.

    Derived from ``settings.eval_seed`` and ``seed`` through ``numpy.random.SeedSequence`` (an independent
    stream, not the training seed itself): runs of different seeds do not share their evaluation noise, and the
    evaluation's draws never repeat the training's.
    """
    return int(np.random.SeedSequence([check_seed(settings.eval_seed), check_seed(seed), 0x4556414C]).generate_state(1)[0])


def evaluate_run(key: str, settings: Settings, model, method, eval_x, seed: int) -> dict:
    """The table's metrics of a trained (method, seed): AU, AU_count, KL, MI, MI_batch, LL, their ceilings, and
    the data set's own (:attr:`TableDataset.extra_metrics`: perplexity, recovery of a known latent).

    For SA-VAE also ``refined``: the same metrics at the refined variational parameters (T SVI steps from the
    encoder's output, as Kim et al. evaluate), from :meth:`~identkit.neural.baselines.SemiAmortized.refined_posterior`.
    """
    from .. import metrics

    spec = dataset_of(settings)
    eseed = evaluation_seed(settings, seed)
    kw = dict(seed=eseed, samples=settings.iw_samples, mi_batch_size=settings.mi_batch_size)

    def measure(m) -> tuple[dict, dict]:
        res = metrics.collapse_metrics(m, eval_x, **kw)
        out = {k: float(res[k]) for k in BASE_METRICS}
        out["AU_count"] = int(res["AU_count"])
        if spec.extra_metrics is not None:
            out.update(spec.extra_metrics(m, eval_x, settings, out))
        return out, res

    row, res = measure(model)
    row.update(MI_ceiling=float(res["MI_ceiling"]), MI_batch_ceiling=float(res["MI_batch_ceiling"]), eval_seed=eseed)
    if key == "sa_vae":
        refined = method.refined_posterior(model, seed=eseed, batch_size=settings.batch_size).prepare(eval_x)
        row["refined"] = measure(refined)[0]
    return row


def train_and_evaluate(key: str, settings: Settings, train_x, eval_x, seed: int,
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

    from ..neural.train import default_device, fit, save_checkpoint

    seed = check_seed(seed)
    device = default_device() if device is None else _check_device(device)
    spec = dataset_of(settings)
    own = method_overrides(settings, key)
    settings = method_settings(settings, key)
    model, method = spec.build(key, settings, spec.data_dim(settings, train_x), seed, train_x, val_x)
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
    if own:
        row["method_overrides"] = own
    return row


def _saved_runs(cache_dir, settings, methods, device, data, progress: bool, desc: str, with_method: bool = True):
    """Yield ``(record path, record, model, method, own settings, eval_x)`` for each record with its saved model.

    Shared by :func:`reevaluate` and :func:`add_fixed_latent_ll`; records without a ``.model.pt`` are named in
    one warning at the end. ``with_method=False`` yields ``None`` for the training method (nothing is built).
    """
    from tqdm.auto import tqdm

    from ..neural.train import load_checkpoint

    folder = Path(cache_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"cache_dir: no folder {folder}")
    settings_path = folder / "settings.json"
    if settings is None:
        if not settings_path.exists():
            raise FileNotFoundError(f"cache_dir: {settings_path} is missing; pass settings=")
        settings = settings_from_json(json.loads(settings_path.read_text()))
    spec = dataset_of(settings)
    train_x, eval_x = spec.load(settings) if data is None else data
    data_dim = spec.data_dim(settings, train_x)
    missing = []
    for path in tqdm(sorted(folder.glob("*_seed*.json")), desc=desc, disable=not progress):
        rec = json.loads(path.read_text())
        if methods is not None and rec["method"] not in methods:
            continue
        model_file = _model_path(path)
        if not model_file.exists():
            missing.append(path.name)
            continue
        _check_record_overrides(rec, settings, path)
        own = method_settings(settings, rec["method"])
        model = load_checkpoint(model_file, map_location=device or "cpu")
        method = None
        if with_method:
            _, method = spec.build(rec["method"], own, data_dim, int(rec["seed"]))
            method.batch_size = own.batch_size
        yield path, rec, model, method, own, eval_x.to(next(model.parameters()).device)
    if missing:
        warnings.warn(f"no saved model for {', '.join(missing)}: left as they are", RuntimeWarning, stacklevel=3)


def reevaluate(cache_dir: str | Path, settings: Settings | None = None, methods=None, progress: bool = True,
               device=None, data=None) -> list[Path]:
    """Recompute the metrics of every record in ``cache_dir`` that has its saved model; rewrite the records.

    Training fields (times, ELBO, device, …) are kept; the metrics of :func:`evaluate_run` are replaced and
    ``reevaluated`` (the torch version and date) is added. Records without a ``.model.pt`` beside them are left
    as they are (and named in a warning). ``data``: the ``(train_x, eval_x)`` the runs used, when they were not
    the data set's own (tensors given to :func:`run_table`; ``eval_x`` as evaluated). Returns the rewritten records.
    """
    import torch

    done = []
    for path, rec, model, method, own, eval_x in _saved_runs(cache_dir, settings, methods, device, data, progress,
                                                             "reevaluate"):
        t0 = time.perf_counter()
        rec.update(evaluate_run(rec["method"], own, model, method, eval_x, int(rec["seed"])))
        rec["eval_time_s"] = time.perf_counter() - t0
        rec["reevaluated"] = {"torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
        _write_json_atomic(path, rec)
        done.append(path)
    return done


def add_fixed_latent_ll(cache_dir: str | Path, settings: Settings | None = None, methods=None,
                        progress: bool = True, device=None, data=None) -> list[Path]:
    r"""Add ``LL_z0``, the decoder's fit with the latent held at the prior mean, to every record with its model.

    ``LL_z0 = (1/N) Σ_i log p(x_i | z = 0)`` over the evaluation rows (:func:`identkit.metrics.fixed_latent_loglik`):
    the trained decoder as a model that ignores z. Set beside ``LL`` it splits a row's fit into what the decoder
    architecture achieves without a latent and what the latent adds. Nothing else in the record changes;
    ``LL_z0_added`` (torch version and date) records when. Same arguments as :func:`reevaluate`; returns the
    rewritten records.
    """
    import torch

    from ..metrics import fixed_latent_loglik

    done = []
    for path, rec, model, _, own, eval_x in _saved_runs(cache_dir, settings, methods, device, data, progress,
                                                        "LL at z = 0", with_method=False):
        rec["LL_z0"] = float(np.mean(fixed_latent_loglik(model, eval_x, batch_size=own.batch_size)))
        rec["LL_z0_added"] = {"torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
        _write_json_atomic(path, rec)
        done.append(path)
    return done


def _check_record_overrides(rec: dict, settings, path: Path) -> None:
    """Refuse a record whose method was trained with other per-method overrides than ``settings`` give it."""
    want, have = method_overrides(settings, rec["method"]), rec.get("method_overrides", {})
    if want != have:
        raise ValueError(f"{path}: trained with method_overrides {have or 'none'}, but the settings give "
                         f"{rec['method']} {want or 'none'}; delete the record (and its .model.pt) to retrain it, "
                         "or use the settings it was made with")


def _check_device(device):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device: {device!r} (use 'cpu', 'cuda' or 'cuda:N')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no GPU; use device='cpu'")
    return dev


def _job(key: str, settings: Settings, seed: int, device, threads: int, path, data=None) -> tuple[str, int, dict]:
    """One (method, seed) run in a worker process: train, evaluate, write the cache entry; return the row."""
    import torch

    torch.set_num_threads(max(1, threads))
    if data is None:
        spec = dataset_of(settings)
        train_x, eval_x = spec.load(settings)
        val_x = spec.load_validation(settings) if key == "lagging" else None
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


def run_table(quick: bool | None = None, seeds: int | None = None, outdir: str | Path | None = None,
              progress: bool = True, *, methods: list[str] | None = None, train_x=None, eval_x=None,
              settings: Settings | None = None, cache_dir: str | Path | None = CACHE_DIR,
              write: bool = True, jobs: int = 1, device=None, train: bool = True, shortest_first: bool = False,
              dataset: str | None = None, seed_index: int | None = None, **overrides) -> list[dict]:
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
        Keys of the data set's methods (default: all).
    train_x, eval_x : tensor, optional
        Fashion-MNIST only: data to use instead of it (grey levels in [0, 1]; ``eval_x`` is binarised here with
        ``settings.data_seed``). Give both or neither.
    settings : settings dataclass, optional
        Overrides the mode's settings entirely; ``**overrides`` (field=value) change single fields.
    cache_dir : path or None
        Per-(method, seed) JSON cache (None: no cache). Entries are keyed by the settings and the data.
    write : bool
        Write ``table1_<dataset>.{csv,md}`` to ``outdir``.
    jobs : int
        Number of (method, seed) runs trained at once, each in its own process (spawned; longest first) with
        (usable CPUs) // ``jobs`` torch threads; more jobs than usable CPUs only time-share them. Useful on a GPU, where one small-batch run leaves the device mostly
        idle, and on many-core CPUs. Results do not depend on ``jobs`` beyond floating-point rounding.
    device : str or torch.device, optional
        Where to train (default: CUDA when present, else CPU).
    shortest_first : bool
        Order parallel jobs cheapest first (records accumulate early, for runs spread over sessions) instead of
        longest first (the shortest total time).
    dataset : str, optional
        The data set (:data:`identkit.table.DATASETS`; default ``"fashion_mnist"``, or that of ``settings``).
    seed_index : int, optional
        Run only seed ``DEFAULT_SEED + seed_index`` (of the ``methods`` given) and write its record, not the
        table: one piece of a table fanned out over a scheduler (a Slurm array index); assemble the table
        afterwards with ``train=False``.
    train : bool
        False: train nothing, write the table from the runs already in the cache (each row's ``n_seeds`` says
        how many; methods without a finished run are left out with a warning). For a long full run done in
        pieces.

    Returns
    -------
    list of dict
        One row per method with the data set's CSV columns (:attr:`TableDataset.csv_columns`).

    Notes
    -----
    A quick-mode run never overwrites a full-mode CSV: when ``outdir`` already holds one, the quick table is
    written as ``table1_<dataset>_quick.{csv,md}`` instead.
    """
    from tqdm.auto import tqdm

    quick = config.resolve_quick(quick)
    if settings is None:
        settings = table_settings(quick, dataset=dataset or "fashion_mnist")
    elif dataset is not None and dataset != settings.dataset:
        raise ValueError(f"dataset: {dataset!r} but settings are for {settings.dataset!r}; give one of them")
    spec = dataset_of(settings)
    if overrides:
        settings = _replace(settings, overrides)
    seeds = (1 if quick else 3) if seeds is None else check_int(seeds, "seeds")
    methods = list(spec.methods) if methods is None else [spec.check_method(m) for m in methods]
    if (train_x is None) != (eval_x is None):
        raise ValueError("train_x and eval_x: give both or neither")
    from_disk = train_x is None
    val_x = None  # given tensors: the lagging encoder checks MI on the last training rows (its default)
    if from_disk:
        train_x, eval_x = spec.load(settings)
        if "lagging" in methods and train:
            val_x = spec.load_validation(settings)
    else:
        if spec.check_custom is None:
            raise ValueError(f"train_x, eval_x: the {spec.name} table reads its own data; do not pass tensors")
        train_x, eval_x = spec.check_custom(train_x, eval_x, settings)
    cache = None if cache_dir is None else cache_folder(cache_dir, settings, train_x, eval_x)

    jobs = check_int(jobs, "jobs")
    if device is not None:
        device = _check_device(device)
    seed_values = [config.DEFAULT_SEED + i for i in range(seeds)]
    if seed_index is not None:  # one (method, seed) piece of a table fanned out by a scheduler
        seed_values = [config.DEFAULT_SEED + check_int(seed_index, "seed_index", minimum=0)]
        write = False
    done: dict[tuple[str, int], dict] = {}
    todo: list[tuple[str, int, Path | None]] = []
    for key in methods:
        for seed in seed_values:
            path = None if cache is None else cache / f"{key}_seed{seed}.json"
            if path is not None and path.exists():
                done[key, seed] = json.loads(path.read_text())
                _check_record_overrides(done[key, seed], settings, path)
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
        todo.sort(key=lambda job: sign * spec.relative_cost.get(job[0], 1.0))
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
    mode = mode_string(quick, found if partial else seeds, custom=settings != spec.base_settings(quick),
                       partial=partial)
    rows = summarise_runs(spec, methods, results, mode)
    if write:
        write_table(rows, settings, quick, outdir)
    return rows
