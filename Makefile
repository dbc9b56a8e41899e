# Every target sets up .venv on first use (needs python3 >= 3.10 with venv).
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= all,test,bench,embeddings
# The embeddings extra needs torch; pin the CPU build first, or pip pulls a multi-GB CUDA one.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck clean bench bench-smoke

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(findstring embeddings,$(EXTRAS)),$(PY) -m pip install --quiet "$(TORCH)")
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

## test: lint, type-check and run the whole test suite
test: lint typecheck
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check nbinfra tests benchmarks
	$(PY) -m ruff format --check nbinfra tests benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .nbinfra

## bench: every side-by-side comparison at full size -> benchmarks/RESULTS.md (+ plots/)
## (jupyter-ai is installed once into a side venv under ~/.cache/nbinfra-bench)
bench: $(STAMP)
	$(PY) -m benchmarks

## bench-smoke: tiny sizes, nothing judged (the test suite runs this too)
bench-smoke: $(STAMP)
	$(PY) -m benchmarks --smoke
