# hybridrec: `make train` and `make test` are the whole setup on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first and pinned: an unpinned torch pulls a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
# Opt-in: an index of CPU-only torch wheels (e.g. PyTorch's CPU index) for machines without a GPU.
TORCH_INDEX_URL ?=
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-all lint format serve clean bench results notebooks

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv: the pinned CPU torch first, then the package with its dev extra

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION) $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

train: install ## cross-validate and save the default model (extra Hydra overrides: make train ARGS="seed=1")
	$(BIN)/python train.py $(ARGS)

test: install ## run the test suite (slow tests excluded; integration tests need HYBRIDREC_DATA_DIR)
	$(BIN)/python -m pytest $(ARGS)

test-all: install ## run every test, slow ones included
	$(BIN)/python -m pytest -m "" $(ARGS)

lint: install ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove caches and build leftovers (keeps .venv, data and outputs)
	rm -rf .pytest_cache .ruff_cache build dist src/*.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +

serve: install ## serve the newest trained bundle on http://127.0.0.1:8000 (the web page at /, API docs at /docs; ARGS="port=9000")
	$(BIN)/python serve.py $(ARGS)

bench: install ## the training benchmark beside Surprise's SVD (installs the bench extra); benchmarks/results/train.md
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_train.py $(ARGS)

results: install ## run the CV experiments behind RESULTS.md (reuses finished ones) and write RESULTS.md
	$(BIN)/python scripts/results.py $(ARGS)

notebooks: install ## execute the notebooks in place on the real data and the runs under outputs/ (commit them with their outputs)
	$(BIN)/python scripts/notebooks.py
