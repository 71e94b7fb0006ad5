# Two commands do all set-up on a fresh machine: `make bench` and `make test`.
PYTHON ?= python3
TORCH ?= auto
DEV ?= 0
VENV := .venv
BIN := $(VENV)/bin
# mypy's cache lives beside pip's and uv's, so a fresh clone type-checks in seconds, not half a minute of both
# cores: mypy checks each file's hash against it (what changed is checked again). `.mypy_cache` without a home.
CACHE_HOME := $(or $(XDG_CACHE_HOME),$(if $(HOME),$(HOME)/.cache))
export MYPY_CACHE_DIR ?= $(if $(CACHE_HOME),$(CACHE_HOME)/chipbench/mypy,.mypy_cache)
SUITE ?= default
# CASES narrows a run to some benchmarks (e.g. CASES="llama.train_step dlrm.inference"); empty = the whole suite.
CASES ?=

.PHONY: setup bench smoke test test-fast test-durations lint quick-lint format calibrate clean pytest-bench gpu-check peers

setup:
	@TORCH=$(TORCH) PYTHON=$(PYTHON) VENV=$(VENV) DEV=$(DEV) bash scripts/setup.sh

bench: setup
	$(BIN)/chipbench run $(CASES) --suite $(SUITE)

smoke: setup
	$(BIN)/chipbench run $(CASES) --suite smoke

calibrate: setup
	$(BIN)/chipbench calibrate

# The first run on a GPU (scripts/gpu-check.sh): OUT=folder for its results and log.
OUT ?= gpu-check
gpu-check:
	bash scripts/gpu-check.sh $(OUT)

lint: DEV = 1
lint: setup quick-lint
	$(BIN)/mypy

# The lint checks of a second or so: style, formatting, the layer contracts.
quick-lint: DEV = 1
quick-lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-logo

# Tests run on JOBS processes (pytest-xdist), longest first by tests/durations.json (tests/schedule.py).
# mypy (half a minute with no cache) type-checks beside them, in the cores' idle moments; its verdict is
# printed after. Two on two cores: a third gained nothing on a fresh clone of cpu-amd-epyc-2c-avx2
# (pytest 427 s, 412 s with two).
JOBS ?= 2
PYTEST_JOBS = -n $(JOBS) --dist loadgroup
test: DEV = 1
test: setup quick-lint
	@mkdir -p .cache && ($(BIN)/mypy > .cache/mypy.log 2>&1; echo $$? > .cache/mypy.rc) & \
	$(BIN)/python -m pytest -q $(PYTEST_JOBS) tests/e2e tests/unit benchmarks --benchmark-disable; \
	t=$$?; wait; cat .cache/mypy.log; m=$$(cat .cache/mypy.rc); \
	[ "$$m" = 0 ] || { echo "make test: mypy failed (exit $$m)"; exit 1; }; exit $$t

# The unit tests alone: in-process, a minute or so.
test-fast: DEV = 1
test-fast: setup
	$(BIN)/python -m pytest -q $(PYTEST_JOBS) tests/unit

# Record each test's seconds again (tests/durations.json: the order `make test` hands them out in).
test-durations: DEV = 1
test-durations: setup
	CHIPBENCH_RECORD_DURATIONS=1 $(BIN)/python -m pytest -q $(PYTEST_JOBS) tests/e2e tests/unit benchmarks \
	  --benchmark-disable

# The public peers of the performance goals (benchmarks/llama_peer.py): transformers, pinned in pyproject.
peers: setup
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[dev,peers]"

# The pytest-benchmark front door (same workloads as `chipbench run`); saves under .benchmarks/.
pytest-bench: setup
	$(BIN)/python -m pytest benchmarks --benchmark-autosave

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
