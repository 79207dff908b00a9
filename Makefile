# Multimedia Gen backend — the front door. `make help` lists the targets.
# Needs only Python 3.11: uv is installed with pip when it is missing.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
PYTEST_ARGS ?=
# `make test` runs test files side by side on pytest-xdist workers, each with a broker and a
# database of its own (README, "Tests"); `PYTEST_XDIST=` runs everything in one process.
PYTEST_XDIST ?= -n 3 --dist loadfile
# Every member's source root, checked as one program (each alone would see the others as
# untyped installed packages and miss the errors between them).
SRC_DIRS := $(wildcard libs/*/src) cli/src verifier/src $(wildcard services/*/src)
empty :=
space := $(empty) $(empty)
MYPY_PATH := $(subst $(space),:,$(SRC_DIRS))
UP_ARGS ?=
# Container images (deploy/docker/Dockerfile, one recipe for every service): name=port, and the
# tag deploy/compose/.env pins, so `make images` builds what deploy/compose runs.
CONTAINER_ENGINE ?= docker
IMAGE_SERVICES := identity=8001 projects=8002 profiles=8003 consent=8004 retention=8005 console=8006 witness=8009
IMAGE_REGISTRY ?= $(shell sed -n 's/^MMGEN_IMAGE_REGISTRY=//p' deploy/compose/.env)
IMAGE_TAG ?= $(shell sed -n 's/^MMGEN_IMAGE_TAG=//p' deploy/compose/.env)

.DEFAULT_GOAL := help
.PHONY: help uv install system-packages up up-detach demo down status test test-containers lint fmt openapi bench images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check --user uv

install: uv ## install every workspace member and the dev tools from the lock file
	$(UV) sync --all-packages --locked

# Debian packages some tests run for real (never downloaded at test time): the console's
# browser tests drive Chromium, the gateway tests run nginx with deploy/gateway's nginx.conf,
# the observability tests check the alert rules with promtool (package prometheus).
CHROMIUM ?= /usr/bin/chromium
SYSTEM_PACKAGES := $(CHROMIUM)=chromium nginx=nginx promtool=prometheus

system-packages: ## install the Debian packages tests run (Chromium, nginx, promtool) that are missing
	@missing=""; for pair in $(SYSTEM_PACKAGES); do tool=$${pair%%=*}; pkg=$${pair#*=}; \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then echo "system-packages: installed"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "system-packages: missing:$$missing; install these Debian packages as root" >&2; exit 1; fi

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

test: install system-packages ## run the whole test suite (3 workers) against real local brokers and databases
	$(UV) run --no-sync pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

test-containers: install system-packages ## the same suite against real Kafka and MongoDB (fails without Docker)
	$(UV) run --no-sync pytest --backend=containers $(PYTEST_XDIST) $(PYTEST_ARGS)

lint: install ## ruff (lint + format check), mypy, the import-layer contracts, declared dependencies, licences, known vulnerabilities
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	MYPYPATH=$(MYPY_PATH) $(UV) run --no-sync mypy $(SRC_DIRS)
	$(UV) run --no-sync lint-imports
	$(UV) run --no-sync python scripts/dependency_hygiene.py
	$(UV) run --no-sync python scripts/vulnerability_audit.py

fmt: install ## format and autofix
	$(UV) run --no-sync ruff format .
	$(UV) run --no-sync ruff check --fix .

openapi: install ## regenerate docs/openapi and docs/asyncapi from what the services serve
	$(UV) run --no-sync mmgen apidocs write

bench: install ## run the benchmarks in bench/ and record their results
	for script in bench/bench_*.py; do $(UV) run --no-sync python $$script || exit 1; done

images: ## build every service's container image (needs a Docker engine; CONTAINER_ENGINE=podman works too)
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { \
	  echo "make images: no container engine answers ('$(CONTAINER_ENGINE) info' failed)." >&2; \
	  echo "  Start Docker (or set CONTAINER_ENGINE=podman); no image was built." >&2; exit 1; }
	@for entry in $(IMAGE_SERVICES); do \
	  name=$${entry%%=*}; port=$${entry##*=}; \
	  if [ ! -d services/$$name ]; then echo "skipping $$name: services/$$name is not in this tree"; continue; fi; \
	  factory=mmgen.$$name.entrypoints.app:create_app; \
	  if [ $$name = witness ]; then factory=mmgen.witness.app:create_app; fi; \
	  if [ $$name = console ]; then factory=mmgen.console.app:create_app; fi; \
	  echo "building $(IMAGE_REGISTRY)/$$name:$(IMAGE_TAG)"; \
	  $(CONTAINER_ENGINE) build -f deploy/docker/Dockerfile --build-arg SERVICE=$$name \
	    --build-arg PORT=$$port --build-arg APP_FACTORY=$$factory \
	    -t $(IMAGE_REGISTRY)/$$name:$(IMAGE_TAG) . || exit 1; \
	done

clean: ## remove caches (keeps .mmgen local state; `mmgen reset --yes` wipes that)
	rm -rf .pytest_cache .mypy_cache .ruff_cache
