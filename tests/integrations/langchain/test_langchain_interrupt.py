"""on_approval="interrupt": LangGraph pauses with the approval, resumes with Command(resume=...)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_support import calls, charge, charges_need_approval, scripted
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import ailink
from ailink.testing import EmulatorGateway


def make_agent(tool: Any) -> Any:
    model = scripted(calls(("call_charge", charge(250000))), AIMessage(content="Charged."))
    return create_agent(model, tools=[tool], checkpointer=InMemorySaver())


@pytest.mark.parametrize("use_async", [False, True])
async def test_pause_decide_resume(make_tool: Any, ailink_gateway: EmulatorGateway, use_async: bool) -> None:
    tool = make_tool(charges_need_approval(), on_approval="interrupt")
    agent = make_agent(tool)
    config: Any = {"configurable": {"thread_id": "thread-7"}}

    async def invoke(value: Any) -> Any:
        return await agent.ainvoke(value, config) if use_async else agent.invoke(value, config)

    first = await invoke({"messages": [("user", "charge the annual plan")]})
    (pause,) = first["__interrupt__"]
    payload = pause.value
    (pending,) = ailink_gateway.pending_approvals()
    assert payload["type"] == "ailink.approval"
    assert payload["approval_id"] == pending["id"]
    assert payload["summary"] == {"method": "POST", "path": "/v1/charges"}
    assert payload["expires_at"] and payload["tool"] == "payments_api"
    assert payload["tool_call_id"] == "call_charge" and payload["session_id"] == "thread-7"
    # the key is the one derived from (thread_id, ToolCall id, tool, args): stable across resume
    expected_key = tool.gateway.prepare(charge(250000), ailink.CallContext(session_id="thread-7",
                                                                           call_id="call_charge"))[1]
    assert payload["idempotency_key"] == expected_key
    assert ailink_gateway.payments_stats()["charges"] == 0

    # resumed while still pending: the tool re-sends, re-attaches, and pauses again
    again = await invoke(Command(resume="is it decided?"))
    (second_pause,) = again["__interrupt__"]
    assert second_pause.value["approval_id"] == pending["id"]
    assert second_pause.value["idempotency_key"] == expected_key
    assert [a["id"] for a in ailink_gateway.pending_approvals()] == [pending["id"]]  # no second approval

    ailink_gateway.admin.approvals.approve(pending["id"])
    done = await invoke(Command(resume="approved"))
    assert "__interrupt__" not in done
    (message,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "success" and message.tool_call_id == "call_charge"
    assert message.artifact["approval_id"] == pending["id"]
    assert message.artifact["idempotency_key"] == expected_key
    assert done["messages"][-1].content == "Charged."
    stats = ailink_gateway.payments_stats()
    assert stats["total_executions"] == 1
    assert stats["by_idempotency_key"] == {expected_key: 1}


def test_a_rejection_reaches_the_model_after_resume(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    agent = make_agent(make_tool(charges_need_approval(), on_approval="interrupt"))
    config: Any = {"configurable": {"thread_id": "thread-r"}}
    first = agent.invoke({"messages": [("user", "charge")]}, config)
    approval_id = first["__interrupt__"][0].value["approval_id"]
    ailink_gateway.decide(approval_id, "rejected", "not this month")
    done = agent.invoke(Command(resume="rejected"), config)
    (message,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error" and message.artifact["status"] == "rejected"
    assert "not this month" in message.content
    assert ailink_gateway.payments_stats()["charges"] == 0


@pytest.mark.parametrize("answer", [
    {"decisions": [{"type": "reject", "message": "the customer cancelled"}]},  # a HITLResponse
    {"type": "reject", "message": "the customer cancelled"},  # the decision alone (per-call HITL)
])
def test_a_reject_decision_withdraws_the_approval(make_tool: Any, ailink_gateway: EmulatorGateway,
                                                  answer: dict[str, Any]) -> None:
    agent = make_agent(make_tool(charges_need_approval(), on_approval="interrupt"))
    config: Any = {"configurable": {"thread_id": "thread-reject"}}
    first = agent.invoke({"messages": [("user", "charge")]}, config)
    approval_id = first["__interrupt__"][0].value["approval_id"]

    done = agent.invoke(Command(resume=answer), config)
    assert "__interrupt__" not in done and done["messages"][-1].content == "Charged."  # the run went on
    (message,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error" and message.artifact["status"] == "rejected"
    assert message.artifact["approval_id"] == approval_id and message.artifact["reason"] == "the customer cancelled"
    assert f"rejected (approval {approval_id} withdrawn): the customer cancelled" in message.content
    assert ailink_gateway.admin.approvals.get(approval_id).status == "cancelled"
    # a reviewer approving it afterwards changes nothing
    assert ailink_gateway.decide(approval_id, "approved")["updated"] is False
    assert ailink_gateway.payments_stats()["total_executions"] == 0


def test_an_edit_decision_withdraws_too_and_other_resume_values_look_again(make_tool: Any,
                                                                           ailink_gateway: EmulatorGateway) -> None:
    agent = make_agent(make_tool(charges_need_approval(), on_approval="interrupt"))
    config: Any = {"configurable": {"thread_id": "thread-edit"}}
    approval_id = agent.invoke({"messages": [("user", "charge")]}, config)["__interrupt__"][0].value["approval_id"]
    again = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    assert again["__interrupt__"][0].value["approval_id"] == approval_id  # approve = look again: still pending
    edit = {"type": "edit", "edited_action": {"name": "payments_api", "args": charge(100)}}
    done = agent.invoke(Command(resume={"decisions": [edit]}), config)
    (message,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error" and message.artifact["status"] == "rejected"
    assert ailink_gateway.admin.approvals.get(approval_id).status == "cancelled"
    assert ailink_gateway.payments_stats()["total_executions"] == 0


def test_a_reject_decision_after_the_reviewer_approved_returns_the_performed_action(
    make_tool: Any, ailink_gateway: EmulatorGateway
) -> None:
    agent = make_agent(make_tool(charges_need_approval(), on_approval="interrupt"))
    config: Any = {"configurable": {"thread_id": "thread-late"}}
    approval_id = agent.invoke({"messages": [("user", "charge")]}, config)["__interrupt__"][0].value["approval_id"]
    ailink_gateway.decide(approval_id, "approved")
    done = agent.invoke(Command(resume={"decisions": [{"type": "reject"}]}), config)
    (message,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "success" and message.artifact["approval_id"] == approval_id  # the model reads the truth
    assert ailink_gateway.payments_stats()["total_executions"] == 1


def test_outside_a_graph_interrupt_falls_back_to_waiting(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool(charges_need_approval(), on_approval="interrupt")
    approver = ailink_gateway.approve_when_pending(count=1)
    with pytest.warns(RuntimeWarning, match="needs a LangGraph graph with a checkpointer"):
        message = tool.invoke({"type": "tool_call", "id": "call_1", "name": "payments_api", "args": charge()})
    approver.join()
    assert message.status == "success"
    assert ailink_gateway.payments_stats()["charges"] == 1


@pytest.mark.parametrize("ailink_gateway", ["real"], indirect=True)
def test_on_a_gateway_that_holds_the_call_the_graph_runs_through(make_tool: Any, ailink_gateway: EmulatorGateway
                                                                 ) -> None:
    """The real gateway never answers 202, so there is nothing to pause on: the held call ends with the
    decision inside the same run (one approval, one execution)."""
    agent = make_agent(make_tool(charges_need_approval(), on_approval="interrupt"))
    approver = ailink_gateway.approve_when_pending(count=1)
    done = agent.invoke({"messages": [("user", "charge")]}, {"configurable": {"thread_id": "thread-held"}})
    approver.join()
    assert "__interrupt__" not in done
    (message,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "success" and message.artifact["body"]["amount"] == 250000
    assert ailink_gateway.payments_stats()["charges"] == 1 and len(ailink_gateway.approvals()) == 1
