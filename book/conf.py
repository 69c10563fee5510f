"""Sphinx configuration of the identkit book: every lesson and solution rendered from its committed outputs.

Built by ``make book`` (``sphinx-build -W -c book . build/book``): the source folder is the repository root, so the
notebooks stay where the lessons are (``notebooks/``) and the book's own pages live in ``book/``. Nothing is
executed (``nb_execution_mode = "off"``): the pages show exactly the outputs that are committed and that nbval
checks. Mathematics is rendered by a local MathJax 2 (Debian's ``libjs-mathjax``, or the folder named by
``IDENTKIT_MATHJAX``), copied into the site, so the book opens offline.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import identkit  # noqa: E402

project = "identkit"
author = "identkit developers"
copyright = "2026, identkit developers"
release = version = identkit.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
root_doc = "book/index"
include_patterns = ["book/*.md", "notebooks/*.ipynb", "notebooks/solutions/*.ipynb"]
exclude_patterns = ["build", ".venv", "**/.ipynb_checkpoints"]

# Notebooks: committed outputs only; myst's $...$ and $$...$$ for the lessons' mathematics.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_merge_streams = True

# The API pages: numpy-style docstrings, the members each module lists in __all__.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []


def _mathjax_source() -> Path:
    """The local MathJax 2 folder: ``IDENTKIT_MATHJAX`` if set, else Debian's ``libjs-mathjax``."""
    folder = Path(os.environ.get("IDENTKIT_MATHJAX", "/usr/share/javascript/mathjax"))
    if not (folder / "MathJax.js").is_file():
        raise FileNotFoundError(
            f"no MathJax 2 at {folder}: run 'sudo apt-get install libjs-mathjax' (make book does it where apt "
            "exists) or set IDENTKIT_MATHJAX to a MathJax 2.7 folder (one holding MathJax.js)")
    return folder


# MathJax 2, SVG output (its TeX fonts are JavaScript, so no web font is needed), from the site's own _static.
MATHJAX_PARTS = ["MathJax.js", "config/TeX-AMS_SVG.js", "extensions", "jax/input/TeX", "jax/element",
                 "jax/output/SVG/jax.js", "jax/output/SVG/config.js", "jax/output/SVG/autoload",
                 "jax/output/SVG/fonts/TeX"]
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS_SVG"
mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                               "processEscapes": True, "processEnvironments": True,
                               # myst marks its pages tex2jax_ignore and its formulas class "math"
                               "ignoreClass": "tex2jax_ignore|mathjax_ignore", "processClass": "math"},
                   "SVG": {"font": "TeX"}, "messageStyle": "none"}

html_theme = "sphinx_book_theme"
html_title = "identkit: posterior collapse as non-identifiability"
html_static_path: list[str] = []
html_extra_path = ["_extra"]  # build/book/index.html, a redirect to the book's first page
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "use_fullscreen_button": False,
                      "home_page_in_toc": True}
html_show_sourcelink = False
html_last_updated_fmt = None
suppress_warnings: list[str] = []


def _copy_mathjax(app, exception) -> None:
    """Copy the parts of MathJax the pages load into ``_static/mathjax`` of the built site."""
    if exception is not None or app.builder.format != "html":
        return
    src = _mathjax_source()
    dest = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        target = dest / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if (src / part).is_dir():
            shutil.copytree(src / part, target, dirs_exist_ok=True)
        else:
            shutil.copy2(src / part, target)


def _constant_doc(package: str, name: str) -> tuple[str, str]:
    """The ``#:`` doc comment of constant ``name`` of ``package`` and the module that defines it."""
    import importlib
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    pkg = importlib.import_module(package)
    modules = [package] + [m.name for m in pkgutil.iter_modules(getattr(pkg, "__path__", []), package + ".")]
    for modname in modules:
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # a module without source (compiled); nothing to read
            continue
        if ("", name) in docs:
            return " ".join(line.strip() for line in docs[("", name)] if line.strip()), modname
    for modname in modules:  # defined without a doc comment: name the module
        if name in vars(importlib.import_module(modname)) and modname != package:
            return "", modname
    return "", package


class ConstantsDirective(SphinxDirective):
    """``.. identkit-constants:: identkit.data``: every constant of the package's ``__all__`` (what autodoc's
    ``:imported-members:`` leaves out), with its value, shortened, and its doc comment from the defining module."""

    required_arguments = 1

    def run(self):
        import importlib
        import inspect

        package = self.arguments[0]
        pkg = importlib.import_module(package)
        documented = self.env.get_domain("py").objects  # what autodoc wrote above this directive
        lines: list[str] = []
        for name in getattr(pkg, "__all__", []):
            obj = getattr(pkg, name)
            if (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)
                    or f"{package}.{name}" in documented):
                continue
            doc, modname = _constant_doc(package, name)
            value = repr(obj)
            value = value if len(value) <= 100 else value[:97] + "..."
            lines += [f".. py:data:: {name}", f"   :module: {package}", f"   :value: {value}", "",
                      f"   {doc} (``{modname}``)" if doc else f"   Defined in ``{modname}``.", ""]
        return self.parse_text_to_nodes("\n".join(lines)) if lines else []


_LITERAL = re.compile(r"(``.*?``)")


def _escape_bars(app, what, name, obj, options, lines) -> None:
    """The docstrings write absolute values and determinants as |x| in plain text: keep them from being read as
    reStructuredText substitutions (outside ``literals`` and line blocks)."""
    for i, line in enumerate(lines):
        if "|" in line and not line.lstrip().startswith("|"):
            lines[i] = "".join(part if part.startswith("``") else part.replace("|", r"\|")
                               for part in _LITERAL.split(line))


def setup(app):
    _mathjax_source()  # fail before the build, not after it
    app.connect("autodoc-process-docstring", _escape_bars)
    app.add_directive("identkit-constants", ConstantsDirective)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True}
