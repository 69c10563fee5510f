"""The frame: quick-mode switch, argument checks, figure registry, byte-stable savefig."""
import hashlib

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from identkit import _checks, config, figures  # noqa: E402
from identkit.__main__ import main  # noqa: E402
from identkit.plotting import savefig  # noqa: E402


@pytest.mark.parametrize(
    "env, expected",
    [({}, False), ({"CI": "true"}, True), ({"CI": "true", "IDENTKIT_QUICK": "0"}, False),
     ({"IDENTKIT_QUICK": "1"}, True), ({"IDENTKIT_QUICK": "yes"}, True)],
)
def test_quick_mode_switch(env, expected):
    assert config.quick_mode(env) is expected


def test_quick_mode_rejects_garbage():
    with pytest.raises(ValueError, match="IDENTKIT_QUICK"):
        config.quick_mode({"IDENTKIT_QUICK": "maybe"})


def test_checks_name_the_argument():
    with pytest.raises(ValueError, match="sigma"):
        _checks.check_positive(0.0, "sigma")
    with pytest.raises(ValueError, match="sigma"):
        _checks.check_positive(float("nan"), "sigma")
    with pytest.raises(ValueError, match="x contains NaN"):
        _checks.as_finite_array([1.0, np.nan], "x")
    with pytest.raises(ValueError, match="alpha"):
        _checks.check_unit_interval([0.5, 1.2], "alpha")
    with pytest.raises(ValueError, match="cov"):
        _checks.check_psd([[1.0, 2.0], [2.0, 1.0]], "cov")
    with pytest.raises(ValueError, match="cov"):
        _checks.check_psd([[1.0, 0.5], [0.0, 1.0]], "cov")
    with pytest.raises(ValueError, match="seed"):
        _checks.check_seed(-1)
    assert _checks.check_psd(np.eye(2), "cov").shape == (2, 2)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_savefig_is_byte_stable(tmp_path):
    def draw():
        fig, ax = plt.subplots()
        ax.plot(np.linspace(0, 1, 50) ** 2, label="x²")
        ax.legend()
        return fig

    first = savefig(draw(), "stable", tmp_path / "a")
    second = savefig(draw(), "stable", tmp_path / "b")
    plt.close("all")
    assert [p.suffix for p in first] == [".png", ".pdf"]
    assert [_digest(p) for p in first] == [_digest(p) for p in second]


def test_savefig_rejects_bad_names(tmp_path):
    fig = plt.figure()
    with pytest.raises(ValueError, match="name"):
        savefig(fig, "../escape", tmp_path)
    with pytest.raises(ValueError, match="formats"):
        savefig(fig, "ok", tmp_path, formats=("gif",))
    plt.close(fig)


def test_registry_names_are_file_stems_and_unknown_names_fail():
    for name, spec in figures.registry().items():
        assert name == spec.name and all(c.isalnum() or c in "_-" for c in name)
        assert spec.description and spec.notebook
    with pytest.raises(ValueError, match="unknown figure"):
        figures.make("no_such_figure")


def test_cli_lists_every_figure(capsys):
    assert main(["figures", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert listed == figures.names()


def test_committed_cheap_figures_are_what_the_code_draws(tmp_path):
    """TeachOpenCADD-style: regenerating the exact (no-training) figures reproduces the committed files byte for byte."""
    committed = figures.read_manifest()
    if committed["versions"] != figures._versions():
        pytest.skip(f"figures/ was drawn with {committed['versions']}, this environment has {figures._versions()}")
    cheap = [n for n, spec in figures.registry().items() if spec.cost == "cheap"]
    missing = [n for n in cheap if n not in committed["figures"]]
    assert not missing, f"figures not committed (run `make figures`): {missing}"
    stale = []
    for name in cheap:
        entry = committed["figures"][name]
        figures.save(name, quick=entry["mode"] == "quick", outdir=tmp_path)
        for fmt, digest in entry["sha256"].items():
            if _digest(tmp_path / f"{name}.{fmt}") != digest:
                stale.append(f"{name}.{fmt}")
    assert not stale, f"committed figures differ from what the code draws (run `make figures`): {stale}"


def test_figures_command_writes_every_listed_figure(tmp_path):
    """`python -m identkit figures --quick` writes a PNG and a PDF for every listed figure.

    Trained models are cached (identkit.neural.train.cache_dir), so the notebooks that run after this test
    reuse them instead of training again.
    """
    import os
    import subprocess
    import sys

    env = dict(os.environ, IDENTKIT_QUICK="1")
    out = subprocess.run([sys.executable, "-m", "identkit", "figures", "--quick", "--outdir", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    written = {p.name for p in tmp_path.iterdir()}
    expected = {f"{n}.{ext}" for n in figures.names() for ext in ("png", "pdf")}
    assert expected <= written, f"missing: {sorted(expected - written)}"
    manifest = figures.read_manifest(tmp_path)
    assert set(manifest["figures"]) == set(figures.names())
    assert all(entry["mode"] == "quick" for entry in manifest["figures"].values())
