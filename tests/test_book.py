"""The web book (``make book``): it builds offline with no warning, every lesson and solution is a page showing every
figure its notebook shows, the API page documents every public name, and a real browser renders the formulas.

The build runs once per module (about 30 s), from the committed notebooks, into a temporary folder. It needs the
``[book]`` extra and a local MathJax 2 (``make book-deps``); the browser test needs Chromium and is skipped, with
the reason, where there is none.
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the book's tools are the [book] extra: pip install -e '.[book]' (make test does)")
pytest.importorskip("myst_nb", reason="the book's tools are the [book] extra: pip install -e '.[book]' (make test does)")

import identkit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
MATHJAX = Path(os.environ.get("IDENTKIT_MATHJAX", "/usr/share/javascript/mathjax"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """Build the book as ``make book`` does, warnings to a file; return (html folder, return code, warnings)."""
    if not (MATHJAX / "MathJax.js").is_file():
        pytest.skip(f"no MathJax 2 at {MATHJAX}: make book-deps (apt: libjs-mathjax) or set IDENTKIT_MATHJAX")
    out = tmp_path_factory.mktemp("book")
    warnings = out / "warnings.txt"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT / "book"), "-q",
                           "-d", str(out / "doctrees"), "-w", str(warnings), str(ROOT), str(out / "html")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    return out / "html", proc.returncode, warnings.read_text() + proc.stderr


def test_book_builds_offline_without_warnings(book):
    html, rc, warnings = book
    assert rc == 0, warnings
    assert warnings.strip() == "", warnings
    assert (html / "index.html").is_file() and "book/index.html" in (html / "index.html").read_text()
    # The formulas load a MathJax inside the site, never one from the internet.
    page = (html / "notebooks" / "01_theorem.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert any(s.startswith("../_static/mathjax/MathJax.js") for s in scripts), scripts
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
    assert (html / "_static" / "mathjax" / "jax" / "output" / "SVG" / "fonts" / "TeX").is_dir()


def test_the_lessons_show_figures():
    """The count below is not vacuous: the lessons (not the solutions) show figures, most of them several."""
    counts = {nb.stem: _figures_shown(nb) for nb in NOTEBOOKS if nb.parent.name == "notebooks"}
    assert sum(c > 0 for c in counts.values()) >= 8, counts


def _figures_shown(notebook: Path) -> int:
    """Images a notebook shows: image outputs of code cells and ``![...](...)`` images of markdown cells."""
    nb = json.loads(notebook.read_text())
    n = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            n += sum(any(t in out.get("data", {}) for t in IMAGE_TYPES) for out in cell.get("outputs", []))
        elif cell["cell_type"] == "markdown":
            n += len(re.findall(r"!\[[^\]]*\]\([^)]+\)", "".join(cell["source"])))
    return n


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_lesson_page_shows_every_figure(book, notebook):
    html, rc, _ = book
    page = html / notebook.relative_to(ROOT).with_suffix(".html")
    assert page.is_file(), f"no page for {notebook.name}"
    images = re.findall(r'<img[^>]*src="([^"]+)"', page.read_text())
    shown = _figures_shown(notebook)
    assert len(images) == shown, (notebook.name, len(images), shown)
    for src in images:
        f = (page.parent / src).resolve()
        assert f.is_file() and f.stat().st_size > 1000, f"{page.name}: image {src} missing or empty"


class _Text(HTMLParser):
    """The prose of a page: text outside code, preformatted output, scripts and formulas."""

    SKIP = {"pre", "code", "script", "style"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        skip = tag in self.SKIP or "math" in cls.split() or (self.stack and self.stack[-1])
        if tag not in {"br", "img", "hr", "meta", "link", "input", "col", "source", "wbr"}:
            self.stack.append(bool(skip))

    def handle_endtag(self, tag):
        if self.stack and tag not in {"br", "img", "hr", "meta", "link", "input", "col", "source", "wbr"}:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.text.append(data)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_tex_left_in_the_prose(book, notebook):
    """Every $…$ and $$…$$ of a lesson became a formula: no dollar sign or TeX command is left in its prose."""
    html, _, _ = book
    parser = _Text()
    parser.feed((html / notebook.relative_to(ROOT).with_suffix(".html")).read_text())
    prose = "".join(parser.text)
    assert "$" not in prose, re.findall(r".{0,60}\$.{0,60}", prose)[:3]
    assert not re.search(r"\\(frac|mathbb|mathcal|mid|theta|sum|int)\b", prose), re.findall(r".{0,40}\\\w+.{0,40}", prose)[:3]


def _public_modules() -> list[str]:
    """identkit's subpackages and modules that export names through ``__all__``."""
    return sorted(m.name for m in pkgutil.iter_modules(identkit.__path__, "identkit.")
                  if not m.name.rsplit(".", 1)[1].startswith("_")
                  and hasattr(importlib.import_module(m.name), "__all__"))


def test_api_page_documents_every_public_name(book):
    html, _, _ = book
    page = (html / "book" / "api.html").read_text()
    ids = set(re.findall(r'id="(identkit[\w.]*)"', page))
    assert "config" in identkit.__all__
    assert not [m for m in _public_modules() if f'id="module-{m}"' not in page], "a public module has no section"
    missing = [f"{mod}.{name}" for mod in _public_modules() for name in importlib.import_module(mod).__all__
               if not name.startswith("__") and f"{mod}.{name}" not in ids]
    assert not missing, f"not on the API page: {missing}"


def _browser() -> str | None:
    for name in (os.environ.get("IDENTKIT_BROWSER"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--virtual-time-budget=30000", "--window-size=1200,1400"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


def test_a_browser_renders_the_formulas(book, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium here: make book-deps (apt: chromium) or set IDENTKIT_BROWSER")
    html, _, _ = book
    page = html / "notebooks" / "01_theorem.html"
    n_math = len(re.findall(r'class="math notranslate nohighlight"', page.read_text()))
    assert n_math > 10
    dom = _chromium(browser, "--dump-dom", page.as_uri()).stdout
    frames = re.findall(r'id="MathJax-Element-\d+-Frame"', dom)
    assert len(frames) >= n_math, f"MathJax typeset {len(frames)} of {n_math} formulas"
    body = re.sub(r"<script.*?</script>|<style.*?</style>", "", dom, flags=re.S)
    assert "merror" not in body and "Math Processing Error" not in body
    assert "\\(" not in body and "\\theta" not in body, "raw TeX is left on the page"
    # The screenshot: the page as a reader sees it differs from the same page without MathJax (raw TeX). It is kept
    # beside the test's build (the path is printed on failure) for a person to look at.
    rendered, raw = tmp_path / "rendered.png", tmp_path / "raw.png"
    _chromium(browser, f"--screenshot={rendered}", page.as_uri())
    without = page.with_name("01_theorem_without_mathjax.html")  # the same page, its MathJax script removed
    without.write_text(re.sub(r'<script[^>]*src="[^"]*MathJax\.js[^"]*"></script>', "", page.read_text()))
    _chromium(browser, f"--screenshot={raw}", without.as_uri())
    assert rendered.stat().st_size > 20_000 and raw.stat().st_size > 20_000
    assert rendered.read_bytes() != raw.read_bytes()
