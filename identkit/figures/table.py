"""Figure of notebook 08: the recomputed Table 1 (Fashion-MNIST) beside the paper's reported values."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import config
from ..plotting import palette
from . import figure

__all__ = ["table1"]

_TITLES = {"AU": "active units (fraction)", "KL": "KL(q(z|x) ‖ p(z))", "MI": "mutual information I_q(x; z)",
           "LL": "IW log-likelihood (nats)"}


def _rows(quick: bool, csv: str | Path | None):
    from .. import table

    path = Path(config.FIGURE_DIR / table.CSV_NAME if csv is None else csv)
    if path.exists():
        return table.read_table(path)
    # No CSV yet: compute a quick table (a full one takes hours on CPU; see identkit.table) without writing it.
    return table.run_table(quick=True, seeds=1, progress=False, write=False)


@figure("08_table1", "Table 1 on Fashion-MNIST: AU, KL, MI, LL per method (ours ± sd) and the paper's values",
        notebook="08_table", cost="training")
def table1(*, quick: bool = False, csv: str | Path | None = None, rows: list[dict] | None = None):
    """Four panels (AU, KL, MI, LL): our mean ± sd over seeds per method as bars, the paper's reported
    Fashion-MNIST values as black diamonds where the paper reports that method (its LIDGMVAE on our IDGMVAE row).

    Reads ``csv`` (default ``FIGURE_DIR/table1_fashion_mnist.csv``, written by ``python -m identkit table``)
    when it exists; otherwise trains a quick-mode table (one seed, small subset) and labels it so. ``rows``
    (as returned by :func:`identkit.table.run_table` / ``read_table``) are drawn directly when given. When
    the rows rest on different numbers of seeds, each label carries its n.
    """
    rows = _rows(quick, csv) if rows is None else rows
    seeds = [int(r["n_seeds"]) for r in rows]
    mixed = len(set(seeds)) > 1  # rows resting on different numbers of seeds say so
    labels = [r["label"] + (f" (n={n})" if mixed else "") for r, n in zip(rows, seeds)]
    y = np.arange(len(rows))
    colours = palette(len(rows))
    fig, axes = plt.subplots(1, 4, figsize=(14, 0.45 * len(rows) + 1.8), sharey=True)
    for ax, m in zip(axes, ("AU", "KL", "MI", "LL")):
        vals = np.array([r[m] for r in rows], dtype=float)
        sds = np.array([r[f"{m}_sd"] for r in rows], dtype=float)
        sds = None if not np.isfinite(sds).any() else np.where(np.isfinite(sds), sds, 0.0)
        if m == "LL":  # bars from the worst value, so differences are visible
            left = np.nanmin(np.concatenate([vals, [r.get("paper_LL", np.nan) for r in rows]])) - 5.0
            ax.barh(y, vals - left, left=left, xerr=sds, color=colours, alpha=0.85, capsize=3)
        else:
            ax.barh(y, vals, xerr=sds, color=colours, alpha=0.85, capsize=3)
        paper = np.array([r.get(f"paper_{m}", np.nan) for r in rows], dtype=float)
        ok = np.isfinite(paper)
        if ok.any():
            ax.plot(paper[ok], y[ok], "D", color="black", ms=6, label="paper (reported)")
        ax.set_title(_TITLES[m], fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    mode = rows[0]["mode"] if rows else "?"
    n_seeds = rows[0]["n_seeds"] if rows else 0
    sd_note = "; bars: mean ± sd over seeds" if n_seeds and n_seeds > 1 else ""
    fig.suptitle(f"Table 1, Fashion-MNIST — ours: {mode}{sd_note}; the paper's reported values (◆)",
                 fontsize=11)
    fig.tight_layout()
    return fig
