# identkit: two commands.
#   make figures   regenerate every figure into figures/ (PNG + PDF)
#   make test      run every test: unit tests and the notebooks under nbval (quick mode)
#   make book      render the lessons and solutions (committed outputs) and the API reference: build/book/index.html
# All create .venv on first use (idempotent). Other targets: notebooks, benchmark, data, book-deps, clean.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.identkit-installed
PIPQ   := $(BIN)/python -m pip install --quiet --disable-pip-version-check
export PYTHONHASHSEED := 0

.PHONY: figures test notebooks benchmark data book book-deps venv clean

venv: $(STAMP)

# torch==2.13.0 is a CPU wheel that lies on disk here; installing it first keeps the package's torch range
# from pulling a multi-GB CUDA build. Where a torch is already importable, it is kept.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(PIPQ) "torch==2.13.0"
	$(PIPQ) -e ".[test,notebook,book,approx]"
	@touch $@

FMNIST_DIR   := /usr/share/datasets/fashion-mnist
FORTUNES_DIR := /usr/share/games/fortunes

# Real data, offline, from Debian packages where apt exists (each skipped when present):
#   Fashion-MNIST: dataset-fashion-mnist (MIT licence, 31 MB);
#   text: fortunes (≈ 15 000 short texts in 43 categories, 2.6 MB). Its `science` file is tested, not the
#   folder: fortunes-min alone makes the folder with only 3 of the categories.
data:
	@if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ] || [ -n "$$IDENTKIT_FASHION_MNIST" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; \
	else echo "Fashion-MNIST not found: run 'sudo apt-get install dataset-fashion-mnist' or set IDENTKIT_FASHION_MNIST"; fi
	@if [ -f $(FORTUNES_DIR)/science ] || [ -n "$$IDENTKIT_FORTUNES" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fortunes >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fortunes >/dev/null; }; \
	else echo "fortunes not found: run 'sudo apt-get install fortunes' or set IDENTKIT_FORTUNES"; fi

# The book's offline tools, from Debian packages where apt exists (each skipped when present): MathJax 2
# (libjs-mathjax, for the formulas; or set IDENTKIT_MATHJAX to a MathJax 2.7 folder) and Chromium (chromium,
# the headless browser of the book's rendering test; the test is skipped without it).
MATHJAX_DIR := /usr/share/javascript/mathjax
book-deps:
	@if [ -f $(MATHJAX_DIR)/MathJax.js ] || [ -n "$$IDENTKIT_MATHJAX" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjs-mathjax >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjs-mathjax >/dev/null; }; \
	else echo "MathJax not found: run 'sudo apt-get install libjs-mathjax' or set IDENTKIT_MATHJAX"; fi
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$IDENTKIT_BROWSER" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; \
	else echo "Chromium not found: the book's browser test will be skipped ('sudo apt-get install chromium')"; fi

# Nothing is executed: the pages show the committed outputs (make notebooks refreshes them). Warnings are errors.
book: $(STAMP) book-deps
	$(BIN)/sphinx-build -W --keep-going -q -b html -c book . build/book
	@echo "The book: build/book/index.html (open it in a browser, or: $(BIN)/python -m http.server -d build/book)"

figures: $(STAMP) data
	$(BIN)/python -m identkit figures $(if $(QUICK),--quick,)

# Tests run on every core (pytest-xdist; --dist loadscope keeps each notebook's cells, in order, on one worker),
# one torch/BLAS thread per worker so that the workers do not oversubscribe the cores.
TEST_WORKERS ?= auto
test: $(STAMP) data book-deps
	IDENTKIT_QUICK=1 IDENTKIT_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval_sanitize.cfg --nbval-cell-timeout 900 \
		-n $(TEST_WORKERS) --dist loadscope --durations=15 $(PYTEST_ARGS)

# Re-execute every notebook in place (full mode) so the committed outputs are current.
notebooks: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py notebooks/*.ipynb notebooks/solutions/*.ipynb

benchmark: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
