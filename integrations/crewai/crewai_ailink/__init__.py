"""CrewAI tools, approval events, execution-scoped sessions and an LLM for the AIlink gateway.

``import crewai_ailink`` does not import crewai: the one-liners (:func:`crewai_tool`, :func:`crewai_tools`,
:func:`crewai_llm`, :func:`ailink_session`) import it when first called, and the classes
(:class:`AIlinkTool` and the events) load on first attribute access. Set CrewAI's telemetry
switches (``CREWAI_DISABLE_TELEMETRY=true``, ``OTEL_SDK_DISABLED=true``,
``CREWAI_TRACING_ENABLED=false``) before either happens.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from crewai_ailink._api import ailink_session, crewai_llm, crewai_tool, crewai_tools

__all__ = [
    "AIlinkApprovalPendingEvent",
    "AIlinkApprovalResolvedEvent",
    "AIlinkTool",
    "__version__",
    "ailink_session",
    "crewai_llm",
    "crewai_tool",
    "crewai_tools",
]

__version__ = version("crewai-ailink")

_LAZY: dict[str, str] = {
    "AIlinkTool": "crewai_ailink._tool",
    "AIlinkApprovalPendingEvent": "crewai_ailink._events",
    "AIlinkApprovalResolvedEvent": "crewai_ailink._events",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crewai_ailink' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from crewai_ailink._events import AIlinkApprovalPendingEvent, AIlinkApprovalResolvedEvent
    from crewai_ailink._tool import AIlinkTool
