"""A gateway that is down, refuses the token or answers garbage never ends a LangGraph agent run."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_ailink import langchain_tool
from langchain_core.messages import AIMessage, ToolMessage
from langchain_support import calls, charge, scripted

TOKEN = "ailink_v1_agent_failure_token"
# protocol §10.3: nothing was sent or the gateway refused → request failed; a POST whose answer
# could not be read may have been performed → outcome unknown
EXPECTED = {"unreachable": "error", "unauthorized": "error", "not_http": "outcome_unknown"}


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize("kind", list(EXPECTED))
async def test_the_agent_run_completes_and_the_model_reads_the_error(kind: str, use_async: bool,
                                                                     failing_gateway: Any) -> None:
    tool = langchain_tool(token=TOKEN, name="payments_api", description="Call the payments API.",
                          methods=["GET", "POST"], gateway_url=failing_gateway(kind), retries=0)
    model = scripted(calls(("call_pay", charge(700))), AIMessage(content="I could not charge the customer."))
    agent = create_agent(model, tools=[tool])
    inputs: Any = {"messages": [("user", "charge cus_001")]}
    result = await agent.ainvoke(inputs) if use_async else agent.invoke(inputs)

    assert result["messages"][-1].content == "I could not charge the customer."  # the loop went on
    (message,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error" and message.tool_call_id == "call_pay"
    assert message.artifact["status"] == EXPECTED[kind]
    shown = model.seen[1][-1]  # what the model was given on its second turn
    assert isinstance(shown, ToolMessage) and shown.content == message.content
    assert isinstance(shown.content, str) and shown.content.strip() and TOKEN not in shown.content
    if EXPECTED[kind] == "outcome_unknown":
        assert message.artifact["idempotency_key"] in shown.content  # the key to re-send with
