"""One place for the switches every notebook, figure and command reads.

* ``QUICK``: quick (CI) mode. Set ``IDENTKIT_QUICK=1`` (or ``0``) explicitly, otherwise quick mode follows the
  presence of ``CI`` in the environment, as Pyro's tutorials do (``smoke_test = "CI" in os.environ``).
* ``DEFAULT_SEED``: the seed used when a caller gives none.
* ``FIGURE_DIR``: where figures are written (``IDENTKIT_FIGURE_DIR`` overrides ``<repo>/figures``).
* ``THREADS``: torch's intra-op thread count while figures are drawn and their models trained
  (``IDENTKIT_THREADS``, default 1): a fixed count makes those runs bit-reproducible on CPUs of one kind, since
  the way a reduction is split over threads changes its last bits, and a trained network's last bits can change
  what it learns (lesson 07's LIDVAE keeps 42 of 64 units with one thread, 48 with two). The committed outputs
  and the table records were all trained with one thread, so that is the default.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["QUICK", "DEFAULT_SEED", "FIGURE_DIR", "REPO_ROOT", "THREADS", "quick_mode", "resolve_quick",
           "threads_setting"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def quick_mode(environ: os._Environ | dict | None = None) -> bool:
    """Return whether quick mode is on for the given environment (default: ``os.environ``).

    ``IDENTKIT_QUICK`` wins when set; otherwise quick mode is on exactly when ``CI`` is set.
    """
    env = os.environ if environ is None else environ
    flag = env.get("IDENTKIT_QUICK")
    if flag is not None:
        value = flag.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"IDENTKIT_QUICK must be one of {sorted(_TRUE | _FALSE - {''})}, got {flag!r}")
    return "CI" in env


def resolve_quick(quick: bool | None) -> bool:
    """``quick`` if given, else the environment's :data:`QUICK`."""
    return QUICK if quick is None else bool(quick)


def threads_setting(environ: os._Environ | dict | None = None) -> int:
    """The thread count for reproducible runs: ``IDENTKIT_THREADS`` (a positive integer) if set, else 1."""
    env = os.environ if environ is None else environ
    raw = env.get("IDENTKIT_THREADS", "1").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"IDENTKIT_THREADS must be a positive integer, got {raw!r}")
    return int(raw)


QUICK: bool = quick_mode()
THREADS: int = threads_setting()
DEFAULT_SEED: int = 20211206  # NeurIPS 2021 opening day; any fixed integer would do
REPO_ROOT: Path = Path(__file__).resolve().parent.parent
FIGURE_DIR: Path = Path(os.environ.get("IDENTKIT_FIGURE_DIR", REPO_ROOT / "figures"))
