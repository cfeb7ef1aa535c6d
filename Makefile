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

.PHONY: install browser demo test lint typecheck pytest bench lowest dists clean

$(STAMP): pyproject.toml integrations/langchain/pyproject.toml integrations/crewai/pyproject.toml integrations/llamaindex/pyproject.toml \
		integrations/openai-agents/pyproject.toml integrations/pydantic-ai/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[openai,anthropic,realtime,emulator,openapi,otel,testing]' --group dev \
		-e 'integrations/langchain[agents]' -e integrations/crewai -e integrations/llamaindex \
		-e integrations/openai-agents -e integrations/pydantic-ai
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ailink demo

lint: install
	$(BIN)/ruff check src integrations tests bench tools

typecheck: install
	$(BIN)/mypy
	cd integrations/langchain && ../../$(BIN)/mypy --strict langchain_ailink
	cd integrations/crewai && ../../$(BIN)/mypy --strict crewai_ailink
	cd integrations/llamaindex && ../../$(BIN)/mypy --strict --namespace-packages --explicit-package-bases llama_index
	cd integrations/openai-agents && ../../$(BIN)/mypy --strict agents_ailink
	cd integrations/pydantic-ai && ../../$(BIN)/mypy --strict pydantic_ai_ailink

# Chromium and ChromeDriver for the inbox's browser test, from the distribution's packages when missing
# (quiet; nothing to do where they are installed; needs root or password-less sudo to install).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		echo "make browser: installing chromium and chromium-driver (apt-get) for the inbox's browser test"; \
		{ $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver; } >/dev/null 2>&1 \
		|| echo "make browser: could not install them; the browser test will say what is missing"; \
	else echo "make browser: no chromium/chromedriver and no apt-get; the browser test will say what is missing"; fi

pytest: install browser
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run_all.py

# Each distribution installed with the lowest dependency versions it declares (Python 3.11), then its
# tests: the lower bounds in the pyprojects are tested. Slow (~15 min, it installs old releases): not in `make test`.
lowest: install
	$(BIN)/python tools/lowest.py

# The four distributions built (wheel + sdist, twine check --strict), then each README's examples run in
# fresh virtualenvs holding only what that README's `pip install` lines name, on each of PYTHONS. Slow.
PYTHONS ?= 3.10 3.11 3.13
dists: install
	PYTHONS="$(PYTHONS)" $(BIN)/python tools/dists.py

clean:
	rm -rf $(VENV) .lowest .dists .mypy_cache .ruff_cache .pytest_cache
