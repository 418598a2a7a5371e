# Two commands set everything up on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: test demo bench mypy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# compat mode puts the checkout on sys.path, so demo_app imports everywhere
$(INSTALLED): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[testing,demo]' \
		--config-settings editable_mode=compat
	touch $(INSTALLED)

test: $(INSTALLED)
	$(BIN)/python -m pytest
	$(BIN)/python -m mypy --strict pyramid_session_multi

mypy: $(INSTALLED)
	$(BIN)/python -m mypy --strict pyramid_session_multi

demo: $(INSTALLED)
	$(BIN)/pserve demo_app/development.ini

bench: $(INSTALLED)
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .pytest_cache
