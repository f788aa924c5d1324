# One-command entry points. `make run` and `make test` set up .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch lies on this machine's disk; install it before the project so that
	# pip does not fetch a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

.PHONY: setup run test lint app
setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/visage $(ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check engine app tests
	$(VENV)/bin/ruff format --check engine app tests
	$(VENV)/bin/mypy

# Standalone app: dist/visage/ (PyInstaller onedir, build.spec), then its self-test from the bundle.
app: setup
	VENV=$(VENV) scripts/build_app.sh
