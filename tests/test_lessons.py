"""The course frame of the lessons: each opens with what a lecturer needs, links the notation and glossary pages,
and (but the recap) has exercises with a solutions notebook."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HEADER_FIELDS = ("Learning objectives", "Prerequisites", "Class time")


def _markdown(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def test_the_lessons_are_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(LESSONS) + 1)), numbers
    assert len(LESSONS) >= 10


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_each_lesson_opens_with_the_lecturers_header(lesson):
    """Objectives, prerequisites and class time in the first cell, before any code; a compute time, where given,
    states a measurement."""
    nb = json.loads(lesson.read_text())
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert first.startswith(f"# {lesson.name[:2]} · "), first[:60]
    for field in HEADER_FIELDS:
        assert f"**{field}" in first, f"{lesson.name}: no '{field}' in the first cell"
    objectives = first.split("**Learning objectives")[1].split("**Prerequisites")[0]
    assert len(re.findall(r"^\s*[-*\d.]+\s", objectives, flags=re.M)) >= 3, "fewer than 3 objectives"
    if "**Compute time" in first:
        compute = first.split("**Compute time")[1].split("\n\n")[0]
        assert re.search(r"\d|none", compute), f"{lesson.name}: compute time without a measurement: {compute!r}"
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
