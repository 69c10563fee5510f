"""Execute notebooks in place so that their committed outputs are current (``make notebooks``).

Runs each notebook in its own folder with a fresh kernel of the current environment. Full mode unless
``IDENTKIT_QUICK`` is set. Usage: ``python tools/execute_notebooks.py [--times FILE --run first|cached] NOTEBOOK.ipynb [...]``.

``--times`` records each notebook's wall-clock time (seconds), mode, threads, torch and the machine's CPU count in a
JSON file under the key ``--run``: ``first`` for a run that trains (an empty ``checkpoints/cache/``), ``cached``
for a run that finds the trained models. The lessons' "Compute time" lines quote that file
(``results/notebook_times.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, timeout: int = 3600) -> float:
    """Execute ``path`` in place; return the wall-clock seconds it took."""
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


def _record(times: Path, run: str, path: Path, seconds: float) -> None:
    import torch

    data = json.loads(times.read_text()) if times.is_file() else {}
    entry = data.setdefault(path.stem, {})
    entry[run] = {"seconds": round(seconds, 1), "quick": os.environ.get("IDENTKIT_QUICK", "0") not in ("0", ""),
                  "threads": os.environ.get("IDENTKIT_THREADS", "2"), "cpus": os.cpu_count(),
                  "machine": platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
                  "date": time.strftime("%Y-%m-%d")}
    times.write_text(json.dumps(dict(sorted(data.items())), indent=1, sort_keys=True) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--times", type=Path, default=None, help="JSON file to record wall-clock times in")
    parser.add_argument("--run", choices=("first", "cached"), default=None,
                        help="with --times: 'first' (models trained in this run) or 'cached' (models found)")
    args = parser.parse_args(argv)
    if (args.times is None) != (args.run is None):
        parser.error("--times and --run go together")
    os.environ.setdefault("IDENTKIT_QUICK", "0")
    missing = [p for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(map(str, missing))}")
    for p in args.notebooks:
        print(f"executing {p}", flush=True)
        seconds = execute(p)
        print(f"  {seconds:.0f} s", flush=True)
        if args.times is not None:
            _record(args.times, args.run, p, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
