# Two commands do everything on a fresh machine (each creates/reuses .venv and installs pinned versions):
#   make demo   the label-budget study (search_spaces/study.yaml) on the built-in synthetic data
#               -> results/demo/{trials,history}.parquet + results/demo/report/ (report.md answers what labels buy)
#   make test   lint (ruff, mypy) + the whole test suite, Ray tests included (what CI runs)
#   make test-fast  for development: the tests that start no Ray cluster and take seconds (-m "not ray and not slow")
# GPU users: make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128  (a CUDA build of torch 2.13.0)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_INDEX ?=
RESULTS ?= results
TARGET_DICE ?=
DEMO_SET ?=

.PHONY: setup demo test test-fast lint pytest bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -c constraints.txt -e ".[ray,dev]"
	touch $@

demo: setup
	rm -rf $(RESULTS)/demo
	$(VENV)/bin/hdc-ray sweep study --name demo --results $(RESULTS) $(DEMO_SET)
	$(VENV)/bin/hdc-ray report $(RESULTS) --sweep demo --out $(RESULTS)/demo/report $(if $(TARGET_DICE),--target-dice $(TARGET_DICE))

lint: setup
	$(VENV)/bin/ruff check hdc_ray tests bench
	$(VENV)/bin/mypy

pytest: setup
	$(PY) -m pytest -q

test: lint pytest

# No lint, no Ray cluster, nothing marked slow (CLI subprocesses, training runs): a development loop, not CI.
test-fast: setup
	$(PY) -m pytest -q -m "not ray and not slow"

bench: setup
	$(PY) bench/step_time.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
