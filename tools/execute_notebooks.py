"""Execute notebooks in place so that their committed outputs are current (``make notebooks``); time them.

Runs each notebook in its own folder with a fresh kernel of the current environment. Full mode unless
``IDENTKIT_QUICK`` is set. Usage::

    python tools/execute_notebooks.py [--times FILE --run first|cached] NOTEBOOK.ipynb [...]
    python tools/execute_notebooks.py --headers FILE NOTEBOOK.ipynb [...]

``--times`` records each notebook's wall-clock time (seconds), mode, threads, torch, the machine's CPU count, its
load average when the run started and how many trained models the run added to the model cache, in a JSON file
under the key ``--run``: ``first`` for a run that trains (an empty ``checkpoints/cache/``), ``cached`` for a run
that finds the trained models. ``--headers`` writes each lesson's "Compute time" paragraph from that file
(:func:`compute_time_paragraph`) without executing anything; ``tests/test_lessons.py`` checks that every lesson's
paragraph is the one the committed ``results/notebook_times.json`` gives.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "results" / "notebook_times.json"


def _paragraph(field: str) -> re.Pattern:
    """The header paragraph that starts with ``**<field>.**`` (or ``:``), up to the next blank line."""
    return re.compile(rf"\*\*{field}[.:]?\*\*[^\n]*(?:\n(?!\n)[^\n]*)*")


_COMPUTE_TIME, _CLASS_TIME = _paragraph("Compute time"), _paragraph("Class time")


def execute(path: Path, timeout: int = 3600) -> float:
    """Execute ``path`` in place; return the wall-clock seconds it took."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:  # execution metadata carries wall-clock timestamps: drop it for stable diffs
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, path)
    return seconds


def _cached_models() -> int:
    from identkit.neural.train import cache_dir

    folder = cache_dir()
    return len(list(folder.glob("*.pt"))) if folder is not None and folder.is_dir() else 0


def _threads() -> int:
    from identkit import config

    return config.threads_setting()


def _record(times: Path, run: str, path: Path, seconds: float, load: float, new_models: int) -> None:
    import torch

    data = json.loads(times.read_text()) if times.is_file() else {}
    entry = data.setdefault(path.stem, {})
    entry[run] = {"seconds": round(seconds, 1), "quick": os.environ.get("IDENTKIT_QUICK", "0") not in ("0", ""),
                  "threads": _threads(), "cpus": os.cpu_count(),
                  "load_before": round(load, 2), "new_models": new_models,
                  "machine": platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
                  "date": time.strftime("%Y-%m-%d")}
    times.write_text(json.dumps(dict(sorted(data.items())), indent=1, sort_keys=True) + "\n")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    return f"{minutes:.1f} minutes" if minutes < 10 else f"{round(minutes)} minutes"


def compute_time_paragraph(entry: dict | None) -> str:
    """The lesson header's "Compute time" paragraph for one notebook's entry of ``results/notebook_times.json``.

    ``entry`` holds the ``first`` run (empty model cache) and, for a notebook that trains, the ``cached`` run; a
    notebook whose first run added no model to the cache costs the same every time. ``None``: a notebook without
    code.
    """
    if entry is None:
        return "**Compute time.** None (no code)."
    first = entry["first"]
    mode = "quick mode" if first["quick"] else "full mode"
    where = (f"{first['threads']} torch thread{'s' if first['threads'] != 1 else ''} on {first['cpus']} CPU cores, "
             f"{first['date']}")
    if first["new_models"] == 0:
        return (f"**Compute time.** {_duration(first['seconds'])} in {mode}, the same on every run (nothing is "
                f"trained or cached; measured with {where}).")
    if "cached" not in entry:
        raise ValueError(f"entry: a notebook that trains needs a 'cached' run as well; run "
                         f"`python tools/execute_notebooks.py --times {TIMES.relative_to(ROOT)} --run cached ...`")
    n = first["new_models"]
    return (f"**Compute time.** {_duration(first['seconds'])} in {mode} on the first run, which trains "
            f"{n} model{'s' if n != 1 else ''} and caches {'them' if n != 1 else 'it'} under `checkpoints/cache/`; "
            f"{_duration(entry['cached']['seconds'])} once cached (measured with {where}).")


def _has_code(nb) -> bool:
    return any(c.cell_type == "code" and c.source.strip() for c in nb.cells)


def has_code(path: Path) -> bool:
    """Whether the notebook at ``path`` has a non-empty code cell."""
    return _has_code(nbformat.read(path, as_version=4))


def write_header(path: Path, times: dict) -> bool:
    """Put the compute-time paragraph of ``times`` into the first cell of ``path`` (after "Class time"); True if
    the notebook changed."""
    nb = nbformat.read(path, as_version=4)
    entry = times.get(path.stem)
    if entry is None and _has_code(nb):
        raise ValueError(f"times: no measured run of {path.name}; execute it with --times first")
    cell = nb.cells[0]
    paragraph = compute_time_paragraph(entry)
    if _COMPUTE_TIME.search(cell.source):
        new = _COMPUTE_TIME.sub(lambda _: paragraph, cell.source, count=1)
    else:
        m = _CLASS_TIME.search(cell.source)
        if m is None:
            raise ValueError(f"path: {path.name} has no '**Class time.**' paragraph to put the compute time after")
        new = cell.source[:m.end()] + "\n\n" + paragraph + cell.source[m.end():]
    if new == cell.source:
        return False
    cell.source = new
    nbformat.write(nb, path)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--times", type=Path, default=None, help="JSON file to record wall-clock times in")
    parser.add_argument("--run", choices=("first", "cached"), default=None,
                        help="with --times: 'first' (models trained in this run) or 'cached' (models found)")
    parser.add_argument("--headers", type=Path, default=None,
                        help="write the lessons' 'Compute time' paragraphs from this JSON file; execute nothing")
    args = parser.parse_args(argv)
    missing = [p for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(map(str, missing))}")
    if args.headers is not None:
        if args.times is not None or args.run is not None:
            parser.error("--headers executes nothing: give it without --times/--run")
        if not args.headers.is_file():
            parser.error(f"no such file: {args.headers} (record the times first with --times ... --run first)")
        times = json.loads(args.headers.read_text())
        for p in args.notebooks:
            print(f"{p}: {'updated' if write_header(p, times) else 'unchanged'}")
        return 0
    if (args.times is None) != (args.run is None):
        parser.error("--times and --run go together")
    os.environ.setdefault("IDENTKIT_QUICK", "0")
    for p in args.notebooks:
        if not has_code(p):
            print(f"skipping {p} (no code)")
            continue
        print(f"executing {p}", flush=True)
        load, before = os.getloadavg()[0], _cached_models()
        seconds = execute(p)
        print(f"  {seconds:.0f} s", flush=True)
        if args.times is not None:
            _record(args.times, args.run, p, seconds, load, _cached_models() - before)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
