# Two commands set everything up on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A .venv made by another interpreter is rebuilt, not reused.
PYTHON_ID := $(shell $(PYTHON) -c 'import sys, hashlib; print(hashlib.sha1((sys.executable + sys.version).encode()).hexdigest()[:12])')
VENV_STAMP := $(VENV)/.python-$(PYTHON_ID)

.PHONY: test check demo docs lint bench soak clean

$(VENV_STAMP):
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $@

# the demo needs the library, the toolbar and its own package: nothing else
$(VENV)/.demo: $(VENV_STAMP) setup.cfg pyproject.toml demo_app/pyproject.toml
	$(BIN)/python -m pip install --quiet -e . -e ./demo_app
	touch $@

# the documentation needs the library and the docs extra: nothing else
$(VENV)/.docs: $(VENV_STAMP) setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

$(VENV)/.dev: $(VENV_STAMP) setup.cfg pyproject.toml demo_app/pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[testing,docs]' -e ./demo_app nox uv ruff mypy 'import-linter>=2.17'
	touch $@

# Everything CI runs: lint, mypy, docs, and the suite against the built wheel
# on Python 3.11/3.12/3.13, at the dependency floors, from the sdist, and
# 0.4.0's own tests.
test: $(VENV)/.dev
	$(BIN)/nox

# The suite against the checkout, in .venv: the quick loop while working.
# The suite drives the demo through its own distribution: installed here
# where the .venv lacks it (one made by hand, or before the demo was one).
check: $(VENV)/.dev
	$(BIN)/python -m pip show --quiet pyramid_session_multi_demo >/dev/null 2>&1 \
		|| $(BIN)/python -m pip install --quiet -e ./demo_app
	$(BIN)/python -m pytest

# make demo PORT=8080 serves it on another port
PORT ?= 6543
demo: $(VENV)/.demo
	$(BIN)/pserve demo_app/development.ini http_port=$(PORT)

docs: $(VENV)/.docs
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict pyramid_session_multi
	$(BIN)/lint-imports --no-cache

bench: $(VENV)/.dev
	PYTHONPATH=. $(BIN)/python benchmarks/bench.py

# load, faults (Redis killed, paused) and leaks against a real waitress worker:
# the figures of docs/narr/deploying.rst; kept out of the suite (about a minute)
soak: $(VENV)/.dev
	PYTHONPATH=. $(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) .nox docs/_build *.egg-info demo_app/*.egg-info .mypy_cache .pytest_cache .ruff_cache .grimp_cache
