"""``llamaindex_tool`` inside a real ``FunctionAgent`` (scripted ``MockFunctionCallingLLM``), against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.tools import FunctionTool
from llama_index.tools.ailink import (
    AIlinkApprovalPending,
    AIlinkApprovalPendingEvent,
    AIlinkApprovalRequired,
    AIlinkApprovalResolvedEvent,
    AIlinkApprovalResponse,
    ailink_session,
    llamaindex_tool,
)
from profiles import both_profiles

from ailink.testing import EmulatorGateway

from .conftest import CHARGE, LOOKUP, REFUND, TOOL, approval_policy, scripted_llm


class _Recorder(BaseEventHandler):
    events: list[BaseEvent] = []

    @classmethod
    def class_name(cls) -> str:
        return "AIlinkTestRecorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, (AIlinkApprovalPendingEvent, AIlinkApprovalResolvedEvent)):
            self.events.append(event)


@pytest.fixture
def recorded() -> list[BaseEvent]:
    recorder = _Recorder(events=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(recorder)
    yield recorder.events
    dispatcher.event_handlers.remove(recorder)


def make_tool(gateway: EmulatorGateway, token: str, **options: Any) -> FunctionTool:
    return llamaindex_tool(
        token=token,
        name=TOOL,
        description="Payments API through the AIlink gateway.",
        methods=["GET", "POST"],
        gateway_url=gateway.url,
        agent_name="billing-agent",
        **options,
    )


async def run_agent(agent: FunctionAgent, message: str = "go", **kwargs: Any) -> tuple[Any, list[Any]]:
    handler = agent.run(message, **kwargs)
    events = [ev async for ev in handler.stream_events()]
    return await handler, events


def tool_results(events: list[Any]) -> list[ToolCallResult]:
    return [ev for ev in events if isinstance(ev, ToolCallResult)]


async def test_allowed_call_reaches_upstream_with_session_headers(
    ailink_gateway: EmulatorGateway, payments_token: str
) -> None:
    tool = make_tool(ailink_gateway, payments_token)
    agent = FunctionAgent(tools=[tool], llm=scripted_llm([LOOKUP], final="found"), streaming=False)
    with ailink_session("li-allowed") as session:
        result, events = await run_agent(agent)
    assert str(result) == "found"
    [call] = tool_results(events)
    output = call.tool_output
    assert not output.is_error
    assert output.content.startswith("HTTP 200 from GET /v1/customers/cus_001")
    assert output.raw_output["status"] == "ok" and output.raw_output["body"]["id"] == "cus_001"
    [row] = ailink_gateway.session(session)["requests"]
    assert row["tool_name"] == TOOL and row["agent_name"] == "billing-agent"
    assert row["parent_span_id"] and len(row["parent_span_id"]) == 16


async def test_denied_call_is_readable_text(ailink_gateway: EmulatorGateway, payments_token: str) -> None:
    agent = FunctionAgent(tools=[make_tool(ailink_gateway, payments_token)], llm=scripted_llm([REFUND]))
    _, events = await run_agent(agent)
    [call] = tool_results(events)
    assert call.tool_output.is_error
    assert "denied by policy 'no-refunds'" in call.tool_output.content
    assert call.tool_output.raw_output["policy"] == "no-refunds"
    assert ailink_gateway.payments_stats()["refunds"] == 0


async def test_invalid_arguments_send_nothing(ailink_gateway: EmulatorGateway, payments_token: str) -> None:
    bad = {"method": "DELETE", "path": "/v1/charges/ch_1"}
    agent = FunctionAgent(tools=[make_tool(ailink_gateway, payments_token)], llm=scripted_llm([bad]))
    _, events = await run_agent(agent)
    [call] = tool_results(events)
    assert call.tool_output.is_error and "Invalid arguments" in call.tool_output.content
    assert call.tool_output.raw_output["status"] == "invalid_arguments"
    assert ailink_gateway.audit() == []


@both_profiles
@pytest.mark.parametrize("streaming", [False, True])
async def test_approved_by_background_approver(
    ailink_gateway: EmulatorGateway, payments_token: str, recorded: list[BaseEvent], streaming: bool
) -> None:
    agent = FunctionAgent(
        tools=[make_tool(ailink_gateway, payments_token)], llm=scripted_llm([CHARGE]), streaming=streaming
    )
    approver = ailink_gateway.approve_when_pending(count=1)
    _, events = await run_agent(agent)
    [approval_id] = approver.join()
    [call] = tool_results(events)
    assert not call.tool_output.is_error and call.tool_output.content.startswith("HTTP 200 from POST /v1/charges")
    assert ailink_gateway.payments_stats()["charges"] == 1
    assert len(ailink_gateway.approvals()) == 1
    if not ailink_gateway.serves_extensions:  # the call was held: no approval was ever named to the agent
        assert call.tool_output.raw_output["approval_id"] is None
        assert not [ev for ev in events if isinstance(ev, AIlinkApprovalPending)] and recorded == []
        return
    assert call.tool_output.raw_output["approval_id"] == approval_id
    [pending] = [ev for ev in events if isinstance(ev, AIlinkApprovalPending)]
    assert pending.approval_id == approval_id and pending.tool_name == TOOL
    assert [type(ev).__name__ for ev in recorded] == ["AIlinkApprovalPendingEvent", "AIlinkApprovalResolvedEvent"]
    assert recorded[1].outcome == "ok"
    assert ailink_gateway.payments_stats()["charges"] == 1


@both_profiles
async def test_rejected_is_readable_text(ailink_gateway: EmulatorGateway, payments_token: str) -> None:
    agent = FunctionAgent(tools=[make_tool(ailink_gateway, payments_token)], llm=scripted_llm([CHARGE]))
    approver = ailink_gateway.approve_when_pending(count=1, decision="rejected", reason="too large")
    _, events = await run_agent(agent)
    approver.join()
    [call] = tool_results(events)
    assert call.tool_output.is_error and "rejected" in call.tool_output.content
    assert call.tool_output.raw_output["status"] == "rejected"
    # the reviewer's reason reaches the agent only through the extension's approval status
    assert call.tool_output.raw_output["reason"] == ("too large" if ailink_gateway.serves_extensions else None)
    assert "approval None" not in call.tool_output.content
    assert ailink_gateway.payments_stats()["charges"] == 0
    assert len(ailink_gateway.approvals()) == 1


@both_profiles
async def test_timed_out_is_readable_text(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="payments", policies=[approval_policy("1s")])
    agent = FunctionAgent(tools=[make_tool(ailink_gateway, token, approval_timeout=5)], llm=scripted_llm([CHARGE]))
    _, events = await run_agent(agent)
    [call] = tool_results(events)
    assert call.tool_output.is_error and "NOT performed" in call.tool_output.content
    assert call.tool_output.raw_output["status"] == "timed_out"
    assert ailink_gateway.payments_stats()["charges"] == 0


@pytest.mark.parametrize("decision", ["approved", "rejected", "resume-before-deciding"])
async def test_event_mode_pauses_and_resumes_with_one_execution(
    ailink_gateway: EmulatorGateway, payments_token: str, recorded: list[BaseEvent], decision: str
) -> None:
    tool = make_tool(ailink_gateway, payments_token, on_approval="event")
    agent = FunctionAgent(tools=[tool], llm=scripted_llm([CHARGE], final="finished"))
    with ailink_session(f"li-event-{decision}") as session:
        handler = agent.run("charge the customer")
    seen: list[Any] = []
    approver = None
    async for ev in handler.stream_events():
        seen.append(ev)
        if isinstance(ev, AIlinkApprovalRequired):
            assert ailink_gateway.payments_stats()["charges"] == 0
            if decision == "resume-before-deciding":
                # the resumed tool finds the approval still pending and waits for it
                approver = ailink_gateway.approve_when_pending(count=1)
            else:
                ailink_gateway.decide(ev.approval_id, decision)
            handler.ctx.send_event(AIlinkApprovalResponse(approval_id=ev.approval_id))
    result = await handler
    if approver is not None:
        approver.join()
    assert str(result) == "finished"
    [required] = [ev for ev in seen if isinstance(ev, AIlinkApprovalRequired)]
    assert required.tool_name == TOOL and required.summary.get("path") == "/v1/charges"
    [call] = tool_results(seen)
    assert call.tool_output.raw_output["approval_id"] == required.approval_id
    stats = ailink_gateway.payments_stats()
    if decision == "rejected":
        assert call.tool_output.is_error and call.tool_output.raw_output["status"] == "rejected"
        assert stats["charges"] == 0
    else:
        assert call.tool_output.content.startswith("HTTP 200 from POST /v1/charges")
        assert stats["charges"] == 1 and stats["total_executions"] == 1
    assert [type(ev).__name__ for ev in recorded] == ["AIlinkApprovalPendingEvent", "AIlinkApprovalResolvedEvent"]
    assert recorded[1].outcome == ("rejected" if decision == "rejected" else "ok")
    assert len(ailink_gateway.admin.approvals.list()) == 1
    requests = ailink_gateway.session(session)["requests"]
    assert requests[0]["status_code"] == 202 and {r["tool_name"] for r in requests} == {TOOL}
    if decision != "rejected":  # the emulator does not audit a re-sent request that ends in a rejection
        assert len(requests) >= 2


async def test_event_mode_a_rejecting_response_withdraws_the_approval(
    ailink_gateway: EmulatorGateway, payments_token: str, recorded: list[BaseEvent]
) -> None:
    tool = make_tool(ailink_gateway, payments_token, on_approval="event")
    agent = FunctionAgent(tools=[tool], llm=scripted_llm([CHARGE], final="finished"))
    handler = agent.run("charge the customer")
    seen: list[Any] = []
    async for ev in handler.stream_events():
        seen.append(ev)
        if isinstance(ev, AIlinkApprovalRequired):
            handler.ctx.send_event(AIlinkApprovalResponse(approval_id=ev.approval_id, reject=True,
                                                          note="the customer cancelled"))
    assert str(await handler) == "finished"
    [required] = [ev for ev in seen if isinstance(ev, AIlinkApprovalRequired)]
    [call] = tool_results(seen)
    output = call.tool_output
    assert output.is_error and output.raw_output["status"] == "rejected"
    assert output.raw_output["approval_id"] == required.approval_id
    assert f"rejected (approval {required.approval_id} withdrawn): the customer cancelled" in output.content
    assert [type(ev).__name__ for ev in recorded] == ["AIlinkApprovalPendingEvent", "AIlinkApprovalResolvedEvent"]
    assert recorded[1].outcome == "rejected"
    assert ailink_gateway.admin.approvals.get(required.approval_id).status == "cancelled"
    assert ailink_gateway.decide(required.approval_id, "approved")["updated"] is False  # too late for a reviewer
    assert ailink_gateway.payments_stats()["total_executions"] == 0


@pytest.mark.parametrize("ailink_gateway", ["real"], indirect=True)
async def test_event_mode_on_a_gateway_that_holds_the_call_runs_through(
    ailink_gateway: EmulatorGateway, payments_token: str, recorded: list[BaseEvent]
) -> None:
    """The real gateway never answers 202, so there is no approval to announce: the held call ends with
    the decision inside the same run (one approval, one execution)."""
    tool = make_tool(ailink_gateway, payments_token, on_approval="event")
    agent = FunctionAgent(tools=[tool], llm=scripted_llm([CHARGE], final="finished"))
    approver = ailink_gateway.approve_when_pending(count=1)
    result, events = await run_agent(agent)
    approver.join()
    assert str(result) == "finished" and not [ev for ev in events if isinstance(ev, AIlinkApprovalRequired)]
    [call] = tool_results(events)
    assert call.tool_output.content.startswith("HTTP 200 from POST /v1/charges") and recorded == []
    assert ailink_gateway.payments_stats()["charges"] == 1 and len(ailink_gateway.approvals()) == 1
