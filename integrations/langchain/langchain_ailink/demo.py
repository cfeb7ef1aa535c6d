"""``ailink demo langchain``: a ``create_agent`` agent whose model and tool both go through the gateway.

The emulator's scripted mock LLM (``env.script_demo_tool_calls()``) drives :class:`ChatAIlink`'s
tool calling; the payments tool waits in place for approvals, which the runner's reviewer thread
decides. The run's metadata carries the demo's session id, so every LLM and tool request of the
run lands in that one session. Nothing is printed.
"""

from __future__ import annotations

from typing import Any

# Imported when `ailink demo` loads the scenario, so a missing `langchain-ailink[agents]` is named
# before the demo starts (langchain and langchain-openai are that extra, not dependencies).
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from ailink.demo import DemoEnv, DemoOutcome
from langchain_ailink import AIlinkCallbackHandler, langchain_tool
from langchain_ailink.chat_models import ChatAIlink

SYSTEM_PROMPT = (
    "You handle customer billing through the payments API. Look up the customer, charge the annual "
    "plan, then refund the old charge. Some actions need a human's approval; some are blocked by policy."
)
USER_REQUEST = "Bill customer cus_demo_42 for the annual plan (250000 cents) and refund charge ch_demo_1 (1200 cents)."


def run(env: DemoEnv) -> DemoOutcome:
    """Run the demo agent against ``env``; returns its final answer and one artifact per tool call."""
    env.script_demo_tool_calls()
    model = ChatAIlink(**env.llm_options())
    tool = langchain_tool(**env.tool_options())
    agent = create_agent(model, tools=[tool], system_prompt=SYSTEM_PROMPT, name="billing-agent")
    config: RunnableConfig = {
        "metadata": {"ailink_session_id": env.session_id},
        "callbacks": [AIlinkCallbackHandler()],
        "recursion_limit": 20,
    }
    result = agent.invoke({"messages": [HumanMessage(USER_REQUEST)]}, config)
    messages: list[Any] = result["messages"]
    artifacts = [dict(m.artifact) for m in messages if isinstance(m, ToolMessage) and isinstance(m.artifact, dict)]
    final = next((m for m in reversed(messages) if isinstance(m, AIMessage) and not m.tool_calls), None)
    return DemoOutcome(final_answer=str(final.content) if final is not None else "", tool_artifacts=artifacts)
