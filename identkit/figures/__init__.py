"""Every figure of the tutorial, by name.

Each figure is one function in a submodule of this package, decorated with :func:`figure`; it takes
``quick: bool`` (and keyword arguments with defaults) and returns a :class:`matplotlib.figure.Figure` drawn in
identkit's style. Notebooks call these functions; ``python -m identkit figures`` calls :func:`save_all`.
Submodules are discovered automatically, so adding a figure means adding a decorated function, nothing else.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt

from .. import config
from ..plotting import savefig, style

__all__ = ["FigureSpec", "figure", "registry", "names", "make", "save", "save_all"]


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure: its file stem, one-line description, notebook and drawing function."""

    name: str
    description: str
    notebook: str
    func: Callable


_REGISTRY: dict[str, FigureSpec] = {}


def figure(name: str, description: str, notebook: str):
    """Register the decorated function as figure ``name``; calls of it are drawn in identkit's style."""

    def decorate(func):
        if name in _REGISTRY and _REGISTRY[name].func.__qualname__ != func.__qualname__:
            raise ValueError(f"figure name {name!r} registered twice")

        @functools.wraps(func)
        def wrapper(*args, quick: bool | None = None, **kwargs):
            with style():
                fig = func(*args, quick=config.resolve_quick(quick), **kwargs)
            # Detach from pyplot: no double display in notebooks, no open-figure build-up in loops.
            plt.close(fig)
            return fig

        _REGISTRY[name] = FigureSpec(name, description, notebook, wrapper)
        return wrapper

    return decorate


def _discover() -> None:
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def registry() -> dict[str, FigureSpec]:
    """All registered figures, sorted by name."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def names() -> list[str]:
    """The names of all registered figures."""
    return list(registry())


def make(name: str, quick: bool | None = None, **kwargs):
    """Draw figure ``name`` and return the Figure."""
    reg = registry()
    if name not in reg:
        raise ValueError(f"name: unknown figure {name!r}; known figures: {', '.join(reg)}")
    return reg[name].func(quick=quick, **kwargs)


def save(name: str, quick: bool | None = None, outdir: str | Path | None = None) -> list[Path]:
    """Draw figure ``name``, write PNG + PDF and close it; return the written paths."""
    fig = make(name, quick=quick)
    try:
        return savefig(fig, name, outdir)
    finally:
        plt.close(fig)


def save_all(only: list[str] | None = None, quick: bool | None = None, outdir: str | Path | None = None,
             progress: bool = True) -> list[Path]:
    """Regenerate the figures named in ``only`` (all when None); return every written path."""
    reg = registry()
    todo = list(reg) if not only else list(only)
    unknown = [n for n in todo if n not in reg]
    if unknown:
        raise ValueError(f"only: unknown figure(s) {', '.join(unknown)}; see `python -m identkit figures --list`")
    from tqdm.auto import tqdm

    paths: list[Path] = []
    for name in tqdm(todo, desc="figures", disable=not progress):
        paths += save(name, quick=quick, outdir=outdir)
    return paths
