"""``ailink demo crewai``: one CrewAI agent with one task, its LLM and its tool both behind the gateway.

The emulator's scripted mock LLM (``env.script_demo_tool_calls()``) drives CrewAI's native tool
calling through :func:`crewai_ailink.crewai_llm`, so the LLM calls appear in the session trace
next to the tool calls. Approvals are decided by the runner's reviewer thread. Nothing is printed.
"""

from __future__ import annotations

from typing import Any

from ailink.demo import DemoEnv, DemoOutcome

TASK_DESCRIPTION = (
    "Look up customer cus_001 (GET /v1/customers/cus_001), charge them 250000 cents in usd for the "
    "annual plan (POST /v1/charges), then refund charge ch_demo_1 by 1200 cents (POST /v1/refunds). "
    "Report what happened to each action."
)


def _artifact_of(raw: Any) -> dict[str, Any] | None:
    """The core's artifact of one AIlink tool call, from the raw result CrewAI saw."""
    from crewai.tools import ToolFailure

    artifact = getattr(raw, "artifact", None)
    if isinstance(artifact, dict):
        return dict(artifact)
    if isinstance(raw, ToolFailure):
        return dict(raw.details)
    return None


def run(env: DemoEnv) -> DemoOutcome:
    """Run the demo crew against ``env``; returns its final answer and one artifact per tool call."""
    from crewai import Agent, Crew, CrewOutput, Task
    from crewai.hooks import ToolCallHookContext, register_after_tool_call_hook, unregister_after_tool_call_hook

    from crewai_ailink import ailink_session, crewai_llm, crewai_tool

    env.script_demo_tool_calls()
    llm = crewai_llm(**env.llm_options())
    tool = crewai_tool(**env.tool_options())
    agent = Agent(
        role="Billing agent",
        goal="Carry out billing requests through the payments API, within company policy.",
        backstory="You handle customer billing. Some actions need a human's approval; some are blocked.",
        tools=[tool],
        llm=llm,
        verbose=False,
        # The gateway tool already caps its results (max_response_chars); CrewAI's context-window
        # bookkeeping would only log token-count estimates for the gateway's model name.
        respect_context_window=False,
        use_better_compaction=False,
        max_iter=8,
    )
    task = Task(
        name="annual-plan-billing",
        description=TASK_DESCRIPTION,
        expected_output="One line per action saying whether it was done, approved, rejected or blocked.",
        agent=agent,
    )
    crew = Crew(name="billing-crew", agents=[agent], tasks=[task], verbose=False)

    artifacts: list[dict[str, Any]] = []

    def record(context: ToolCallHookContext) -> None:
        artifact = _artifact_of(context.raw_tool_result)
        if artifact is not None:
            artifacts.append(artifact)

    register_after_tool_call_hook(record)
    try:
        with ailink_session(env.session_id):
            output = crew.kickoff()
    finally:
        unregister_after_tool_call_hook(record)
    assert isinstance(output, CrewOutput), "the demo crew does not stream"
    return DemoOutcome(final_answer=output.raw, tool_artifacts=artifacts)
