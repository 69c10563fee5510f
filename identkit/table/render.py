"""Table 1's rows from run records: mean ± sd over seeds, the CSV and markdown files, and a plain reading.

Shared by every data set of :mod:`identkit.table.datasets` (its methods, metrics and the paper's row).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .. import config
from .datasets import TableDataset, dataset_of, get_dataset

__all__ = ["BASE_METRICS", "PAPER_METRICS", "GOAL_AU", "GOAL_LL_GAP", "mode_string", "summarise_runs",
           "write_table", "read_table", "render_markdown", "commentary"]

#: The metrics every data set reports (:func:`identkit.metrics.collapse_metrics`).
BASE_METRICS = ("AU", "KL", "MI", "MI_batch", "LL")
#: The paper's four columns (MI_batch has no counterpart there).
PAPER_METRICS = ("AU", "KL", "MI", "LL")
_DIGITS = {"LL": 1, "PPL": 1, "LL_z0": 1}


def mode_string(quick: bool, n_seeds: int, custom: bool = False, partial: bool = False) -> str:
    base = ("quick" if quick else "full") + ("-custom" if custom else "")
    if partial:  # assembled from the cache: methods may have fewer seeds (the n_seeds column)
        return f"{base} (finished runs so far; up to {n_seeds} seed{'s' if n_seeds != 1 else ''} per method)"
    return f"{base} ({n_seeds} seed{'s' if n_seeds != 1 else ''}{'; no sd' if n_seeds < 2 else ''})"


def _summarise(spec: TableDataset, key: str, runs: list[dict], mode: str, label: str | None = None) -> dict:
    row: dict = {"method": key, "label": label or spec.methods[key]}
    for m in spec.metrics:
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
    paper = spec.paper.get(spec.paper_labels.get(key, ""), {})
    for m in PAPER_METRICS:
        row[f"paper_{m}"] = paper.get(m, float("nan"))
    return row


def _derived_runs(runs: list[dict], field: str) -> list[dict]:
    """Per-seed records of a derived row: ``run[field]``'s metrics with the run's times and ceilings."""
    out = []
    for r in runs:
        if field in r:
            # times, ceilings and the decoder-only LL_z0 are the base run's (a refined q keeps the decoder)
            out.append({**{k: r[k] for k in ("train_time_s", "eval_time_s", "MI_ceiling", "MI_batch_ceiling", "LL_z0")
                           if k in r}, **r[field]})
    return out


def summarise_runs(spec: TableDataset, methods: list[str], results: dict[str, list[dict]], mode: str) -> list[dict]:
    """The table's rows: per method (in ``methods`` order) mean ± sd over its runs, then its derived rows."""
    rows = []
    for k in methods:
        own = _overrides_label(results.get(k, []))
        if results.get(k):
            rows.append(_summarise(spec, k, results[k], mode, label=spec.methods[k] + own))
        for derived, (base, field, label) in spec.derived_rows.items():
            if base == k and _derived_runs(results.get(k, []), field):
                rows.append(_summarise(spec, derived, _derived_runs(results[k], field), mode, label=label + own))
    return rows


def _overrides_label(runs: list[dict]) -> str:
    """`` (svi_steps 5)`` for runs made with per-method settings (their records' ``method_overrides``), else ''."""
    found = {json.dumps(r.get("method_overrides", {}), sort_keys=True) for r in runs}
    if len(found) > 1:
        raise ValueError(f"runs of method {runs[0].get('method')!r} were made with different method_overrides: "
                         f"{sorted(found)}; rerun them with one setting")
    own = runs[0].get("method_overrides", {}) if runs else {}
    return f" ({', '.join(f'{k} {v}' for k, v in sorted(own.items()))})" if own else ""


def write_table(rows: list[dict], settings, quick: bool, outdir) -> tuple[Path, Path]:
    """Write ``table1_<dataset>.{csv,md}`` to ``outdir`` (default figures/); a quick table never replaces a full one."""
    spec = dataset_of(settings)
    out = Path(config.FIGURE_DIR if outdir is None else outdir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / spec.csv_name, out / spec.md_name
    if quick and csv_path.exists():
        existing = read_table(csv_path)
        if existing and str(existing[0].get("mode", "")).startswith("full"):
            csv_path = out / spec.csv_name.replace(".csv", "_quick.csv")
            md_path = out / spec.md_name.replace(".md", "_quick.md")
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=spec.csv_columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    md_path.write_text(render_markdown(rows, settings))
    return csv_path, md_path


def read_table(path: str | Path | None = None, dataset: str = "fashion_mnist") -> list[dict]:
    """Read a table CSV written by :func:`~identkit.table.run_table` (default: ``FIGURE_DIR/table1_<dataset>.csv``)."""
    path = Path(config.FIGURE_DIR / get_dataset(dataset).csv_name if path is None else path)
    if not path.exists():
        raise FileNotFoundError(f"no table at {path}; run `python -m identkit table --dataset {dataset} [--quick]`")
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


def render_markdown(rows: list[dict], settings=None, dataset: str | None = None) -> str:
    """A markdown table of ``rows`` (mean ± sd over seeds) beside the paper's reported row for the data set.

    The data set is that of ``settings`` when given, else ``dataset`` (default ``"fashion_mnist"``). A data set
    the paper does not report (fortunes) has no paper columns; its CSV keeps them, empty, so every table's CSV
    has the same columns.
    """
    spec = dataset_of(settings) if settings is not None else get_dataset(dataset or "fashion_mnist")
    with_paper = bool(spec.paper)
    lines = [f"# Table 1, {spec.title}: ours (mean ± sd over seeds)"
             + (" and the paper's reported values" if with_paper else ""), ""]
    if rows:
        lines.append(f"Mode: {rows[0]['mode']}.")
    if settings is not None:
        lines.append(spec.describe(settings))
        own = getattr(settings, "method_overrides", ())
        if own:
            lines.append("Per-method settings: " + "; ".join(
                f"{spec.methods.get(m, m)} {field} = {value}" for m, field, value in own) + ".")
    ceil = [r for r in rows if math.isfinite(float(r.get("MI_ceiling", float("nan"))))]
    mi_note = ""
    if ceil:
        mi_note = (f" MI uses the aggregate posterior of the whole evaluation set (at most log N = "
                   f"{ceil[0]['MI_ceiling']:.2f}); MI_batch He et al.'s per-minibatch estimate (at most log B = "
                   f"{ceil[0]['MI_batch_ceiling']:.2f}).")
    lines += [f"AU is the fraction of active latent dimensions; LL in nats per {spec.unit} (higher is better)"
              + ("; PPL the perplexity per predicted token (words and </s>)" if "PPL" in spec.metrics else "")
              + ("; R2_z how much of the true latent's variance an affine map of E_q[z|x] explains"
                 if "R2_z" in spec.metrics else "")
              + ("; LL_z0 the mean log p(x | z = 0), the decoder with the latent held at the prior mean (a model"
                 " that ignores z)" if "LL_z0" in spec.metrics else "")
              + "; seeds: runs behind a row (no ± with one)." + mi_note, "",
              "| method | seeds | " + " | ".join(spec.metrics)
              + (" | " + " | ".join(f"paper {m}" for m in PAPER_METRICS) if with_paper else "") + " | train s |",
              "|---|---|" + "---|" * (len(spec.metrics) + len(PAPER_METRICS) * with_paper) + "---|"]
    for r in rows:
        cells = [r["label"], str(int(r["n_seeds"]))]
        cells += [_pm(float(r.get(m, float("nan"))), float(r.get(f"{m}_sd", float("nan"))), _DIGITS.get(m, 2))
                  for m in spec.metrics]
        if with_paper:
            cells += [("—" if not math.isfinite(float(r.get(f"paper_{m}", float("nan")))) else
                       f"{float(r[f'paper_{m}']):.1f}") for m in PAPER_METRICS]
        cells.append(f"{float(r['train_time_s']):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", spec.paper_note, ""]
    return "\n".join(lines)


#: The paper's claim for an identifiable row, as a test: AU at least this, LL at most this many nats below its twin.
GOAL_AU, GOAL_LL_GAP = 0.95, 1.0


def commentary(rows: list[dict], collapse_below: float = 0.5, dataset: str = "fashion_mnist") -> str:
    """Plain-language reading of a table, computed from its numbers (what notebooks 09 and 10 print).

    A method "collapses" when fewer than ``collapse_below`` of its latent dimensions are active. Each identifiable
    row is compared with its twin (the data set's ``twins``: AU and LL difference in nats, and whether it meets
    the paper's goal, AU ≥ :data:`GOAL_AU` at an LL within :data:`GOAL_LL_GAP` nat of the twin, and, where the
    table has ``LL_z0``, how much of the LL difference the identifiable decoder reaches with z held at 0); the row
    whose AU has the largest standard deviation over seeds is named (collapse that depends on the seed).
    """
    if not rows:
        return "empty table"
    spec = get_dataset(dataset)
    by = {r["method"]: r for r in rows}
    lines = [f"mode: {rows[0]['mode']}"]
    if str(rows[0]["mode"]).startswith("quick"):
        lines.append(f"quick mode: a small subset of {spec.title}, one seed and a few epochs; the numbers show the "
                     "direction of the effect on a small budget, not the paper's full-scale values.")
    collapsed = [r["label"] for r in rows if r["AU"] < collapse_below]
    lines.append("collapsed (AU < {:.0%} of dims): {}".format(collapse_below, ", ".join(collapsed) or "none"))
    full = [r["label"] for r in rows if r["AU"] >= 0.999]
    lines.append("all dimensions active: " + (", ".join(full) or "none"))
    for ours, base in spec.twins.items():
        if ours in by and base in by:
            o, b = by[ours], by[base]
            goal = o["AU"] >= GOAL_AU and o["LL"] >= b["LL"] - GOAL_LL_GAP
            lines.append(f"{o['label']} vs {b['label']}: AU {o['AU']:.2f} vs {b['AU']:.2f}, MI {o['MI']:.2f} vs "
                         f"{b['MI']:.2f}, LL {o['LL']:.1f} vs {b['LL']:.1f} ({o['LL'] - b['LL']:+.1f} nats); "
                         f"paper's goal (AU >= {GOAL_AU}, LL within {GOAL_LL_GAP:g} nat): {'met' if goal else 'not met'}")
            z0 = float(o.get("LL_z0", float("nan")))
            if math.isfinite(z0):
                lines.append(f"{o['label']} with z held at 0 (a model that ignores z): LL_z0 {z0:.1f}, "
                             f"{z0 - b['LL']:+.1f} nats against {b['label']}'s LL; using z adds the rest, "
                             f"{o['LL'] - z0:+.1f} nats")
    spread = [r for r in rows if math.isfinite(float(r.get("AU_sd", float("nan"))))]
    if spread:
        top = max(spread, key=lambda r: r["AU_sd"])
        lines.append(f"AU varies most across seeds: {top['label']} (sd {top['AU_sd']:.2f} over "
                     f"{int(top['n_seeds'])} seeds)")
    best = max(rows, key=lambda r: r["LL"])
    lines.append(f"best LL: {best['label']} ({best['LL']:.1f})")
    return "\n".join(lines)
