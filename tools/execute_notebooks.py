"""Execute notebooks in place so that their committed outputs are current (``make notebooks``).

Runs each notebook in its own folder with a fresh kernel of the current environment. Full mode unless
``IDENTKIT_QUICK`` is set. Usage: ``python tools/execute_notebooks.py NOTEBOOK.ipynb [...]``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, timeout: int = 3600) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for cell in nb.cells:  # execution metadata carries wall-clock timestamps: drop it for stable diffs
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, path)


def main(argv: list[str]) -> int:
    os.environ.setdefault("IDENTKIT_QUICK", "0")
    paths = [Path(p) for p in argv if Path(p).exists()]
    for p in paths:
        print(f"executing {p}", flush=True)
        execute(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
