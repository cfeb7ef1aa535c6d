"""A ``create_agent`` agent with a scripted fake model and the AIlink tool, against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_support import BLOCK_REFUNDS, CUSTOMER, REFUND, calls, charge, charges_need_approval, scripted
from profiles import both_profiles

from ailink.testing import EmulatorGateway


def run_agent(tool: Any, *responses: AIMessage, session: str = "sess-agent") -> tuple[list[Any], Any]:
    model = scripted(*responses, AIMessage(content="All done."))
    agent = create_agent(model, tools=[tool])
    result = agent.invoke({"messages": [("user", "do the billing")]},
                          config={"metadata": {"ailink_session_id": session}})
    return result["messages"], model


async def arun_agent(tool: Any, *responses: AIMessage, session: str = "sess-agent") -> tuple[list[Any], Any]:
    """:func:`run_agent` on the async path (``ainvoke``: the tool's async driver)."""
    model = scripted(*responses, AIMessage(content="All done."))
    agent = create_agent(model, tools=[tool])
    result = await agent.ainvoke({"messages": [("user", "do the billing")]},
                                 config={"metadata": {"ailink_session_id": session}})
    return result["messages"], model


async def run_agent_in_thread(tool: Any, *responses: AIMessage) -> tuple[list[Any], Any]:
    """:func:`run_agent` (the sync path) from a worker thread, as a sync caller inside a loop would."""
    return await asyncio.to_thread(run_agent, tool, *responses)


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


@both_profiles
@pytest.mark.parametrize("use_async", [False, True])
async def test_an_approved_call(make_tool: Any, ailink_gateway: EmulatorGateway, use_async: bool) -> None:
    approver = ailink_gateway.approve_when_pending(count=1)
    run = arun_agent if use_async else run_agent_in_thread
    messages, _ = await run(make_tool(charges_need_approval()), calls(("call_c", charge(250000))))
    (decided,) = approver.join()
    (message,) = tool_messages(messages)
    assert message.status == "success"
    # a gateway that holds the request never names its approval
    assert message.artifact["approval_id"] == (decided if ailink_gateway.serves_extensions else None)
    assert message.artifact["body"]["amount"] == 250000
    assert ailink_gateway.payments_stats()["charges"] == 1
    assert len(ailink_gateway.approvals()) == 1


@both_profiles
def test_a_rejected_call(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    approver = ailink_gateway.approve_when_pending(count=1, decision="rejected", reason="too large")
    messages, model = run_agent(make_tool(charges_need_approval()), calls(("call_c", charge(250000))))
    approver.join()
    (message,) = tool_messages(messages)
    assert message.status == "error"
    # the reviewer's reason reaches the agent only through the extension's approval status
    assert message.artifact["status"] == "rejected"
    assert message.artifact["reason"] == ("too large" if ailink_gateway.serves_extensions else None)
    assert "rejected" in model.seen[1][-1].content and "approval None" not in model.seen[1][-1].content
    assert ailink_gateway.payments_stats()["charges"] == 0
    assert len(ailink_gateway.approvals()) == 1


@both_profiles
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
