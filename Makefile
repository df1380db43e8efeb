# synapse_nb: every target does its own set-up from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
DEMO_DIR := build/demo

.PHONY: demo test lint typecheck unit bench clean system-deps lab proto

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Debian packages the tests need (installed only when running as root with apt-get available).
system-deps:
	@bash .ci/system-deps

EXAMPLE := synapse_nb/examples/sentiment-analyzer
CLI := $(VENV)/bin/synapse-cli

# The spec's sentiment-analyzer, copied to build/demo and taken through the plugin lifecycle: validated,
# signed with a developer key (created on first use, kept in build/demo/synapse-home), verified, and run
# under nsjail.
demo: export SYNAPSE_HOME = $(CURDIR)/$(DEMO_DIR)/synapse-home
demo: $(STAMP)
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	cp -r $(EXAMPLE) $(DEMO_DIR)/
	$(CLI) plugin validate $(DEMO_DIR)/sentiment-analyzer
	$(CLI) plugin sign $(DEMO_DIR)/sentiment-analyzer
	$(CLI) plugin verify $(DEMO_DIR)/sentiment-analyzer
	$(CLI) plugin run $(DEMO_DIR)/sentiment-analyzer --json \
	    --input '{"text": "I love this plugin system. The old one was terrible! Switching was not bad at all."}'
	@echo "--- the quickstart notebook, executed headless (notebooks/01-quickstart.ipynb) ---"
	$(PY) -m synapse_nb.notebook.headless notebooks/01-quickstart.ipynb --workdir $(DEMO_DIR)/notebook

# JupyterLab with the tutorials (the "Python 3 (Synapse)" kernel preloads the extension).
lab: $(STAMP)
	$(CLI) kernel install --prefix $(VENV)
	$(VENV)/bin/jupyter lab notebooks/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# Regenerate the committed protobuf code of synapse_nb/serve (tests/test_serve_proto.py checks it is current).
PROTO_ROOT := synapse_nb/serve/proto
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -I $(PROTO_ROOT) --python_out=$(PROTO_ROOT) --pyi_out=$(PROTO_ROOT) \
	    synapse/v1/plugin_host.proto

lint: $(STAMP)
	$(VENV)/bin/ruff check synapse_nb tests bench
	$(VENV)/bin/ruff format --check synapse_nb tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP) system-deps
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
