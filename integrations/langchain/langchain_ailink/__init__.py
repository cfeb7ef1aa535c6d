"""LangChain / LangGraph integration of the AIlink gateway.

``langchain_tool`` / :class:`AIlinkTool`: a gateway-proxied API as a LangChain tool (approvals
wait in the tool or pause a LangGraph graph with ``interrupt()``); ``langchain_tools``: one typed
tool per operation of an OpenAPI document; :class:`AIlinkCallbackHandler`:
one session and a span tree per run; :class:`ChatAIlink` (extra ``openai``): ``ChatOpenAI``
pointed at the gateway, carrying the session headers of the current run.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from langchain_ailink._context import USER_METADATA_KEY
from langchain_ailink.callbacks import SESSION_METADATA_KEY, AIlinkCallbackHandler
from langchain_ailink.tools import (
    APPROVAL_PENDING_EVENT,
    APPROVAL_RESOLVED_EVENT,
    AIlinkTool,
    AIlinkToolError,
    langchain_tool,
    langchain_tools,
)

if TYPE_CHECKING:
    from langchain_ailink.chat_models import ChatAIlink

__all__ = [
    "APPROVAL_PENDING_EVENT",
    "APPROVAL_RESOLVED_EVENT",
    "SESSION_METADATA_KEY",
    "USER_METADATA_KEY",
    "AIlinkCallbackHandler",
    "AIlinkTool",
    "AIlinkToolError",
    "ChatAIlink",
    "__version__",
    "langchain_tool",
    "langchain_tools",
]

__version__ = version("langchain-ailink")


def __getattr__(name: str) -> Any:
    if name == "ChatAIlink":  # needs langchain-openai: imported on first use
        try:
            from langchain_ailink.chat_models import ChatAIlink
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "ChatAIlink needs langchain-openai: pip install 'langchain-ailink[openai]'", name=exc.name
            ) from exc
        return ChatAIlink
    raise AttributeError(f"module 'langchain_ailink' has no attribute {name!r}")
