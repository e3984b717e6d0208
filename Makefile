# Two commands set everything up on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch/torchvision are pinned to the releases this machine image keeps on disk (no multi-GB download).
TORCH := torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: install demo test test-unit test-integration lint bench clean tools

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[embedded,dev,fast]'
	touch $(STAMP)

tools:
	bash scripts/install-check-tools.sh

demo: install
	$(PY) -m lifelong.demo

test: install tools
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -q -ra tests/unit $(PYTEST_ARGS)

test-integration: install
	$(PY) -m pytest -q -ra -m integration $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check lifelong tests benchmarks deploy

bench: install
	$(PY) benchmarks/stream_throughput.py
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/gil_contention.py

clean:
	rm -rf $(VENV) state runs .pytest_cache
