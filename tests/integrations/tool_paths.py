"""Each framework's real way of invoking a tool, and how to read what the agent gets back.

LangChain ``tool.invoke``/``ainvoke`` with a ToolCall, CrewAI ``tool.run``/``arun``, LlamaIndex
``FunctionTool.call``/``acall``, the Agents SDK runner's ``FunctionTool.on_invoke_tool(ToolContext,
arguments text)``, and a real Pydantic AI ``Agent`` (``run_sync``/``run``) whose scripted model
(``FunctionModel``) makes the tool call; shared by the hostile-arguments and gateway-failure suites.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic_core
from agents_ailink import AIlinkToolOutput, openai_agents_tool
from crewai.tools import ToolFailure
from crewai_ailink import crewai_tool
from framework_calls import agents_invoke, scripted_agent, tool_answer
from gateway_stubs import describe
from langchain_ailink import langchain_tool
from langchain_core.messages import ToolMessage
from llama_index.core.tools import ToolOutput
from llama_index.tools.ailink import llamaindex_tool
from pydantic_ai.messages import RetryPromptPart, ToolReturnPart
from pydantic_ai_ailink import pydantic_ai_tool

TOOL = "payments_api"
MAX_TEXT = 4000  # a refusal the model can read, whatever the size of what it sent


@dataclass(frozen=True)
class Seen:
    """What the agent would get back from the framework."""

    is_error: bool
    text: str
    status: str | None
    code: str | None = None
    idempotency_key: str | None = None
    #: the framework refused the arguments itself and never called our tool (Pydantic AI's retry prompt)
    refused_by_framework: bool = False


def _never(args: Any) -> bool:
    return False


@dataclass(frozen=True)
class InvocationPath:
    """One framework's real way of invoking a tool, and how to read its answer.

    ``framework_refuses(args)``: whether the framework itself refuses ``args`` before our tool
    runs (a ``Seen.refused_by_framework`` answer); any other refusal must be our tool's."""

    build: Callable[..., Any]
    invoke: Callable[[Any, Any, str], Awaitable[Any]]
    read: Callable[[Any], Seen]
    framework_refuses: Callable[[Any], bool] = _never

    def refusal_problems(self, seen: Seen, args: Any, token: str) -> list[str]:
        """What is wrong with a refusal of ``args`` by the framework itself, or with its absence.

        A framework that parses the arguments itself (Pydantic AI) refuses what it cannot read
        before our tool runs: exactly those arguments, with an error the model can read (its own
        words at most ``MAX_TEXT`` long, besides a quote of what the model sent). That nothing was
        sent is for the suites to check, as for every other refusal."""
        expected = self.framework_refuses(args)
        if seen.refused_by_framework != expected:
            return [f"refused by {'the framework' if seen.refused_by_framework else 'our tool'}, "
                    f"expected {'the framework' if expected else 'our tool'} to"]
        own_words = seen.text.replace(json.dumps(arguments_text(args), ensure_ascii=False)[1:-1], "", 1)
        if not seen.is_error or not own_words.strip() or len(own_words) > MAX_TEXT or token in seen.text:
            return [f"the framework's refusal is not readable ({len(seen.text)} chars): {describe(seen.text)}"]
        return []


def arguments_text(args: Any) -> str:
    """The arguments as the JSON text a model sends; a ``str`` is that text already (hostile or not).

    Written without recursion, so arguments nested thousands of levels deep have a text too."""
    if isinstance(args, str):
        return args
    out: list[str] = []
    stack: list[Any] = [args]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, dict):
            stack.append(_Text("}"))
            for n, (key, value) in enumerate(reversed(item.items())):
                stack += [value, _Text(("" if n == len(item) - 1 else ", ") + json.dumps(key) + ": ")]
            out.append("{")
        elif isinstance(item, list):
            stack.append(_Text("]"))
            for n, value in enumerate(reversed(item)):
                stack += [value, _Text("" if n == len(item) - 1 else ", ")]
            out.append("[")
        else:
            out.append(json.dumps(item))
    return "".join(out)


@dataclass(frozen=True)
class _Text:
    text: str


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


async def _agents(tool: Any, args: Any, call_id: str) -> Any:
    return await agents_invoke(tool, arguments_text(args), call_id)


def _agents_read(answer: Any) -> Seen:
    assert isinstance(answer, AIlinkToolOutput), f"not an AIlinkToolOutput: {describe(answer)}"
    return Seen(answer.is_error, str(answer), answer.artifact.get("status"), None,
                answer.artifact.get("idempotency_key"))


async def _pai_sync(tool: Any, args: Any, call_id: str) -> Any:
    agent = scripted_agent(tool, arguments_text(args), call_id)
    result = await asyncio.to_thread(agent.run_sync, "Use the tool.")  # run_sync refuses a running loop
    return tool_answer(result.new_messages(), call_id)


async def _pai_async(tool: Any, args: Any, call_id: str) -> Any:
    result = await scripted_agent(tool, arguments_text(args), call_id).run("Use the tool.")
    return tool_answer(result.new_messages(), call_id)


def _pai_read(answer: Any) -> Seen:
    if isinstance(answer, RetryPromptPart):
        return Seen(True, answer.model_response(), None, refused_by_framework=True)
    assert isinstance(answer, ToolReturnPart), f"not a ToolReturnPart: {describe(answer)}"
    artifact = answer.metadata if isinstance(answer.metadata, dict) else {}
    return Seen(answer.outcome == "failed", answer.model_response_str(), artifact.get("status"), None,
                artifact.get("idempotency_key"))


def _pai_refuses(args: Any) -> bool:
    """Pydantic AI parses a model's arguments itself: text that is not a JSON object (or nests past
    its parser's limit) gets a retry prompt, and the tool is never called."""
    try:
        return not isinstance(pydantic_core.from_json(arguments_text(args) or "{}"), dict)
    except ValueError:
        return True


PATHS = {
    "langchain-invoke": InvocationPath(langchain_tool, _lc_sync, _lc_read),
    "langchain-ainvoke": InvocationPath(langchain_tool, _lc_async, _lc_read),
    "crewai-run": InvocationPath(crewai_tool, _crew_sync, _crew_read),
    "crewai-arun": InvocationPath(crewai_tool, _crew_async, _crew_read),
    "llamaindex-call": InvocationPath(llamaindex_tool, _li_sync, _li_read),
    "llamaindex-acall": InvocationPath(llamaindex_tool, _li_async, _li_read),
    "openai_agents-on_invoke_tool": InvocationPath(openai_agents_tool, _agents, _agents_read),
    "pydantic_ai-run_sync": InvocationPath(pydantic_ai_tool, _pai_sync, _pai_read, _pai_refuses),
    "pydantic_ai-run": InvocationPath(pydantic_ai_tool, _pai_async, _pai_read, _pai_refuses),
}
