"""The ``python -m identkit table`` command: options, ``--set`` overrides, dispatch to :func:`run_table`."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .. import config
from .._checks import check_int
from .datasets import DATASETS, get_dataset
from .fashion_mnist import FASHION_MNIST
from .render import render_markdown
from .runs import (CACHE_DIR, add_fixed_latent_ll, cache_folder, load_table_data, reevaluate, run_table,
                   table_settings)
from .text import TEXT_METHODS

__all__ = ["add_arguments", "parse_overrides", "main"]

_DATASET_NAMES = tuple(DATASETS)  # every registered data set (importing the modules above registered them)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``table`` subcommand's options."""
    parser.add_argument("--dataset", default="fashion_mnist", choices=_DATASET_NAMES,
                        help="data set of the table (default fashion_mnist); writes figures/table1_<dataset>.{csv,md}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="quick (CI) settings: small subset, small nets")
    mode.add_argument("--full", action="store_true", help="full settings even when CI/IDENTKIT_QUICK is set")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 1 quick, 3 full)")
    parser.add_argument("--outdir", default=None, help="folder of the CSV/markdown (default: figures/)")
    parser.add_argument("--methods", nargs="+", metavar="NAME", default=None,
                        help="subset of the data set's methods (default: all); fashion_mnist: "
                             f"{', '.join(FASHION_MNIST.methods)}; text: {', '.join(TEXT_METHODS)}")
    parser.add_argument("--seed-index", type=int, default=None, metavar="I",
                        help="run only seed DEFAULT_SEED + I of --methods and write its record, not the table (one "
                             "piece of a table fanned out by a scheduler, e.g. I = $SLURM_ARRAY_TASK_ID); assemble "
                             "the table afterwards with --from-cache")
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any settings field, e.g. --set n_train=10000 --set hidden=256, or one "
                             "method's, e.g. --set sa_vae.svi_steps=10 (replaces the mode's per-method overrides)")
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
    parser.add_argument("--add-fixed-latent-ll", action="store_true",
                        help="train nothing: add LL_z0, the mean log p(x | z = 0) of each saved model's decoder (the "
                             "latent held at the prior mean), to every record with its model, then write the table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_overrides(items: list[str], dataset: str = "fashion_mnist") -> dict:
    """``["n_train=10000", "lr=0.001", "n_eval=None", "sa_vae.svi_steps=10"]`` → typed overrides of the data
    set's settings fields; ``METHOD.FIELD=VALUE`` sets one method's field (``method_overrides``, replacing the
    mode's overrides of that data set)."""
    spec = get_dataset(dataset)
    settings_type = spec.settings_type
    fields = {f.name for f in dataclasses.fields(settings_type)} - {"method_overrides"}
    out: dict = {}
    per_method: list = []
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, key = key.strip().rpartition(".")
        if not sep or key not in fields:
            raise ValueError(f"--set: expected KEY=VALUE or METHOD.KEY=VALUE with KEY among {sorted(fields)}, "
                             f"got {item!r}")
        typed = _typed(key, value, getattr(settings_type(), key))
        if dot:
            per_method.append((spec.check_method(method), key, typed))
        else:
            out[key] = typed
    if per_method:
        out["method_overrides"] = tuple(per_method)
    return out


def _typed(key: str, value: str, default):
    if value.strip().lower() == "none":
        return None
    if isinstance(default, float):
        return float(value)
    if isinstance(default, str):
        return value.strip()
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"--set: {key} needs an integer, got {value!r}") from exc


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Run the table from parsed CLI arguments (or an argv list) and print where it was written."""
    if not isinstance(args, argparse.Namespace):
        args = add_arguments(argparse.ArgumentParser(prog="python -m identkit table")).parse_args(args)
    quick = True if args.quick else (False if args.full else None)
    dataset = getattr(args, "dataset", None) or "fashion_mnist"
    overrides = parse_overrides(getattr(args, "set", None) or [], dataset)
    if args.epochs is not None:
        overrides["epochs"] = check_int(args.epochs, "epochs")
    cache_dir = None if args.no_cache else (args.cache_dir or CACHE_DIR)
    for flag, rewrite in (("reevaluate", reevaluate), ("add_fixed_latent_ll", add_fixed_latent_ll)):
        if not getattr(args, flag, False):
            continue
        if cache_dir is None:
            raise ValueError(f"--{flag.replace('_', '-')} needs the run records: drop --no-cache")
        settings = table_settings(quick, dataset=dataset, **overrides)
        train_x, eval_x = load_table_data(settings)
        rewrite(cache_folder(cache_dir, settings, train_x, eval_x), settings, methods=args.methods,
                progress=not args.no_progress, device=args.device)
        args.from_cache = True
    seed_index = getattr(args, "seed_index", None)
    if seed_index is not None and not args.methods:
        raise ValueError("--seed-index runs one (method, seed): name the method(s) with --methods")
    rows = run_table(quick=quick, seeds=args.seeds, outdir=args.outdir, progress=not args.no_progress,
                     methods=args.methods, cache_dir=cache_dir, jobs=args.jobs, device=args.device,
                     train=not args.from_cache, shortest_first=getattr(args, "shortest_first", False),
                     dataset=dataset, seed_index=seed_index, **overrides)
    print(render_markdown(rows, dataset=dataset))
    if seed_index is not None:
        print(f"wrote the record(s) of seed index {seed_index} under {cache_dir}; assemble the table with "
              f"`python -m identkit table --dataset {dataset} --from-cache`")
        return 0
    out = Path(config.FIGURE_DIR if args.outdir is None else args.outdir)
    print(f"wrote the table to {out}")
    return 0
