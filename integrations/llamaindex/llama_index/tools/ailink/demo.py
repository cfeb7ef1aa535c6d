"""``ailink demo llamaindex``: a LlamaIndex ``FunctionAgent`` whose LLM and tool both go through the gateway.

The emulator's scripted mock LLM (``env.script_demo_tool_calls()``) drives the agent through
``AIlink`` (the drop-in LLM), so the LLM calls appear in the session trace next to the tool calls.
Approvals are decided by the runner's reviewer thread while the tool waits. Nothing is printed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ailink.demo import DemoEnv, DemoOutcome

SYSTEM_PROMPT = (
    "You handle customer billing through the payments API tool. Some actions need a human's approval; "
    "some are blocked by policy. Never retry a blocked or rejected action. Report what happened to each action."
)
REQUEST = (
    "Look up customer cus_001 (GET /v1/customers/cus_001), charge them 250000 cents in usd for the "
    "annual plan (POST /v1/charges), then refund charge ch_demo_1 by 1200 cents (POST /v1/refunds)."
)


async def _run_agent(agent: Any, artifacts: list[dict[str, Any]]) -> str:
    from llama_index.core.agent.workflow import ToolCallResult

    handler = agent.run(REQUEST)
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult) and isinstance(event.tool_output.raw_output, dict):
            artifacts.append(dict(event.tool_output.raw_output))
    result = await handler
    return str(result)


def run(env: DemoEnv) -> DemoOutcome:
    """Run the demo agent against ``env``; returns its final answer and one artifact per tool call."""
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.llms.ailink import AIlink
    from llama_index.tools.ailink import ailink_session, llamaindex_tool

    env.script_demo_tool_calls()
    llm = AIlink(**env.llm_options())
    tool = llamaindex_tool(**env.tool_options())
    agent = FunctionAgent(name="billing-agent", tools=[tool], llm=llm, system_prompt=SYSTEM_PROMPT)
    artifacts: list[dict[str, Any]] = []
    with ailink_session(env.session_id):
        # The scenario is an application entry point (sync), so it may own the event loop.
        final_answer = asyncio.run(_run_agent(agent, artifacts))
    return DemoOutcome(final_answer=final_answer, tool_artifacts=artifacts)
