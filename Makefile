# sketchgen — every target builds its own .venv from the repo's files; nothing global needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-unit test-integration lint format bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

demo: install
	$(VENV)/bin/sketchgen generate "playful golf mascot" --offline -n 4 --seed 7

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check lib tests bench scripts
	$(VENV)/bin/ruff format --check lib tests bench scripts
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix lib tests bench scripts
	$(VENV)/bin/ruff format lib tests bench scripts

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build generated_outputs .pytest_cache .mypy_cache .ruff_cache
