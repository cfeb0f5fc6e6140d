# Two commands: `make book` builds the site, `make test` runs the tests.
# Everything lives in a project-local virtual environment (.venv); targets are idempotent.

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
MATHJAX := .cache/mathjax/node_modules/mathjax/es5/tex-chtml.js
PROFILE ?= default

.PHONY: venv book reproduce site test test-fast browser mathjax clean

venv: $(STAMP)

# Reinstalls only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	$(PY) -m ipykernel install --sys-prefix --name minima --display-name "minima (.venv)"
	touch $(STAMP)

mathjax: $(MATHJAX)

$(MATHJAX):
	mkdir -p .cache/mathjax
	npm install --no-save --no-audit --no-fund --prefix .cache/mathjax mathjax@3

# Headless Chromium for the browser test; installed only when missing and apt is usable.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	      || echo "note: could not install chromium; the browser test will be skipped with a reason"; \
	    else echo "note: chromium missing and apt-get unavailable (not root?); the browser test will be skipped"; fi; }

# Run every notebook under $(PROFILE), then build the site.
reproduce: venv mathjax
	$(PY) -m minima run --profile $(PROFILE)
	$(PY) -m minima book

book: reproduce

# Build the site from what book/generated already holds (no execution).
site: venv mathjax
	$(PY) -m minima book

test: venv mathjax browser
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

test-fast: venv
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf _build book/generated book/_extra book/_static/plotly.min.js .runs
