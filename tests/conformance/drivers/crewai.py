"""CrewAI: one agent and one task with ``crewai_llm`` and ``crewai_tool``; events on ``crewai_event_bus``;
a tool's answer read by an after-tool-call hook. CrewAI cannot pause a tool: no pause scenario."""

from __future__ import annotations

from typing import Any

from conformance_harness import Env, FrameworkDriver, Run, Seen
from crewai import Agent, Crew, Task
from crewai.events import crewai_event_bus
from crewai.hooks import ToolCallHookContext, register_after_tool_call_hook, unregister_after_tool_call_hook
from crewai.tools import ToolFailure
from crewai_ailink import (
    AIlinkApprovalPendingEvent,
    AIlinkApprovalResolvedEvent,
    ailink_session,
    crewai_llm,
    crewai_tool,
    crewai_tools,
)


def _seen(raw: Any) -> Seen:
    if isinstance(raw, ToolFailure):
        return Seen.of(True, raw.as_agent_message(), raw.details)
    return Seen.of(False, str(raw), getattr(raw, "artifact", None))


class CrewAIDriver(FrameworkDriver):
    name = "crewai"

    def run(self, env: Env) -> Run:
        tools = crewai_tools(**env.openapi_options()) if env.openapi else [crewai_tool(**env.tool_options())]
        agent = Agent(role="Billing clerk", goal="Run the billing actions you are asked for.",
                      backstory="You use the payments API.", tools=tools,
                      llm=crewai_llm(**env.llm_options()), verbose=False, respect_context_window=False,
                      use_better_compaction=False, max_iter=8)
        task = Task(description="Carry out the billing actions.", expected_output="What happened.", agent=agent)
        crew = Crew(agents=[agent], tasks=[task], verbose=False)
        run = Run()

        def record(context: ToolCallHookContext) -> None:
            run.calls.append(_seen(context.raw_tool_result))

        with crewai_event_bus.scoped_handlers():

            @crewai_event_bus.on(AIlinkApprovalPendingEvent)
            def on_pending(source: Any, event: Any) -> None:
                run.events.append(("pending", event.approval_id))

            @crewai_event_bus.on(AIlinkApprovalResolvedEvent)
            def on_resolved(source: Any, event: Any) -> None:
                run.events.append(("resolved", event.approval_id))

            register_after_tool_call_hook(record)
            try:
                with ailink_session(env.session_id):
                    run.final_answer = str(crew.kickoff().raw)
            finally:
                unregister_after_tool_call_hook(record)
                crewai_event_bus.flush()
        return run


DRIVER = CrewAIDriver()
