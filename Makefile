# Two entry points: `make reproduce` (the main job) and `make test`. Both create and fill the
# virtual environment .venv when it is missing or the requirements changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCALE ?= quick

.PHONY: venv test test-fast reproduce benchmark clean

$(STAMP): requirements.txt requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and alone, so pip takes the CPU wheel rather than a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt -c requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q
	$(BIN)/python -m pytest -m slow -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

reproduce: $(STAMP)
	$(BIN)/python workflow/scripts/run_local.py --config config/config.yaml --config config/$(SCALE).yaml

benchmark: $(STAMP)
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/data_generation.py

clean:
	rm -rf $(VENV) .pytest_cache
