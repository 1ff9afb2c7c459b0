# Two entry points: `make reproduce` (the main job) and `make test`. Both create and fill the
# virtual environment .venv when it is missing or the requirements changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCALE ?= quick
PROFILE ?= default
# Extra config overlays after the scale's file (later files win), e.g. OVERLAY=my_overlay.yaml.
OVERLAY ?=
CONFIGS = config/config.yaml config/$(SCALE).yaml $(OVERLAY)
# --workflow-profile none: only profiles/$(PROFILE) applies (else Snakemake adds profiles/default on top).
# Targets go before --configfile, which takes every file name that follows it.
SNAKEMAKE = $(BIN)/snakemake --profile profiles/$(PROFILE) --workflow-profile none
CONFIG_ARGS = --configfile $(CONFIGS)
# The configs checked by the project's own loader first: exit 2 with its message (file, line, key).
RUN_TARGETS = $(BIN)/python workflow/scripts/run_targets.py $(addprefix --config ,$(CONFIGS))
CHECK_CONFIG = $(RUN_TARGETS) > /dev/null
CHECK_SCALE = test -f config/$(SCALE).yaml || { echo "SCALE=$(SCALE): no config/$(SCALE).yaml; scales: smoke, quick, paper (or a file you add)"; exit 2; }
# A Snakemake killed with SIGKILL leaves its lock: removed (snakemake --unlock) when no Snakemake of
# this folder runs any more, so the same command resumes (workflow/scripts/lock_is_stale.py).
UNLOCK_STALE = if $(BIN)/python workflow/scripts/lock_is_stale.py; then $(SNAKEMAKE) --unlock $(CONFIG_ARGS); fi
# The report is built in results/{scale}/report (Snakemake deletes a rule's outputs before it reruns
# the rule); once report.html is made there it replaces reports/{scale} in one atomic step.
PUBLISH = $(BIN)/python workflow/scripts/publish_report.py $(addprefix --config ,$(CONFIGS))

.PHONY: venv test test-fast reproduce pipeline runs smoke-from-scratch refresh-smoke-reference benchmark paper-report clean

$(STAMP): requirements.txt requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and alone, so pip takes the CPU wheel rather than a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt -c requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# Import rules, fast tests, then the smoke pipeline from scratch, then its metric regression and the slow checks;
# the SLURM cluster tests come last: once SLURM is installed but stopped, the SLURM executor plugin
# makes every Snakemake start wait about 9 s for `scontrol`, which would slow the other tests down.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not slow and not regression" -q
	$(MAKE) smoke-from-scratch
	$(BIN)/python -m pytest -m "slow or regression" -q --durations=8 --ignore=tests/cluster
	$(BIN)/python -m pytest -m "slow" -q --durations=5 -rP tests/cluster

test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not slow and not regression" -q

# The main job: the whole workflow at SCALE (smoke | quick | paper) with PROFILE (default | slurm).
reproduce: pipeline

pipeline: $(STAMP)
	@$(CHECK_SCALE)
	@$(CHECK_CONFIG)
	@$(UNLOCK_STALE)
	$(SNAKEMAKE) $(CONFIG_ARGS)
	staging=$$($(PUBLISH) --print-staging) && \
	$(SNAKEMAKE) --report $$staging/report.html $(CONFIG_ARGS)
	$(PUBLISH)

# The runs of one experiment (EXPERIMENT=name; several: EXPERIMENT="a b") without the report,
# which waits for every experiment of the scale.
runs: $(STAMP)
	@test -n "$(EXPERIMENT)" || { echo "usage: make runs SCALE=quick EXPERIMENT=multiple_pendulums [OVERLAY=config/e3_script.yaml]"; exit 2; }
	@$(CHECK_SCALE)
	@$(UNLOCK_STALE)
	targets=$$($(RUN_TARGETS) $(addprefix --experiment ,$(EXPERIMENT))) || exit 2; \
	$(SNAKEMAKE) $$targets $(CONFIG_ARGS)

smoke-from-scratch: $(STAMP)
	rm -rf results/smoke logs/smoke
	$(MAKE) pipeline SCALE=smoke PROFILE=default

# The committed smoke report, its reference metrics and dvc.lock's record of pipeline@smoke (DVC's
# own `dvc commit`: the hashes of the code, configs and outputs that made it) move together.
refresh-smoke-reference: smoke-from-scratch
	cp reports/smoke/metrics.json tests/reference/smoke_metrics.json
	$(BIN)/dvc commit --force pipeline@smoke
	@echo "tests/reference/smoke_metrics.json, reports/smoke and dvc.lock refreshed: commit them with the reason the metrics moved"

# The paper scale reported experiment by experiment: the experiments whose every run is in
# results/paper (trained here with `make runs SCALE=paper EXPERIMENT=...`, or on a GPU machine with
# benchmarks/paper_gpu.py and imported from its ARCHIVE: all or nothing, FORCE=1 replaces local run
# folders that differ), the others listed with their projected cost (COST:
# benchmarks/paper_scale_cost.py --json).
PAPER_CONFIGS = --config config/config.yaml --config config/paper.yaml
paper-report: $(STAMP)
	$(if $(ARCHIVE),$(BIN)/python workflow/scripts/import_runs.py --archive $(ARCHIVE) $(PAPER_CONFIGS) $(if $(filter 1 yes true,$(FORCE)),--force))
	$(BIN)/python workflow/scripts/aggregate.py $(PAPER_CONFIGS) --complete-only \
		$(if $(COST),--projected-cost $(COST))

benchmark: $(STAMP)
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/data_generation.py
	$(BIN)/python benchmarks/checkpoint_cost.py

clean:
	rm -rf $(VENV) .pytest_cache
