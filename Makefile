# intima-classifier: every entry point in one place. `make serve` and `make test` are the two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint data-check data-split train bench image-test install-serve install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# serving set only: onnxruntime, tokenizers, numpy, fastapi, uvicorn, ... (no torch)
$(VENV)/.serve-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# everything: training (torch 2.13.0 CPU), reports, test and lint tools
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[train,report,dev]'
	touch $@ $(VENV)/.serve-installed

install-serve: $(VENV)/.serve-installed
install-dev: $(VENV)/.dev-installed

## run the service on the shipped model (http://127.0.0.1:8000, docs at /docs)
serve: install-serve
	$(BIN)/intima serve --host $(HOST) --port $(PORT)

## lint, corpus check and the test suite
test: install-dev
	$(OFFLINE) $(BIN)/intima data check
	@$(OFFLINE) $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo 'pytest collected no tests' >&2; exit 1; fi; exit $$rc

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy serve

data-check: install-dev
	$(BIN)/intima data check

data-split: install-dev
	$(BIN)/intima data split

## full training run from scratch (about 42 minutes on a 2-core CPU); writes models/<version>/
train: install-dev
	$(OFFLINE) $(BIN)/intima train $(TRAIN_ARGS)

bench: install-dev
	$(OFFLINE) $(BIN)/python scripts/bench.py $(BENCH_ARGS)

image-test: install-dev
	bash scripts/image_test.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
