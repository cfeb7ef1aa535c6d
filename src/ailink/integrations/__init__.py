"""The one-liners of the AIlink docs, re-exported lazily from the framework packages.

``from ailink.integrations import langchain_tool`` needs ``langchain-ailink``; each name
says which package to install when it is missing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_SOURCES: dict[str, tuple[str, str]] = {
    "langchain_tool": ("langchain_ailink", "langchain-ailink"),
    "crewai_tool": ("crewai_ailink", "crewai-ailink"),
    "crewai_llm": ("crewai_ailink", "crewai-ailink"),
    "llamaindex_tool": ("llama_index.tools.ailink", "llama-index-ailink"),
    "llamaindex_llm": ("llama_index.llms.ailink", "llama-index-ailink"),
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'ailink.integrations' has no attribute {name!r}")
    module_name, distribution = source
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"ailink.integrations.{name} needs the {distribution!r} package: pip install {distribution}"
        ) from exc
    return getattr(module, name)


def __dir__() -> list[str]:
    return __all__
