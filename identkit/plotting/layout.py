r"""Slide-readiness of a drawn figure: type large enough to read from the back of a room, legends and text boxes
that cover no data, colour bars that say what they show.

:func:`layout_problems` inspects a Figure after drawing (positions in display coordinates, after a draw of the
canvas) and returns one line per problem. ``identkit.figures.save`` records the list in the figure manifest, and
the tests require it to be empty.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MIN_FONTSIZE", "layout_problems"]

#: Smallest font size (points) of any text of a figure: tick labels, legends, annotations, titles.
MIN_FONTSIZE = 10.0


def _label(ax, i: int) -> str:
    title = ax.get_title() or ax.get_title(loc="left")
    return f"axes {i}" + (f" ({title[:40]!r})" if title else "")


def _densify(xy: np.ndarray) -> np.ndarray:
    """Each segment of a polyline sampled at 9 points, so that a line crossing a box without a vertex inside is seen."""
    if len(xy) < 2:
        return xy
    t = np.linspace(0.0, 1.0, 9)[:, None, None]
    return (xy[:-1][None] * (1 - t) + xy[1:][None] * t).reshape(-1, 2)


def _finite(xy) -> np.ndarray:
    """The rows of an (n, 2) vertex array (possibly empty) with both coordinates finite."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return xy[np.all(np.isfinite(xy), axis=1)]


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the data an axes draws: line vertices (densified), scatter offsets, error bars.

    Every visible line counts, also the unlabelled marker-only lines an ``errorbar`` draws (its markers and caps
    carry the label ``_nolegend_``); line collections (error bars, ``vlines``) count by their densified segments.
    """
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.contour import ContourSet
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    pts = []
    for line in (a for a in ax.get_children() if isinstance(a, Line2D) and a.get_visible()):
        xy = _finite(line.get_xydata())
        if len(xy):  # a marker-only line has no segments to sample
            pts.append(line.get_transform().transform(xy if line.get_linestyle() == "None" else _densify(xy)))
    for coll in (a for a in ax.collections if isinstance(a, LineCollection) and a.get_visible()):
        for seg in map(_finite, coll.get_segments()):
            if len(seg):
                pts.append(coll.get_transform().transform(_densify(seg)))
    for coll in (a for a in ax.collections if isinstance(a, PathCollection) and a.get_visible()):
        off = np.asarray(coll.get_offsets(), dtype=float)
        if off.size:
            pts.append(coll.get_offset_transform().transform(off))
    for patch in (p for p in ax.patches if not isinstance(p, Rectangle) and p.get_visible()):
        verts = patch.get_path().vertices  # step histograms (Polygon, StepPatch): their outline
        if len(verts) >= 2:
            pts.append(patch.get_transform().transform(_densify(verts)))
    for cs in (a for a in ax.collections if isinstance(a, ContourSet) and a.get_visible()):
        for path in cs.get_paths():  # contour lines: their vertices
            if len(path.vertices):
                pts.append(cs.get_transform().transform(path.vertices))
    return np.concatenate(pts) if pts else np.empty((0, 2))


def _data_boxes(ax) -> list:
    """Display bounding boxes of bars and filled patches (histograms, bar charts)."""
    from matplotlib.patches import Rectangle

    boxes = []
    for p in ax.patches:
        if isinstance(p, Rectangle) and p.get_visible() and p.get_width() != 0 and p.get_height() != 0:
            boxes.append(p.get_window_extent())
    return boxes


def _inside(points: np.ndarray, bbox, pad: float = 1.0) -> int:
    if len(points) == 0:
        return 0
    x, y = points[:, 0], points[:, 1]
    return int(np.sum((x > bbox.x0 + pad) & (x < bbox.x1 - pad) & (y > bbox.y0 + pad) & (y < bbox.y1 - pad)))


def layout_problems(fig, min_fontsize: float = MIN_FONTSIZE) -> list[str]:
    r"""What keeps ``fig`` from being slide-ready, one line per problem (empty: none).

    Checks, after drawing the canvas:

    * every visible text (titles, axis and tick labels, legend entries and titles, annotations, figure texts) has
      a font size of at least ``min_fontsize`` points;
    * a legend or a boxed annotation placed inside an axes contains no data of that axes: no vertex of a line
      (each segment sampled at 9 points, so a line crossing the box is seen), marker, error bar, step-histogram
      outline, contour line or scatter point, and no bar or
      histogram rectangle overlaps it by more than 2 % of the box's area;
    * every colour bar has a label.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    min_fontsize : float
        Points; :data:`MIN_FONTSIZE` (10) by default.

    Returns
    -------
    list of str
    """
    from matplotlib.text import Text

    fig.canvas.draw()
    problems: list[str] = []
    small = {}
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < min_fontsize - 1e-9:
            small.setdefault(round(t.get_fontsize(), 1), []).append(t.get_text().strip()[:25])
    for size, texts in sorted(small.items()):
        problems.append(f"{len(texts)} text(s) at {size:g} pt < {min_fontsize:g} pt, e.g. {texts[0]!r}")
    for i, ax in enumerate(fig.axes):
        if hasattr(ax, "_colorbar"):
            cbar = ax._colorbar
            label = cbar.ax.get_ylabel() if cbar.orientation == "vertical" else cbar.ax.get_xlabel()
            if not label.strip():
                problems.append(f"{_label(ax, i)}: colour bar without a label")
            continue
        covers = []
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            covers.append(("legend", legend.get_window_extent()))
        for t in ax.texts:
            if t.get_visible() and t.get_bbox_patch() is not None and t.get_text().strip():
                covers.append((f"text box {t.get_text().strip()[:20]!r}", t.get_window_extent().expanded(1.05, 1.15)))
        if not covers:
            continue
        axbox = ax.get_window_extent()
        points, boxes = _data_points(ax), _data_boxes(ax)
        for what, box in covers:
            if not box.overlaps(axbox):
                continue  # placed outside the axes
            n = _inside(points, box)
            area = max(box.width * box.height, 1.0)
            hit = sum(max(0.0, min(box.x1, b.x1) - max(box.x0, b.x0)) * max(0.0, min(box.y1, b.y1) - max(box.y0, b.y0))
                      for b in boxes) / area
            if n or hit > 0.02:
                detail = ", ".join(([f"{n} data point(s)"] if n else []) + ([f"{hit:.0%} of its area on bars"] if hit > 0.02 else []))
                problems.append(f"{_label(ax, i)}: {what} covers data ({detail})")
    return problems
