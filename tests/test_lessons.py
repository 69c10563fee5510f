"""The course frame of the lessons: each opens with what a lecturer needs, links the notation and glossary pages,
and (but the recap) has exercises with a solutions notebook."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HEADER_FIELDS = ("Learning objectives", "Prerequisites", "Class time", "Compute time")


def _markdown(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def test_the_lessons_are_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(LESSONS) + 1)), numbers
    assert len(LESSONS) >= 10


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_each_lesson_opens_with_the_lecturers_header(lesson):
    """Objectives, prerequisites, class time and compute time in the first cell, before any code."""
    nb = json.loads(lesson.read_text())
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert first.startswith(f"# {lesson.name[:2]} · "), first[:60]
    for field in HEADER_FIELDS:
        assert f"**{field}" in first, f"{lesson.name}: no '{field}' in the first cell"
    objectives = first.split("**Learning objectives")[1].split("**Prerequisites")[0]
    assert len(re.findall(r"^\s*[-*\d.]+\s", objectives, flags=re.M)) >= 3, "fewer than 3 objectives"
    assert not re.search(r"lesson \d+ of \d+", first), "a stale lesson count"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_each_lesson_links_the_notation_and_the_glossary(lesson):
    text = "\n".join(_markdown(lesson))
    for page in ("notation", "glossary"):
        link = f"../book/{page}.md"
        assert link in text, f"{lesson.name} does not link {link}"
        assert (ROOT / "book" / f"{page}.md").is_file()


@pytest.mark.parametrize("lesson", [p for p in LESSONS if "recap" not in p.name], ids=lambda p: p.stem)
def test_each_lesson_has_exercises_and_their_solutions(lesson):
    assert any(re.search(r"^#+ .*Exercises", md, flags=re.M) for md in _markdown(lesson)), f"{lesson.name}: no Exercises section"
    solutions = ROOT / "notebooks" / "solutions" / f"{lesson.stem}_solutions.ipynb"
    assert solutions.is_file(), f"no {solutions.relative_to(ROOT)}"


@pytest.fixture(scope="module")
def tool():
    """tools/execute_notebooks.py, loaded once (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "tools" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_each_lessons_compute_time_is_the_measured_one(lesson, tool):
    """The header's compute time is what the committed results/notebook_times.json recorded for a full-mode run
    (``tools/execute_notebooks.py --headers`` writes it), so it cannot drift from the measurement."""
    times = json.loads(tool.TIMES.read_text())
    entry = times.get(lesson.stem)
    if tool.has_code(lesson):
        assert entry is not None, f"{lesson.name}: no measured run in {tool.TIMES.name}"
        assert not entry["first"]["quick"], f"{lesson.name}: the recorded first run is in quick mode"
        assert entry["first"]["new_models"] == 0 or "cached" in entry, f"{lesson.name}: trains, but no cached run"
    else:
        assert entry is None
    first = json.loads(lesson.read_text())["cells"][0]["source"]
    assert tool.compute_time_paragraph(entry) in "".join(first), (
        f"{lesson.name}: stale compute time; run `python tools/execute_notebooks.py --headers "
        f"results/notebook_times.json notebooks/{lesson.name}`")


def test_the_compute_time_paragraph_says_what_was_measured(tool):
    base = {"quick": False, "threads": 2, "cpus": 2, "date": "2026-12-07", "load_before": 0.1}
    exact = tool.compute_time_paragraph({"first": {**base, "seconds": 41.2, "new_models": 0}})
    assert "41 s in full mode, the same on every run" in exact and "2 CPU cores, 2026-12-07" in exact
    trains = tool.compute_time_paragraph({"first": {**base, "seconds": 754.0, "new_models": 3},
                                          "cached": {**base, "seconds": 95.0, "new_models": 0}})
    assert "13 minutes in full mode on the first run, which trains 3 models" in trains
    assert "1.6 minutes once cached" in trains
    assert tool.compute_time_paragraph(None) == "**Compute time.** None (no code)."
    with pytest.raises(ValueError, match="cached"):
        tool.compute_time_paragraph({"first": {**base, "seconds": 754.0, "new_models": 3}})
