"""The one figure style and the one ``savefig`` (PNG + PDF, byte-stable) used by every figure in identkit."""
from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib

if matplotlib.get_backend().lower() not in {"agg", "module://matplotlib_inline.backend_inline", "pdf"}:
    # Headless by default; notebooks keep their inline backend.
    with contextlib.suppress(Exception):
        matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from .. import config  # noqa: E402

from .layout import MIN_FONTSIZE, layout_problems  # noqa: E402  (slide-readiness checks)

__all__ = ["STYLE_FILE", "PALETTE", "style", "savefig", "palette", "legend_below", "layout_problems", "MIN_FONTSIZE"]

STYLE_FILE = Path(__file__).with_name("identkit.mplstyle")
#: Colour-blind-safe palette (seaborn's ``colorblind``, from Okabe & Ito).
PALETTE = sns.color_palette("colorblind")

# Fixed metadata: no timestamps or version strings, so the same figure gives the same bytes.
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
}


def palette(n: int | None = None) -> list:
    """The first ``n`` colours of :data:`PALETTE` (all of them when ``n`` is None)."""
    return list(PALETTE if n is None else sns.color_palette("colorblind", n))


def legend_below(ax, ncols: int = 2, **kwargs):
    """A legend under the axes (below its x label), so that it covers no data; constrained layout makes room.

    ``kwargs`` go to :meth:`matplotlib.axes.Axes.legend` (e.g. ``title``)."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=ncols, borderaxespad=0.0, **kwargs)


@contextlib.contextmanager
def style():
    """Context manager applying identkit's style (seaborn ticks + ``identkit.mplstyle`` + colour-blind cycle)."""
    with plt.rc_context():
        sns.set_theme(context="notebook", style="ticks", palette="colorblind")
        plt.style.use(STYLE_FILE)
        yield


def savefig(fig, name: str, outdir: str | Path | None = None, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``<outdir>/<name>.png`` and ``.pdf`` with fixed metadata; return the paths.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        File stem; letters, digits, ``_`` and ``-`` only.
    outdir : path, optional
        Defaults to :data:`identkit.config.FIGURE_DIR`.
    formats : tuple of str
        Any of ``"png"``, ``"pdf"``.
    """
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be a non-empty file stem of letters, digits, '_' or '-', got {name!r}")
    unknown = set(formats) - set(_METADATA)
    if unknown:
        raise ValueError(f"formats must be among {sorted(_METADATA)}, got {sorted(unknown)}")
    out = Path(config.FIGURE_DIR if outdir is None else outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        fig.savefig(path, format=fmt, metadata=_METADATA[fmt])
        paths.append(path)
    return paths
