# Set-up and entry points. `make demo` and `make test` each create .venv/ when missing.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.effnas-installed
PYTHON ?= python3

.PHONY: demo test test-slow lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch from local disk first; a bare "torch" would pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/effnas run demo --out runs/demo --resume

lint: $(STAMP)
	$(VENV)/bin/ruff check effnas search_spaces nas scaling experiments tests bench
	$(VENV)/bin/mypy effnas
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest -q -m "not slow and not gpu" effnas tests

test-slow: $(STAMP)
	$(VENV)/bin/pytest -q -m "slow" tests

clean-venv:
	rm -rf $(VENV)
