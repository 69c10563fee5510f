"""The training figures drawn by the command line in quick mode: files, manifest entries and their numbers.

A module of its own (rather than part of test_frame.py) so that pytest-xdist's --dist loadscope draws them on one
worker while another draws the exact figures. Trained models are cached (identkit.neural.train.cache_dir), so the
notebooks that run later reuse them.
"""
import pytest
from conftest import draw_figures_with_cli, written_manifest

from identkit import config, figures
from identkit.figures import _data


@pytest.fixture(scope="module")
def drawn_training_figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    names = [n for n, spec in figures.registry().items() if spec.cost == "training"]
    draw_figures_with_cli(out, "--quick", names)
    return out, names


def test_figures_command_writes_every_training_figure(drawn_training_figures):
    """A PNG, a PDF and the drawn numbers for every training figure; the manifest marks them machine-dependent
    and records torch and the thread count they were trained with."""
    out, names = drawn_training_figures
    assert names and set(names) | {n for n, s in figures.registry().items() if s.cost == "cheap"} == \
        set(figures.names())
    for name, entry in written_manifest(out, names).items():
        assert entry["mode"] == "quick" and entry["machine_dependent"] is True
        assert set(entry["sha256"]) == {"png", "pdf", "json"}
        assert _data.read_data(out / _data.DATA_DIR / f"{name}.json"), name
    assert figures.read_manifest(out)["training"]["threads"] == config.THREADS


def test_redrawn_training_figures_show_the_same_numbers(drawn_training_figures):
    """Drawing a training figure again (same seed, thread count and cached model) gives the same numbers: the
    check `make figures` applies against the committed files passes on an identical redraw."""
    out, _ = drawn_training_figures
    name = "06_lambda_sweep"
    first = _data.read_data(out / _data.DATA_DIR / f"{name}.json")
    fig = figures.make(name, quick=True)
    assert _data.compare_data(_data.figure_data(fig), first) == []
