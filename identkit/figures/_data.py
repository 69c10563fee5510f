r"""The numbers a figure shows, extracted from its artists, and a tolerance check against committed numbers.

A training figure's bytes are reproducible only on CPUs of one kind (another instruction set rounds differently,
and many optimiser steps amplify the difference). What a reader should be able to check on any machine is that
the *numbers* drawn agree: :func:`figure_data` reads them back from the Figure (line and scatter coordinates,
bar heights, image and mesh values, text), ``make figures`` writes them to ``figures/data/<name>.json`` beside the
PNG/PDF, and :func:`compare_data` checks a redrawn figure against the committed file with a stated tolerance.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

__all__ = ["figure_data", "write_data", "read_data", "compare_data", "DATA_DIR", "RTOL", "ATOL"]

#: Folder (inside the figure folder) that holds the committed numbers of each figure.
DATA_DIR = "data"
#: Tolerance of :func:`compare_data`: ``|new − old| ≤ ATOL·scale + RTOL·|old|``, scale = max |old| of the array.
RTOL = 1e-2
ATOL = 1e-2
_DIGITS = 4  # significant digits written: rounding (≤ 5e-4 relative) stays far inside RTOL


def figure_data(fig) -> dict[str, np.ndarray | str]:
    """Every number a Figure draws, keyed ``ax<i>/<kind><j>``, in drawing order.

    Lines give their (x, y) data, collections (scatter, fill, mesh) their offsets and colour arrays, bar-like
    rectangles their (x, y, width, height), images their arrays; texts (titles, labels, annotations) are kept as
    strings, since a figure's annotations often print its numbers. Axis ticks and spines are not data.

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    dict name → float array (or str for texts)
    """
    from matplotlib.collections import Collection
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    out: dict[str, np.ndarray | str] = {}
    for i, ax in enumerate(fig.axes):
        for j, line in enumerate(a for a in ax.get_children() if isinstance(a, Line2D)):
            out[f"ax{i}/line{j}"] = np.asarray(line.get_xydata(), dtype=float)
        for j, coll in enumerate(a for a in ax.get_children() if isinstance(a, Collection)):
            offsets = np.asarray(coll.get_offsets(), dtype=float)
            if offsets.size:
                out[f"ax{i}/collection{j}/offsets"] = offsets
            values = coll.get_array()
            if values is not None:
                out[f"ax{i}/collection{j}/values"] = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan)
        rects = [a for a in ax.patches if isinstance(a, Rectangle)]
        if rects:
            out[f"ax{i}/bars"] = np.array([[r.get_x(), r.get_y(), r.get_width(), r.get_height()] for r in rects])
        for j, im in enumerate(a for a in ax.get_children() if isinstance(a, AxesImage)):
            out[f"ax{i}/image{j}"] = np.ma.filled(np.ma.asarray(im.get_array(), dtype=float), np.nan)
        texts = [ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)]
        out[f"ax{i}/texts"] = "\n".join(t for t in texts if t)
    return out


def _encode(value):
    if isinstance(value, str):
        return value
    arr = np.asarray(value, dtype=float)
    flat = [None if not np.isfinite(v) else float(f"{v:.{_DIGITS}g}") for v in arr.ravel()]
    return {"shape": list(arr.shape), "values": flat}


def _decode(value):
    if isinstance(value, str):
        return value
    return np.array([np.nan if v is None else v for v in value["values"]], dtype=float).reshape(value["shape"])


def write_data(fig, name: str, outdir: str | Path) -> Path:
    """Write :func:`figure_data` of ``fig`` to ``<outdir>/data/<name>.json`` (:data:`_DIGITS` significant digits, sorted keys)."""
    path = Path(outdir) / DATA_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = {k: _encode(v) for k, v in figure_data(fig).items()}
    path.write_text(json.dumps(encoded, sort_keys=True, separators=(",", ":")) + "\n")
    return path


def read_data(path: str | Path) -> dict[str, np.ndarray | str]:
    """Read a file written by :func:`write_data`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no figure data at {path}; run `make figures` to write it")
    return {k: _decode(v) for k, v in json.loads(path.read_text()).items()}


_NUMBER = re.compile(r"[-+−]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _texts_agree(a: str, b: str, rtol: float) -> bool:
    """Equal words, and numbers equal to ``rtol`` (relative) or one unit in their last printed digit."""
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    for sa, sb in zip(_NUMBER.findall(a), _NUMBER.findall(b)):
        va, vb = (float(s.replace("−", "-")) for s in (sa, sb))
        decimals = len(sb.split(".")[1].split("e")[0].split("E")[0]) if "." in sb else 0
        unit = 10.0 ** -decimals * (10.0 ** int(sb.lower().split("e")[1]) if "e" in sb.lower() else 1.0)
        if abs(va - vb) > max(rtol * abs(vb), unit * 1.000001):
            return False
    return True


def compare_data(new: dict, old: dict, rtol: float = RTOL, atol: float = ATOL) -> list[str]:
    """Differences between two :func:`figure_data` results beyond the tolerance, as readable lines.

    Arrays must have the same keys and shapes, NaN where the other has NaN, and agree elementwise to
    ``|new − old| ≤ atol · max|old| + rtol · |old|`` (the scale makes the test independent of the units of an
    axis); texts must have the same words and numbers equal to ``rtol`` or to one unit in the last printed digit. An empty list means the figures show the same numbers.
    """
    problems = []
    for key in sorted(set(new) | set(old)):
        if key not in new or key not in old:
            problems.append(f"{key}: only in the {'new' if key in new else 'committed'} figure")
            continue
        a, b = new[key], old[key]
        if isinstance(a, str) or isinstance(b, str):
            if not (isinstance(a, str) and isinstance(b, str) and _texts_agree(a, b, rtol)):
                problems.append(f"{key}: text {a!r} != committed {b!r}")
            continue
        if a.shape != b.shape:
            problems.append(f"{key}: shape {a.shape} != committed {b.shape}")
            continue
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            problems.append(f"{key}: NaN pattern differs")
            continue
        ok = ~np.isnan(b)
        if not ok.any():
            continue
        scale = float(np.max(np.abs(b[ok])))
        excess = np.abs(a[ok] - b[ok]) - (atol * scale + rtol * np.abs(b[ok]))
        if np.any(excess > 0):
            k = int(np.argmax(excess))
            problems.append(f"{key}: {np.count_nonzero(excess > 0)} of {ok.sum()} values differ beyond tolerance "
                            f"(worst {a[ok][k]:.6g} vs committed {b[ok][k]:.6g})")
    return problems
