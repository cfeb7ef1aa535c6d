"""Pydantic AI: an ``Agent`` with ``pydantic_ai_model`` and ``pydantic_ai_tool``; events are the tool's spans,
read by a recording tracer given to the agent's instrumentation; the pause is ``ApprovalRequired`` →
``DeferredToolRequests``, carried to the second process as the message history and the requests (JSON),
resumed with ``DeferredToolResults`` (approved, or denied with ``pydantic_ai_ailink.deny``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance_harness import REJECTION, Env, FrameworkDriver, Run, Seen
from opentelemetry.trace import INVALID_SPAN, NoOpTracer, NoOpTracerProvider, Span, Tracer
from pydantic import TypeAdapter
from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, ModelMessagesTypeAdapter
from pydantic_ai.messages import ModelRequest, RetryPromptPart, ToolReturnPart
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.toolsets import FunctionToolset
from pydantic_ai_ailink import (
    APPROVAL_PENDING_SPAN,
    APPROVAL_RESOLVED_SPAN,
    deny,
    pydantic_ai_model,
    pydantic_ai_tool,
    pydantic_ai_tools,
)

_KINDS = {APPROVAL_PENDING_SPAN: "pending", APPROVAL_RESOLVED_SPAN: "resolved"}
_REQUESTS = TypeAdapter(DeferredToolRequests)


class _ApprovalSpans(NoOpTracer):
    """Records the approval spans the tool starts (every other span stays a no-op)."""

    def __init__(self, seen: list[tuple[str, str | None]]) -> None:
        self.seen = seen

    def start_span(self, name: str, *args: Any, attributes: Mapping[str, Any] | None = None,
                   **kwargs: Any) -> Span:
        if name in _KINDS:
            self.seen.append((_KINDS[name], (attributes or {}).get("ailink.approval_id")))
        return INVALID_SPAN


class _Tracers(NoOpTracerProvider):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        return _ApprovalSpans(self.seen)


def _calls(messages: Sequence[Any], tools: set[str]) -> list[Seen]:
    """Each answer to a call of the agent's tools (failed or denied: an error), and Pydantic AI's own
    answer to a call of a tool it lacks."""
    parts = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts]
    return [Seen.of(p.outcome != "success", str(p.content), p.metadata) if isinstance(p, ToolReturnPart)
            else Seen.of(True, p.model_response(), None) for p in parts
            if (isinstance(p, ToolReturnPart) and p.tool_name in tools)
            or (isinstance(p, RetryPromptPart) and p.tool_name is not None and p.tool_name not in tools)]


class PydanticAIDriver(FrameworkDriver):
    name = "pydantic_ai"
    pauses = True

    @staticmethod
    def _agent(env: Env, on_approval: str = "wait") -> Agent[None, Any]:
        tools = pydantic_ai_tools(**env.openapi_options(), on_approval=on_approval) if env.openapi \
            else [pydantic_ai_tool(**env.tool_options(), on_approval=on_approval)]
        return Agent(pydantic_ai_model(**env.llm_options()), tools=tools, output_type=[str, DeferredToolRequests])

    def _run(self, env: Env, on_approval: str = "wait", state: Path | None = None,
             agent: Agent[None, Any] | None = None, **run: Any) -> Run:
        tracers = _Tracers()
        agent = agent or self._agent(env, on_approval)
        tools = {name for toolset in agent.toolsets if isinstance(toolset, FunctionToolset) for name in toolset.tools}
        agent.instrument = InstrumentationSettings(tracer_provider=tracers)  # what ``logfire`` would set
        result = agent.run_sync(None if run else "go", conversation_id=env.session_id, **run)
        outcome = Run(_calls(result.new_messages(), tools), tracers.seen)
        if isinstance(result.output, DeferredToolRequests):
            assert state is not None, "paused outside the pause scenario"
            [call] = result.output.approvals
            outcome.paused_on = result.output.metadata[call.tool_call_id]["approval_id"]
            state.write_text(json.dumps({"messages": ModelMessagesTypeAdapter.dump_python(result.all_messages(),
                                                                                         mode="json"),
                                         "requests": _REQUESTS.dump_python(result.output, mode="json")}))
        else:
            outcome.final_answer = result.output
        return outcome

    def run(self, env: Env) -> Run:
        return self._run(env)

    def pause(self, env: Env, state: Path) -> Run:
        return self._run(env, "defer", state)

    def resume(self, env: Env, state: Path) -> Run:
        saved = json.loads(state.read_text())
        requests = _REQUESTS.validate_python(saved["requests"])
        return self._run(env, "defer", message_history=ModelMessagesTypeAdapter.validate_python(saved["messages"]),
                         deferred_tool_results=requests.build_results(approve_all=True))

    def reject(self, env: Env, state: Path) -> Run:
        saved = json.loads(state.read_text())
        requests = _REQUESTS.validate_python(saved["requests"])
        agent = self._agent(env, "defer")

        async def denials() -> DeferredToolResults:
            return DeferredToolResults(approvals={call.tool_call_id: await deny(agent, requests, call.tool_call_id,
                                                                                REJECTION)
                                                  for call in requests.approvals})

        return self._run(env, agent=agent, message_history=ModelMessagesTypeAdapter.validate_python(saved["messages"]),
                         deferred_tool_results=asyncio.run(denials()))


DRIVER = PydanticAIDriver()
