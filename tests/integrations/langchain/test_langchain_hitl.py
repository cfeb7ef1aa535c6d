"""The approval interrupt speaks LangChain's HITL format, and the tool works under ``HumanInTheLoopMiddleware``.

``HumanInTheLoopMiddleware`` asks a human *in the graph* before a tool runs; the gateway decides
*outside* it. Both pauses carry a ``HITLRequest`` (``action_requests``, ``review_configs``), so one
resume loop (and HITL UIs such as Agent Inbox) handles both.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain.agents.middleware.human_in_the_loop import HITLRequest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_support import calls, charge, charges_need_approval, scripted
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import TypeAdapter

from ailink.testing import EmulatorGateway

HITL_REQUEST = TypeAdapter(HITLRequest)


def test_the_approval_interrupt_is_a_valid_hitl_request(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool(charges_need_approval(), on_approval="interrupt")
    agent = create_agent(scripted(calls(("call_charge", charge(250000))), AIMessage(content="Charged.")),
                         tools=[tool], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "hitl-1"}}

    state = agent.invoke({"messages": [("user", "charge the annual plan")]}, config)
    payload = state["__interrupt__"][0].value
    (pending,) = ailink_gateway.pending_approvals()
    HITL_REQUEST.validate_python({k: payload[k] for k in ("action_requests", "review_configs")})
    (action,) = payload["action_requests"]
    assert action["name"] == "payments_api" and action["args"] == charge(250000)  # what the reviewer sees
    assert pending["id"] in action["description"] and "POST /v1/charges" in action["description"]
    assert payload["review_configs"] == [{"action_name": "payments_api", "allowed_decisions": ["approve", "reject"]}]
    assert payload["approval_id"] == pending["id"]  # the AIlink fields are still there

    # a HITL UI's answer resumes the graph; the gateway's decision is what counts
    again = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    assert again["__interrupt__"][0].value["approval_id"] == pending["id"]  # still pending on the gateway
    assert ailink_gateway.payments_stats()["charges"] == 0
    ailink_gateway.admin.approvals.approve(pending["id"])
    done = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    (message,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "success" and ailink_gateway.payments_stats()["charges"] == 1


def test_the_tool_under_human_in_the_loop_middleware(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool(charges_need_approval(), on_approval="interrupt")
    middleware = HumanInTheLoopMiddleware(interrupt_on={"payments_api": True})
    agent = create_agent(scripted(calls(("call_charge", charge(250000))), AIMessage(content="Charged.")),
                         tools=[tool], middleware=[middleware], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "hitl-2"}}

    kinds: list[str] = []
    state = agent.invoke({"messages": [("user", "charge the annual plan")]}, config)
    while "__interrupt__" in state:  # one loop for both pauses: each is a HITLRequest
        payload = state["__interrupt__"][0].value
        HITL_REQUEST.validate_python({k: payload[k] for k in ("action_requests", "review_configs")})
        assert payload["action_requests"][0]["name"] == "payments_api"
        kinds.append(payload.get("type", "middleware"))
        if payload.get("type") == "ailink.approval":
            ailink_gateway.admin.approvals.approve(payload["approval_id"])
        state = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)

    # the middleware asked first (in the graph), then the gateway's policy parked the charge
    assert kinds == ["middleware", "ailink.approval"]
    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "success" and ailink_gateway.payments_stats()["charges"] == 1
