"""Each framework's real way of invoking a tool, and how to read what the agent gets back.

LangChain ``tool.invoke``/``ainvoke`` with a ToolCall, CrewAI ``tool.run``/``arun``, LlamaIndex
``FunctionTool.call``/``acall``; shared by the hostile-arguments and gateway-failure suites.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from crewai.tools import ToolFailure
from crewai_ailink import crewai_tool
from gateway_stubs import describe
from langchain_ailink import langchain_tool
from langchain_core.messages import ToolMessage
from llama_index.core.tools import ToolOutput
from llama_index.tools.ailink import llamaindex_tool

TOOL = "payments_api"


@dataclass(frozen=True)
class Seen:
    """What the agent would get back from the framework."""

    is_error: bool
    text: str
    status: str | None
    code: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class InvocationPath:
    """One framework's real way of invoking a tool, and how to read its answer."""

    build: Callable[..., Any]
    invoke: Callable[[Any, Any, str], Awaitable[Any]]
    read: Callable[[Any], Seen]


def _tool_call(args: Any, call_id: str) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": TOOL, "args": args}


async def _lc_sync(tool: Any, args: Any, call_id: str) -> Any:
    return tool.invoke(_tool_call(args, call_id))


async def _lc_async(tool: Any, args: Any, call_id: str) -> Any:
    return await tool.ainvoke(_tool_call(args, call_id))


def _lc_read(answer: Any) -> Seen:
    assert isinstance(answer, ToolMessage), f"not a ToolMessage: {describe(answer)}"
    artifact = answer.artifact or {}
    return Seen(answer.status == "error", answer.content if isinstance(answer.content, str) else "",
                artifact.get("status"), None, artifact.get("idempotency_key"))


async def _crew_sync(tool: Any, args: Any, call_id: str) -> Any:
    return tool.run(**args) if isinstance(args, dict) else tool.run(args)


async def _crew_async(tool: Any, args: Any, call_id: str) -> Any:
    return await (tool.arun(**args) if isinstance(args, dict) else tool.arun(args))


def _crew_read(answer: Any) -> Seen:
    assert isinstance(answer, ToolFailure), f"not a ToolFailure: {describe(answer)}"
    return Seen(True, answer.as_agent_message(), answer.details.get("status"), answer.code,
                answer.details.get("idempotency_key"))


async def _li_sync(tool: Any, args: Any, call_id: str) -> Any:
    return tool.call(**args) if isinstance(args, dict) else tool.call(args)


async def _li_async(tool: Any, args: Any, call_id: str) -> Any:
    return await (tool.acall(**args) if isinstance(args, dict) else tool.acall(args))


def _li_read(answer: Any) -> Seen:
    assert isinstance(answer, ToolOutput), f"not a ToolOutput: {describe(answer)}"
    raw = answer.raw_output if isinstance(answer.raw_output, dict) else {}
    return Seen(answer.is_error and answer.exception is None, answer.content, raw.get("status"), None,
                raw.get("idempotency_key"))


PATHS = {
    "langchain-invoke": InvocationPath(langchain_tool, _lc_sync, _lc_read),
    "langchain-ainvoke": InvocationPath(langchain_tool, _lc_async, _lc_read),
    "crewai-run": InvocationPath(crewai_tool, _crew_sync, _crew_read),
    "crewai-arun": InvocationPath(crewai_tool, _crew_async, _crew_read),
    "llamaindex-call": InvocationPath(llamaindex_tool, _li_sync, _li_read),
    "llamaindex-acall": InvocationPath(llamaindex_tool, _li_async, _li_read),
}
