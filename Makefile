# sketchgen — every target builds its own .venv from the repo's files; nothing global needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Every install goes through uv (pinned in requirements-uv.txt), which the system's pip puts
# into a venv made without pip: no ensurepip, no pip upgrade, parallel downloads. Packages are
# compiled to bytecode as they are installed, as pip does and uv does not by default: where
# PYTHONDONTWRITEBYTECODE is set (this project's CI machines) no import would ever write it, and
# every process would compile what it imports from source again (google-genai: 1.1 s instead
# of 0.4 s; docs/decisions/0074).
UV     := $(VENV)/bin/uv
UV_PIP := $(UV) pip install --quiet --compile-bytecode --python $(PY)
# The project's own modules, which an editable install leaves where they are.
COMPILE_OWN := $(PY) -m compileall -q -j 0 lib functions dev

.PHONY: install browser web demo test test-unit test-integration lint format bench clean

install: $(STAMP)

$(UV): requirements-uv.txt
	test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(PY) install --quiet --disable-pip-version-check --no-compile -r requirements-uv.txt
	touch $@

$(STAMP): $(UV) requirements.txt requirements-cloud.txt requirements-dev.txt pyproject.toml
	$(UV_PIP) -r requirements-dev.txt
	$(UV_PIP) --no-deps -e .
	$(COMPILE_OWN)
	touch $@

# Headless Chromium for the web page tests: Debian's package (Playwright drives it; its own
# browser download is not used).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The web page's Firebase SDK bundle and the Firebase Auth emulator (firebase-tools), from npm,
# pinned by web/package-lock.json; Node.js 20+ from the system.
WEB_STAMP := web/node_modules/.installed
web: $(WEB_STAMP) lib/sketchgen/web/firebase-sdk.js

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "make web: Node.js 20+ with npm is needed (apt-get install nodejs npm)" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lib/sketchgen/web/firebase-sdk.js: $(WEB_STAMP) web/src/firebase.js
	cd web && npm run --silent build

# The demo needs only the library (requirements.txt), not the test and cloud tools: on a
# fresh clone it installs a few packages, not a hundred (docs/BENCHMARKS.md, "First hour").
LIB_STAMP := $(VENV)/.installed-lib

$(LIB_STAMP): $(UV) requirements.txt pyproject.toml
	$(UV_PIP) -r requirements.txt
	$(UV_PIP) --no-deps -e .
	$(COMPILE_OWN)
	touch $@

demo: $(LIB_STAMP)
	$(VENV)/bin/sketchgen generate "playful golf mascot" --offline -n 4 --seed 7

# Tests run in parallel (pytest-xdist), a test module on one worker (--dist loadscope) so its
# module fixtures (a make dev topology, emulators) are built once; each worker starts its own
# emulators when its first test needs them (session fixtures), so workers share no state.
# Modules go out longest first, in tests/conftest.py's order, not xdist's (the most tests first).
# Two workers a core, at most 8: much of the suite waits (emulators, subprocesses, the model
# stand-in's latency), and one worker a core left the CPUs a third idle (docs/decisions/0072).
TEST_WORKERS ?= $(shell n=$$(nproc); w=$$((2 * n)); [ $$w -gt 8 ] && w=8; echo $$w)

test: install browser web
	$(PY) scripts/check_prerequisites.py
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

lint: install
	$(VENV)/bin/ruff check lib dev tests bench scripts examples
	$(VENV)/bin/ruff format --check lib dev tests bench scripts examples
	$(VENV)/bin/mypy
	PYTHONPATH=$(CURDIR)/lib:$(CURDIR) $(VENV)/bin/lint-imports  # layers: pyproject.toml, docs/ARCHITECTURE.md

format: install
	$(VENV)/bin/ruff check --fix lib dev tests bench scripts examples
	$(VENV)/bin/ruff format lib dev tests bench scripts examples

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build generated_outputs .pytest_cache .mypy_cache .ruff_cache web/node_modules lib/sketchgen/web/firebase-sdk.js*

# --- local cloud topology ----------------------------------------------------------------------
.PHONY: dev serve
dev: install web
	$(PY) -m dev.topology

serve: install
	$(VENV)/bin/sketchgen serve

# --- deployment (docs/DEPLOY.md) ---------------------------------------------------------------
ENV             ?= dev
TF_ENV_DIR      := infra/terraform/environments/$(ENV)
TF_MANIFEST     := $(CURDIR)/build/functions/manifest.json
TF_STATE_BUCKET ?=
TF_ARGS         ?=

.PHONY: build tf-init plan deploy lint-infra

build: install web
	$(PY) scripts/build_functions.py

tf-init:
	@case "$(ENV)" in dev|prod) ;; *) echo "ENV must be dev or prod" >&2; exit 2;; esac
	@test -n "$(TF_STATE_BUCKET)" || { echo "set TF_STATE_BUCKET=<project>-tfstate (docs/DEPLOY.md, step 3)" >&2; exit 2; }
	@test -f $(TF_ENV_DIR)/terraform.tfvars || { echo "create $(TF_ENV_DIR)/terraform.tfvars from terraform.tfvars.example" >&2; exit 2; }
	terraform -chdir=$(TF_ENV_DIR) init -input=false -reconfigure -backend-config="bucket=$(TF_STATE_BUCKET)"

plan: build tf-init
	terraform -chdir=$(TF_ENV_DIR) plan -input=false -var-file=terraform.tfvars -var="functions_manifest=$(TF_MANIFEST)" $(TF_ARGS)

deploy: build tf-init
	terraform -chdir=$(TF_ENV_DIR) apply -var-file=terraform.tfvars -var="functions_manifest=$(TF_MANIFEST)" $(TF_ARGS)

lint-infra:
	bash scripts/check_terraform.sh
