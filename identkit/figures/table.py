"""Figure of notebook 09: the recomputed Table 1 (Fashion-MNIST) beside the paper's reported values."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import config
from ..plotting import palette
from ..table import IDENTIFIABLE_TWINS
from . import figure

__all__ = ["table1"]

_TITLES = {"AU": "active units (fraction)", "KL": "KL(q(z|x) ‖ p(z))", "MI": "MI, whole evaluation set",
           "MI_batch": "MI per minibatch (He et al.)", "LL": "IW log-likelihood (nats)"}
_IDENTIFIABLE = set(IDENTIFIABLE_TWINS)


def _rows(quick: bool, csv: str | Path | None):
    from .. import table

    path = Path(config.FIGURE_DIR / table.CSV_NAME if csv is None else csv)
    if path.exists():
        return table.read_table(path)
    # No CSV yet: compute a quick table (a full one takes hours on CPU; see identkit.table) without writing it.
    return table.run_table(quick=True, seeds=1, progress=False, write=False)


def _per_seed(rows: list[dict]) -> dict[str, list[dict]]:
    """Per-seed records behind full-mode rows (the committed ``results/table1_runs``), by row key."""
    import json

    from .. import table

    if not rows or not str(rows[0].get("mode", "")).startswith("full"):
        return {}
    folders = sorted(table.RESULTS_DIR.glob(f"{table.table_settings(quick=False).key()}-*"))
    out: dict[str, list[dict]] = {}
    for folder in folders[:1]:
        for path in sorted(folder.glob("*_seed*.json")):
            rec = json.loads(path.read_text())
            out.setdefault(rec["method"], []).append(rec)
            for derived, (base, field, _) in table.DERIVED_ROWS.items():
                if rec["method"] == base and field in rec:
                    out.setdefault(derived, []).append(rec[field])
    return out


@figure("09_table1", "Table 1 on Fashion-MNIST: AU, KL, both MI estimators and LL per method, with the paper's values",
        notebook="09_table", cost="training")
def table1(*, quick: bool = False, csv: str | Path | None = None, rows: list[dict] | None = None):
    """Five panels (AU, KL, MI, MI_batch, LL): our mean ± sd over seeds per method (dots and bars), every seed's
    value (small grey dots, where the per-seed records are committed), the paper's reported Fashion-MNIST values
    (black diamonds; its LIDGMVAE on our IDGMVAE row), and the ceilings log N and log B of the two MI estimators
    (dashed). The identifiable models' rows are set apart below a line.

    Reads ``csv`` (default ``FIGURE_DIR/table1_fashion_mnist.csv``, written by ``python -m identkit table``)
    when it exists; otherwise trains a quick-mode table (one seed, small subset) and labels it so. ``rows``
    (as returned by :func:`identkit.table.run_table` / ``read_table``) are drawn directly when given. When
    the rows rest on different numbers of seeds, each label carries its n.
    """
    rows = _rows(quick, csv) if rows is None else rows
    rows = [r for r in rows if r["method"] not in _IDENTIFIABLE] + [r for r in rows if r["method"] in _IDENTIFIABLE]
    seeds = [int(r["n_seeds"]) for r in rows]
    mixed = len(set(seeds)) > 1  # rows resting on different numbers of seeds say so
    labels = [r["label"] + (f" (n={n})" if mixed else "") for r, n in zip(rows, seeds)]
    y = np.arange(len(rows))
    colours = palette(len(rows))
    per_seed = _per_seed(rows)
    metrics = [m for m in ("AU", "KL", "MI", "MI_batch", "LL") if any(m in r for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.45 * len(rows) + 2.0), sharey=True)
    n_plain = sum(r["method"] not in _IDENTIFIABLE for r in rows)
    for ax, m in zip(axes, metrics):
        vals = np.array([r.get(m, np.nan) for r in rows], dtype=float)
        sds = np.array([r.get(f"{m}_sd", np.nan) for r in rows], dtype=float)
        ax.errorbar(vals, y, xerr=np.where(np.isfinite(sds), sds, 0.0), fmt="none", ecolor="0.3", capsize=3, lw=1)
        ax.scatter(vals, y, c=colours, s=45, zorder=3, edgecolors="black", linewidths=0.5)
        for i, r in enumerate(rows):
            pts = [rec[m] for rec in per_seed.get(r["method"], []) if m in rec]
            if len(pts) > 1:
                ax.plot(pts, [i + 0.18] * len(pts), "o", color="0.55", ms=3, zorder=2)
        paper = np.array([r.get(f"paper_{m}", np.nan) for r in rows], dtype=float)
        ok = np.isfinite(paper)
        if ok.any():
            ax.plot(paper[ok], y[ok], "D", color="black", ms=6, label="paper (reported)")
        ceiling = {"MI": "MI_ceiling", "MI_batch": "MI_batch_ceiling"}.get(m)
        if ceiling is not None:
            known = np.array([r.get(ceiling, np.nan) for r in rows], dtype=float)
            known = known[np.isfinite(known)]  # rows written without the estimator's ceiling draw no line
            if known.size:
                c = known.mean()
                ax.axvline(c, color="0.4", ls="--", lw=1)
                ax.annotate(f"log {'N' if m == 'MI' else 'B'} = {c:.2f}", (c, -0.6), ha="right", va="bottom",
                            fontsize=10, color="0.3")
        if 0 < n_plain < len(rows):
            ax.axhline(n_plain - 0.5, color="0.2", lw=0.8)
        ax.set_title(_TITLES[m], fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    for tick, r in zip(axes[0].get_yticklabels(), rows):
        if r["method"] in _IDENTIFIABLE:
            tick.set_fontweight("bold")
    axes[0].invert_yaxis()
    mode = rows[0]["mode"] if rows else "?"
    n_seeds = rows[0]["n_seeds"] if rows else 0
    sd_note = "; dots: mean ± sd over seeds (grey: each seed)" if n_seeds and n_seeds > 1 else ""
    fig.suptitle(f"Table 1, Fashion-MNIST — ours: {mode}{sd_note}; the paper's reported values (◆); "
                 "identifiable models below the line", fontsize=11)
    fig.tight_layout()
    return fig
