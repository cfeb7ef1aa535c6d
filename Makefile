# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PIP_FLAGS ?= --disable-pip-version-check -q

export CREWAI_DISABLE_TELEMETRY := true
export OTEL_SDK_DISABLED := true
export CREWAI_TRACING_ENABLED := false
export CREWAI_TESTING := true

.PHONY: install demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml integrations/langchain/pyproject.toml integrations/crewai/pyproject.toml integrations/llamaindex/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[openai,anthropic,realtime,emulator,dev]' \
		-e 'integrations/langchain[openai]' -e integrations/crewai -e integrations/llamaindex
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ailink demo

lint: install
	$(BIN)/ruff check src integrations tests bench

typecheck: install
	$(BIN)/mypy
	cd integrations/langchain && ../../$(BIN)/mypy --strict langchain_ailink
	cd integrations/crewai && ../../$(BIN)/mypy --strict crewai_ailink
	cd integrations/llamaindex && ../../$(BIN)/mypy --strict --namespace-packages --explicit-package-bases llama_index

pytest: install
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
