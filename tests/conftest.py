from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not pass or fail by chance); explore new examples
# locally with `pytest --hypothesis-profile=explore`.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")

REFERENCE_DATA = Path(__file__).parent / "reference_data"


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """Folder of the paper's reference outputs (R dumps and R-computed curves, MIT licence)."""
    return REFERENCE_DATA


def perturb_parameters(module: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """Add N(0, scale²) noise to every parameter of ``module`` (seeded), in place; return the module.

    Used to check that a property holds for *every* parameter value, not only at initialisation.
    """
    if scale:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def written_manifest(outdir: Path, names: list[str]) -> dict:
    """Check that ``outdir`` holds a PNG and a PDF of exactly the figures ``names`` in its manifest; return the
    manifest's figure entries."""
    from identkit import figures

    written = {p.name for p in outdir.iterdir()}
    expected = {f"{n}.{ext}" for n in names for ext in ("png", "pdf")}
    assert expected <= written, f"missing: {sorted(expected - written)}"
    manifest = figures.read_manifest(outdir)
    assert set(manifest["figures"]) == set(names)
    return manifest["figures"]


def draw_figures_with_cli(outdir: Path, flag: str, names: list[str]) -> None:
    """Run `python -m identkit figures FLAG --outdir OUTDIR --only NAMES` as a user would (quick mode in the
    environment, as under `make test`); fail with its stderr if it fails."""
    import os
    import subprocess
    import sys

    if not names:
        return
    env = dict(os.environ, IDENTKIT_QUICK="1")
    run = subprocess.run([sys.executable, "-m", "identkit", "figures", flag, "--outdir", str(outdir),
                          "--only", *names], env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]


# Scopes that take minutes on two cores, longest first. pytest-xdist (--dist loadscope) hands scopes to workers
# in collection order, so collecting these first keeps one of them from starting last and running alone.
_LONG_SCOPES = ("notebooks/09_table.ipynb", "tests/test_frame.py", "tests/test_figures_trained.py",
                "notebooks/10_text.ipynb", "notebooks/solutions/04_approximate_inference_solutions.ipynb",
                "notebooks/04_approximate_inference.ipynb")


def pytest_collection_modifyitems(config, items):
    """Collect the long scopes first (a stable sort: the order within a scope, a notebook's cells, is kept)."""
    root = Path(str(config.rootpath))

    def rank(item) -> int:
        rel = Path(str(item.path)).resolve().relative_to(root.resolve()).as_posix()
        return _LONG_SCOPES.index(rel) if rel in _LONG_SCOPES else len(_LONG_SCOPES)

    items.sort(key=rank)
