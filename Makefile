# Every target sets up .venv on first use (needs python3 >= 3.10 with venv).
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= all,test,bench,demo,embeddings
# The embeddings extra needs torch; pin the CPU build first, or pip pulls a multi-GB CUDA one.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
# Backends shipped as separate packages, each installed on top of nbinfra and tested by `make test`.
PLUGINS := plugins/nbinfra-memcached plugins/nbinfra-milvus plugins/nbinfra-cohere

.PHONY: install test lint typecheck clean bench bench-smoke demo lab nbval

$(STAMP): pyproject.toml $(PLUGINS:%=%/pyproject.toml)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(findstring embeddings,$(EXTRAS)),$(PY) -m pip install --quiet "$(TORCH)")
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(PY) -m pip install --quiet $(PLUGINS:%=-e %)
	touch $@

install: $(STAMP)

## test: lint, type-check, the whole test suite, then every notebook under nbval
test: lint typecheck
	$(PY) -m pytest
	$(MAKE) nbval

## nbval: execute every notebook in notebooks/ and compare with the committed outputs
## (nbinfra's progress display off, so the outputs do not depend on the machine's speed)
nbval: $(STAMP)
	NBINFRA_PROGRESS=off $(PY) -m pytest --nbval notebooks --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval-sanitize.cfg -p no:cacheprovider -q

## demo: run the quickstart headlessly, offline; the executed copy lands in test-artifacts/
demo: $(STAMP)
	JUPYTER_PREFER_ENV_PATH=1 $(PY) -m jupyter nbconvert --to notebook --execute \
		notebooks/01_quickstart.ipynb --output-dir test-artifacts/demo --ExecutePreprocessor.timeout=600 --log-level=WARN
	@echo "Executed quickstart: test-artifacts/demo/01_quickstart.ipynb (open it with: make lab)"

## lab: JupyterLab on notebooks/
lab: $(STAMP)
	JUPYTER_PREFER_ENV_PATH=1 $(PY) -m jupyter lab --notebook-dir=notebooks

lint: $(STAMP)
	$(PY) -m ruff check nbinfra tests benchmarks plugins
	$(PY) -m ruff format --check nbinfra tests benchmarks plugins

typecheck: $(STAMP)
	$(PY) -m mypy
	$(PY) -m mypy $(PLUGINS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .nbinfra

## bench: every side-by-side comparison at full size -> benchmarks/RESULTS.md (+ plots/)
## (jupyter-ai is installed once into a side venv under ~/.cache/nbinfra-bench)
bench: $(STAMP)
	$(PY) -m benchmarks

## bench-smoke: tiny sizes, nothing judged (the test suite runs this too)
bench-smoke: $(STAMP)
	$(PY) -m benchmarks --smoke
