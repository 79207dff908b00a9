# Multimedia Gen backend — the front door. `make help` lists the targets.
# Needs only Python 3.11: uv is installed with pip when it is missing.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
PYTEST_ARGS ?=
# Every member's source root, checked as one program (each alone would see the others as
# untyped installed packages and miss the errors between them).
SRC_DIRS := $(wildcard libs/*/src) cli/src verifier/src $(wildcard services/*/src)
empty :=
space := $(empty) $(empty)
MYPY_PATH := $(subst $(space),:,$(SRC_DIRS))
UP_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help uv install up up-detach demo down status test test-containers lint fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check --user uv

install: uv ## install every workspace member and the dev tools from the lock file
	$(UV) sync --all-packages --locked

up: install ## run the local stack in the foreground; Ctrl-C stops it (UP_ARGS=--demo: with demo data)
	$(UV) run --no-sync mmgen up $(UP_ARGS)

up-detach: install ## start the local stack in the background
	$(UV) run --no-sync mmgen up --detach $(UP_ARGS)

demo: uv ## seed the demo data set into the running stack (idempotent) and print its accounts
	$(UV) run --no-sync mmgen demo

down: uv ## stop what `make up` / `make up-detach` started
	$(UV) run --no-sync mmgen down

status: uv ## show the local stack's components and whether each answers
	$(UV) run --no-sync mmgen status

test: install ## run the whole test suite against a real local broker and database
	$(UV) run --no-sync pytest $(PYTEST_ARGS)

test-containers: install ## the same suite against real Kafka and MongoDB (needs Docker)
	$(UV) run --no-sync pytest --backend=containers $(PYTEST_ARGS)

lint: install ## ruff (lint + format check), mypy, and the import-layer contracts
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	MYPYPATH=$(MYPY_PATH) $(UV) run --no-sync mypy $(SRC_DIRS)
	$(UV) run --no-sync lint-imports

fmt: install ## format and autofix
	$(UV) run --no-sync ruff format .
	$(UV) run --no-sync ruff check --fix .

bench: install ## run the benchmarks in bench/ and record their results
	for script in bench/bench_*.py; do $(UV) run --no-sync python $$script || exit 1; done

clean: ## remove caches (keeps .mmgen local state; `mmgen reset --yes` wipes that)
	rm -rf .pytest_cache .mypy_cache .ruff_cache
