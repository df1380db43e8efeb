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

# system-deps first: installing the package builds labextension/ with node (hatch-jupyter-builder).
$(STAMP): pyproject.toml | $(VENV)/bin/python system-deps
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The JupyterLab extension, rebuilt when its sources change (jlpm ships with jupyterlab; the lock file pins
# every npm package), then copied where JupyterLab finds it (the editable install copied the first build).
LABEXT_SRC := $(wildcard labextension/src/*.ts labextension/src/*.tsx labextension/style/*) \
	labextension/package.json labextension/yarn.lock labextension/tsconfig.json
LABEXT := $(VENV)/share/jupyter/labextensions/synapse-nb/.built
LABEXT_BUILT := synapse_nb/labextension/package.json
$(LABEXT): $(LABEXT_SRC) | $(STAMP)
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm install --immutable >/dev/null
	if [ ! -f $(LABEXT_BUILT) ] || [ -n "$$(find $(LABEXT_SRC) -newer $(LABEXT_BUILT))" ]; then \
	    cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm build:prod >/dev/null; fi
	rm -rf $(dir $@) && mkdir -p $(dir $@)
	cp -r synapse_nb/labextension/. labextension/install.json $(dir $@)
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

# JupyterLab with the tutorials (the "Python 3 (Synapse)" kernel preloads the extension); root needs --allow-root.
lab: $(STAMP) $(LABEXT)
	$(CLI) kernel install --prefix $(VENV)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/jupyter lab notebooks/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

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

unit: $(STAMP) system-deps $(LABEXT)
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP) system-deps $(LABEXT)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
	rm -rf labextension/node_modules labextension/lib labextension/tsconfig.tsbuildinfo synapse_nb/labextension
