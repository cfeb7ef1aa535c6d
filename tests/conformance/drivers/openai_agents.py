"""OpenAI Agents SDK: an ``Agent`` with ``openai_agents_model`` and ``openai_agents_tool``; events are the
tool's custom spans, read by a trace processor (the only one: the SDK exports nothing); the pause is the
run's interruption, carried to the second process as the ``RunState`` JSON, resumed with ``approve`` or
rejected with ``agents_ailink.reject``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner, RunState, ToolCallOutputItem
from agents.tracing import Span, Trace, TracingProcessor, set_trace_processors
from agents.tracing.span_data import CustomSpanData
from agents_ailink import (
    APPROVAL_PENDING_SPAN,
    APPROVAL_RESOLVED_SPAN,
    openai_agents_model,
    openai_agents_tool,
    openai_agents_tools,
    reject,
)
from conformance_harness import REJECTION, Env, FrameworkDriver, Run, Seen

_KINDS = {APPROVAL_PENDING_SPAN: "pending", APPROVAL_RESOLVED_SPAN: "resolved"}


class _ApprovalSpans(TracingProcessor):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def on_span_end(self, span: Span[Any]) -> None:
        data = span.span_data
        if isinstance(data, CustomSpanData) and data.name in _KINDS:
            self.seen.append((_KINDS[data.name], data.data.get("approval_id")))

    def on_trace_start(self, trace: Trace) -> None:
        pass

    def on_trace_end(self, trace: Trace) -> None:
        pass

    def on_span_start(self, span: Span[Any]) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


def _seen(output: Any) -> Seen:
    return Seen.of(bool(getattr(output, "is_error", False)), str(output), getattr(output, "artifact", None))


class OpenAIAgentsDriver(FrameworkDriver):
    name = "openai_agents"
    pauses = True

    def _agent(self, env: Env, on_approval: str = "wait") -> Agent[Any]:
        return Agent(name="conformance-agent", instructions="Carry out the billing actions you are asked for.",
                     model=openai_agents_model(**env.llm_options()),
                     tools=openai_agents_tools(**env.openapi_options(), on_approval=on_approval) if env.openapi
                     else [openai_agents_tool(**env.tool_options(), on_approval=on_approval)])

    def _run(self, env: Env, agent: Agent[Any], start: Any, state: Path | None = None) -> Run:
        spans = _ApprovalSpans()
        set_trace_processors([spans])
        result = asyncio.run(self._drive(env, agent, start))
        run = Run([_seen(item.output) for item in result.new_items if isinstance(item, ToolCallOutputItem)],
                  spans.seen)
        if result.interruptions and state is not None:
            state.write_text(json.dumps(result.to_state().to_json()))
            run.paused_on = spans.seen[-1][1]
        else:
            run.final_answer = str(result.final_output)
        return run

    @staticmethod
    async def _drive(env: Env, agent: Agent[Any], start: Any) -> Any:
        value = await start() if callable(start) else start
        return await Runner.run(agent, value, run_config=RunConfig(group_id=env.session_id,
                                                                   tool_not_found_behavior="return_error_to_model"))

    def run(self, env: Env) -> Run:
        return self._run(env, self._agent(env), "go")

    def pause(self, env: Env, state: Path) -> Run:
        return self._run(env, self._agent(env, "interrupt"), "go", state)

    def resume(self, env: Env, state: Path, rejecting: bool = False) -> Run:
        agent = self._agent(env, "interrupt")

        async def restored() -> RunState[Any, Agent[Any]]:
            run_state = await RunState.from_json(agent, json.loads(state.read_text()))
            for item in run_state.get_interruptions():
                if rejecting:
                    await reject(run_state, item, message=REJECTION)
                else:
                    run_state.approve(item)
            return run_state

        return self._run(env, agent, restored)

    def reject(self, env: Env, state: Path) -> Run:
        return self.resume(env, state, rejecting=True)


DRIVER = OpenAIAgentsDriver()
