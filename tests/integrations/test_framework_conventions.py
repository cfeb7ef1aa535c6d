"""Each framework's habits: what its users, registries and UIs expect of an integration package.

LlamaIndex: the LLM's ``metadata`` (context window, function calling) is the model's, as
``llama_index.llms.openai.OpenAI`` reports it, and the package carries ``[tool.llamahub]``.
CrewAI: tools declare the environment variables they read (``env_vars``). Every integration has a
``__version__`` read from its installed metadata.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3-mini", "gpt-3.5-turbo"])
def test_the_llamaindex_llm_reports_what_openai_reports(model: str) -> None:
    from llama_index.llms.ailink import AIlink
    from llama_index.llms.openai import OpenAI

    ours = AIlink(model=model, token="ailink_v1_test_token").metadata
    theirs = OpenAI(model=model, api_key="sk-test").metadata
    assert ours.context_window == theirs.context_window
    assert ours.is_function_calling_model == theirs.is_function_calling_model
    assert ours.is_chat_model and ours.model_name == model


def test_the_llamaindex_llm_metadata_of_other_models() -> None:
    from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW
    from llama_index.llms.ailink import AIlink

    def window(model: str, **options: Any) -> int:
        return int(AIlink(model=model, token="ailink_v1_test_token", **options).metadata.context_window)

    assert window("gpt-4o-mini") == 128000 != DEFAULT_CONTEXT_WINDOW  # the issue: it said 3900
    assert window("openai/gpt-4o-mini") == 128000  # a provider-prefixed name
    assert window("claude-sonnet-4-5") == 200_000
    assert window("gemini-2.5-flash") == 1_048_576
    assert window("billing-fast") == DEFAULT_CONTEXT_WINDOW  # a gateway alias: LlamaIndex's default
    assert window("billing-fast", context_window=32000) == 32000  # the caller's value wins
    assert window("gpt-4o-mini", context_window=8000) == 8000
    llm = AIlink(model="gpt-4o-mini", token="ailink_v1_test_token", is_function_calling_model=False)
    assert llm.metadata.is_function_calling_model is False


def test_the_llamaindex_package_carries_llamahub_metadata() -> None:
    project = tomllib.loads((ROOT / "integrations/llamaindex/pyproject.toml").read_text())
    hub = project["tool"]["llamahub"]
    assert hub["contains_example"] is False
    module = __import__(hub["import_path"], fromlist=["*"])
    for name in hub["class_authors"]:  # every class named is importable from the package
        assert hasattr(module, name) or hasattr(__import__("llama_index.llms.ailink", fromlist=["*"]), name)


def test_crewai_tools_declare_their_environment_variables() -> None:
    from crewai.tools import EnvVar
    from crewai_ailink import crewai_tool

    tool = crewai_tool(token="ailink_v1_test_token", gateway_url="http://127.0.0.1:9", name="payments_api",
                       description="Call the payments API")
    names = {var.name: var for var in tool.env_vars}
    assert set(names) == {"AILINK_API_KEY", "AILINK_GATEWAY_URL"}
    assert all(isinstance(var, EnvVar) and not var.required for var in names.values())  # token= / gateway_url= also do
    assert "ailink_v1_test_token" not in repr(tool.env_vars)


@pytest.mark.parametrize(("module", "distribution"), [
    ("ailink", "ailink-sdk"),
    ("langchain_ailink", "langchain-ailink"),
    ("crewai_ailink", "crewai-ailink"),
    ("llama_index.llms.ailink", "llama-index-ailink"),
    ("llama_index.tools.ailink", "llama-index-ailink"),
    ("agents_ailink", "openai-agents-ailink"),
    ("pydantic_ai_ailink", "pydantic-ai-ailink"),
])
def test_each_package_has_its_distributions_version(module: str, distribution: str) -> None:
    imported = __import__(module, fromlist=["__version__"])
    assert imported.__version__ == metadata.version(distribution)
    assert "__version__" in imported.__all__
