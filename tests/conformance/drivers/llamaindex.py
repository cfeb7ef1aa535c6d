"""LlamaIndex: a ``FunctionAgent`` with the ``AIlink`` LLM and ``llamaindex_tool``; events from the
instrumentation dispatcher; the pause is ``ctx.wait_for_event``, carried to the second process as
the serialised workflow ``Context``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from conformance_harness import REJECTION, Env, FrameworkDriver, Run, Seen
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.workflow import Context
from llama_index.llms.ailink import AIlink
from llama_index.tools.ailink import (
    AIlinkApprovalPendingEvent,
    AIlinkApprovalRequired,
    AIlinkApprovalResolvedEvent,
    AIlinkApprovalResponse,
    ailink_session,
    llamaindex_tool,
    llamaindex_tools,
)


class _Events(BaseEventHandler):
    seen: list[tuple[str, str | None]] = []

    @classmethod
    def class_name(cls) -> str:
        return "ConformanceEvents"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, (AIlinkApprovalPendingEvent, AIlinkApprovalResolvedEvent)):
            kind = "pending" if isinstance(event, AIlinkApprovalPendingEvent) else "resolved"
            self.seen.append((kind, event.approval_id))


@contextlib.contextmanager
def _recorded(run: Run) -> Iterator[None]:
    handler = _Events()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    try:
        yield
    finally:
        dispatcher.event_handlers.remove(handler)
        run.events.extend(handler.seen)


class LlamaIndexDriver(FrameworkDriver):
    name = "llamaindex"
    pauses = True

    def _agent(self, env: Env, on_approval: str = "wait") -> FunctionAgent:
        tools = llamaindex_tools(**env.openapi_options(), on_approval=on_approval).to_tool_list() if env.openapi \
            else [llamaindex_tool(**env.tool_options(), on_approval=on_approval)]
        return FunctionAgent(name="conformance-agent", llm=AIlink(**env.llm_options()), tools=tools)

    async def _drive(self, start: Callable[[], Any], run: Run, state: Path | None) -> None:
        handler = start()
        async for event in handler.stream_events():
            if isinstance(event, ToolCallResult):
                output = event.tool_output
                run.calls.append(Seen.of(output.is_error, output.content, output.raw_output))
            elif isinstance(event, AIlinkApprovalRequired) and state is not None:
                run.paused_on = event.approval_id
                state.write_text(json.dumps({"ctx": handler.ctx.to_dict(), "approval_id": event.approval_id}))
                await handler.cancel_run()
                return
        run.final_answer = str(await handler)

    def _run(self, env: Env, start: Callable[[], Any], state: Path | None = None) -> Run:
        run = Run()
        with _recorded(run), ailink_session(env.session_id):
            asyncio.run(self._drive(start, run, state))
        return run

    def run(self, env: Env) -> Run:
        agent = self._agent(env)
        return self._run(env, lambda: agent.run("go"))

    def pause(self, env: Env, state: Path) -> Run:
        agent = self._agent(env, "event")
        return self._run(env, lambda: agent.run("go"), state)

    def resume(self, env: Env, state: Path, **response: Any) -> Run:
        agent = self._agent(env, "event")
        saved = json.loads(state.read_text())

        def start() -> Any:
            handler = agent.run(ctx=Context.from_dict(agent, saved["ctx"]))
            handler.ctx.send_event(AIlinkApprovalResponse(approval_id=saved["approval_id"], **response))
            return handler

        return self._run(env, start)

    def reject(self, env: Env, state: Path) -> Run:
        return self.resume(env, state, reject=True, note=REJECTION)


DRIVER = LlamaIndexDriver()
