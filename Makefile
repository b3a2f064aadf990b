# Each target creates the environment first when it is missing (python3 -m venv + pip).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: solve test test-fast lint docs docs-serve clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch 2.13.0 (CPU build where a local wheel is provided); any torch >= 2.1 works.
	$(BIN)/python -m pip install --quiet torch==2.13.0 || $(BIN)/python -m pip install --quiet "torch>=2.1"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## The main job: solve poisson-sine with the shipped recipe, print its errors, write runs/poisson-sine.h5
solve: $(STAMP)
	$(BIN)/pinnlab solve poisson-sine --out runs/poisson-sine.h5

## The whole test suite, slow tests (wheel install, doc snippets, recipe digests) included: what CI runs (~20 min; PINNLAB_HEAVY=1 adds the d = 100,000 recipes: digests and two-step runs)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## The fast tests only (~1 min)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## The documentation site, built strictly into site/ (a broken link, anchor or API reference fails)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## The site served at http://127.0.0.1:8000 while you edit the pages
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs dist build site
