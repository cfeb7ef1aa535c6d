"""A ``create_agent`` agent with a scripted fake model and the AIlink tool, against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_support import BLOCK_REFUNDS, CUSTOMER, REFUND, calls, charge, charges_need_approval, scripted

from ailink.testing import EmulatorGateway


def run_agent(tool: Any, *responses: AIMessage, session: str = "sess-agent") -> tuple[list[Any], Any]:
    model = scripted(*responses, AIMessage(content="All done."))
    agent = create_agent(model, tools=[tool])
    result = agent.invoke({"messages": [("user", "do the billing")]},
                          config={"metadata": {"ailink_session_id": session}})
    return result["messages"], model


def tool_messages(messages: list[Any]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def test_an_allowed_call(make_tool: Any) -> None:
    messages, model = run_agent(make_tool(), calls(("call_1", CUSTOMER)))
    (message,) = tool_messages(messages)
    assert message.status == "success" and message.tool_call_id == "call_1"
    assert message.artifact["body"]["id"] == "cus_001"
    assert messages[-1].content == "All done."
    assert model.seen[1][-1].content.startswith("HTTP 200 from GET /v1/customers/cus_001")


def test_a_denied_call_lets_the_model_see_the_policy(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    messages, model = run_agent(make_tool(BLOCK_REFUNDS), calls(("call_r", REFUND)))
    (message,) = tool_messages(messages)
    assert message.status == "error"
    shown = model.seen[1][-1]
    assert isinstance(shown, ToolMessage) and "block-refunds" in shown.content
    assert messages[-1].content == "All done."  # the loop went on
    assert ailink_gateway.payments_stats()["refunds"] == 0


def test_an_approved_call(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    approver = ailink_gateway.approve_when_pending(count=1)
    messages, _ = run_agent(make_tool(charges_need_approval()), calls(("call_c", charge(250000))))
    (decided,) = approver.join()
    (message,) = tool_messages(messages)
    assert message.status == "success"
    assert message.artifact["approval_id"] == decided
    assert message.artifact["body"]["amount"] == 250000
    assert ailink_gateway.payments_stats()["charges"] == 1


def test_a_rejected_call(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    approver = ailink_gateway.approve_when_pending(count=1, decision="rejected", reason="too large")
    messages, model = run_agent(make_tool(charges_need_approval()), calls(("call_c", charge(250000))))
    approver.join()
    (message,) = tool_messages(messages)
    assert message.status == "error"
    assert message.artifact["status"] == "rejected" and message.artifact["reason"] == "too large"
    assert "rejected" in model.seen[1][-1].content
    assert ailink_gateway.payments_stats()["charges"] == 0


def test_a_timed_out_call(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    messages, model = run_agent(make_tool(charges_need_approval("1s"), approval_timeout=5),
                                calls(("call_c", charge(250000))))
    (message,) = tool_messages(messages)
    assert message.status == "error"
    assert message.artifact["status"] == "timed_out"
    assert "NOT performed" in model.seen[1][-1].content
    assert ailink_gateway.payments_stats()["charges"] == 0


@pytest.mark.parametrize("use_async", [False, True])
async def test_two_parallel_tool_calls_keep_their_own_ids(make_tool: Any, ailink_gateway: EmulatorGateway,
                                                          use_async: bool) -> None:
    model = scripted(calls(("call_a", charge(111)), ("call_b", charge(222))), AIMessage(content="Both done."))
    agent = create_agent(model, tools=[make_tool()])
    config: Any = {"metadata": {"ailink_session_id": "sess-parallel"}}
    inputs = {"messages": [("user", "two charges")]}
    result = await agent.ainvoke(inputs, config) if use_async else agent.invoke(inputs, config)
    by_id = {m.tool_call_id: m for m in tool_messages(result["messages"])}
    assert set(by_id) == {"call_a", "call_b"}
    assert by_id["call_a"].artifact["body"]["amount"] == 111
    assert by_id["call_b"].artifact["body"]["amount"] == 222
    keys = {cid: m.artifact["idempotency_key"] for cid, m in by_id.items()}
    assert keys["call_a"] != keys["call_b"]
    # each gateway request says which ToolCall it belongs to
    session = ailink_gateway.session("sess-parallel")
    recorded = {r["idempotency_key"]: r["properties"]["tool_call_id"] for r in session["requests"]}
    assert recorded == {keys["call_a"]: "call_a", keys["call_b"]: "call_b"}
    assert ailink_gateway.payments_stats()["charges"] == 2
