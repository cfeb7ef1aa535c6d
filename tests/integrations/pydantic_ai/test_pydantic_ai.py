"""pydantic-ai-ailink beyond the conformance suite: a real ``Agent`` on the emulator's scripted mock LLM."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, ToolApproved, ToolDenied
from pydantic_ai.messages import ModelRequest, ToolReturnPart
from pydantic_ai_ailink import deny, pydantic_ai_model, pydantic_ai_tool

from ailink import AIlinkClient
from ailink.integrations import pydantic_ai_model as reexported_model
from ailink.testing import EmulatorGateway

TOOL = "payments_api"
LOOKUP = {"method": "GET", "path": "/v1/customers/cus_001"}
CHARGE = {"method": "POST", "path": "/v1/charges", "body": {"amount": 250000, "currency": "usd", "customer": "cus_001"}}
POLICY = {"name": "charges-need-approval", "rules": [{
    "when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
    "then": {"action": "require_approval", "timeout": "30s"}}]}


def _agent(gateway: EmulatorGateway, steps: list[dict[str, Any]], on_approval: str = "wait") -> Agent[None, Any]:
    llm = gateway.create_token(name="llm", upstream="llm")
    gateway.script_llm(llm, [*({"tool_calls": [{"id": f"call_{i}", "name": TOOL, "arguments": step}]}
                               for i, step in enumerate(steps)), {"content": "done"}])
    tool = pydantic_ai_tool(token=gateway.create_token(policies=[POLICY]), name=TOOL, description="Payments API.",
                            methods=["GET", "POST"], gateway_url=gateway.url, approval_timeout=20,
                            on_approval=on_approval)  # type: ignore[arg-type]
    return Agent(pydantic_ai_model("mock-gpt", token=llm, gateway_url=gateway.url), tools=[tool],
                 output_type=[str, DeferredToolRequests])


def _returns(result: Any) -> list[ToolReturnPart]:
    return [p for m in result.new_messages() if isinstance(m, ModelRequest) for p in m.parts
            if isinstance(p, ToolReturnPart)]


def test_defer_mode_runs_a_call_without_approval_at_once(ailink_gateway: EmulatorGateway) -> None:
    result = _agent(ailink_gateway, [LOOKUP], "defer").run_sync("go", conversation_id="pai-lookup")
    assert result.output == "done"
    [part] = _returns(result)
    assert part.outcome == "success" and str(part.content).startswith("HTTP 200 from GET /v1/customers/cus_001")
    assert part.metadata["status"] == "ok"


def _pause(gateway: EmulatorGateway) -> tuple[Agent[None, Any], Any, DeferredToolResults, str]:
    agent = _agent(gateway, [CHARGE], "defer")
    result = agent.run_sync("go")  # no conversation id given: Pydantic AI makes one, kept in the history
    assert isinstance(result.output, DeferredToolRequests) and _returns(result) == []
    [call] = result.output.approvals
    [pending] = gateway.pending_approvals()
    assert result.output.metadata[call.tool_call_id]["approval_id"] == pending["id"]
    return agent, result, DeferredToolResults(approvals={call.tool_call_id: True}), pending["id"]


def test_a_run_resumed_before_the_decision_waits_for_it_and_charges_once(ailink_gateway: EmulatorGateway) -> None:
    agent, first, results, approval_id = _pause(ailink_gateway)
    approver = ailink_gateway.approve_when_pending(count=1, timeout=30)
    second = agent.run_sync(message_history=first.all_messages(), deferred_tool_results=results)
    assert approver.join() == [approval_id] and second.output == "done"
    [part] = _returns(second)
    assert part.outcome == "success" and part.metadata["approval_id"] == approval_id
    stats = ailink_gateway.payments_stats()
    assert stats["charges"] == 1 and stats["by_idempotency_key"] == {part.metadata["idempotency_key"]: 1}
    [session] = {row["session_id"] for row in ailink_gateway.audit()}  # both runs: the conversation's session
    assert session == first.all_messages()[-1].conversation_id


def test_a_rejection_on_the_gateway_is_a_failed_return_after_the_resume(ailink_gateway: EmulatorGateway) -> None:
    agent, first, results, approval_id = _pause(ailink_gateway)
    ailink_gateway.decide(approval_id, "rejected", reason="over budget")
    second = agent.run_sync(message_history=first.all_messages(), deferred_tool_results=results)
    [part] = _returns(second)
    assert part.outcome == "failed" and part.metadata["status"] == "rejected" and "over budget" in str(part.content)
    assert ailink_gateway.payments_stats()["charges"] == 0


def _never_runs(gateway: EmulatorGateway, approval_id: str) -> None:
    assert gateway.admin.approvals.get(approval_id).status == "cancelled"
    assert gateway.decide(approval_id, "approved")["updated"] is False  # a reviewer's late approval does nothing
    assert gateway.payments_stats()["total_executions"] == 0


def test_deny_withdraws_the_approval_and_the_model_reads_why(ailink_gateway: EmulatorGateway) -> None:
    agent, first, _, approval_id = _pause(ailink_gateway)
    requests = first.output
    [call] = requests.approvals
    denial = asyncio.run(deny(agent, requests, call.tool_call_id, "over budget"))
    assert isinstance(denial, ToolDenied)
    assert f"rejected (approval {approval_id} withdrawn): over budget" in denial.message
    _never_runs(ailink_gateway, approval_id)
    second = agent.run_sync(message_history=first.all_messages(),
                             deferred_tool_results=DeferredToolResults(approvals={call.tool_call_id: denial}))
    [part] = _returns(second)
    assert part.outcome == "denied" and "not performed" in str(part.content) and second.output == "done"
    [session] = {row["session_id"] for row in ailink_gateway.audit()}  # the re-send to withdraw: same session
    assert session == first.all_messages()[-1].conversation_id
    assert len(ailink_gateway.admin.approvals.list()) == 1


def test_deny_after_a_reviewer_approved_lets_the_model_read_the_performed_action(
        ailink_gateway: EmulatorGateway) -> None:
    agent, first, _, approval_id = _pause(ailink_gateway)
    [call] = first.output.approvals
    ailink_gateway.decide(approval_id, "approved")
    decision = asyncio.run(deny(agent, first.output, call.tool_call_id, "too late"))
    assert isinstance(decision, ToolApproved)  # it ran: the resumed run reads its result
    second = agent.run_sync(message_history=first.all_messages(),
                             deferred_tool_results=DeferredToolResults(approvals={call.tool_call_id: decision}))
    [part] = _returns(second)
    assert part.outcome == "success" and part.metadata["approval_id"] == approval_id
    assert ailink_gateway.payments_stats()["total_executions"] == 1


def test_deny_refuses_an_unknown_call_and_denies_other_tools_plainly(ailink_gateway: EmulatorGateway) -> None:
    agent, first, _, approval_id = _pause(ailink_gateway)
    with pytest.raises(ValueError, match="call_nope"):
        asyncio.run(deny(agent, first.output, "call_nope"))
    [call] = first.output.approvals
    stranger = DeferredToolRequests(approvals=[call])  # no AIlink metadata: another tool's approval
    assert asyncio.run(deny(agent, stranger, call.tool_call_id, "no")) == ToolDenied("no")
    other_agent = Agent(pydantic_ai_model("mock-gpt", token="t", gateway_url=ailink_gateway.url))
    with pytest.raises(ValueError, match="no AIlink tool"):
        asyncio.run(deny(other_agent, first.output, call.tool_call_id))
    assert [a["id"] for a in ailink_gateway.pending_approvals()] == [approval_id]  # nothing was withdrawn


def test_options_are_checked(ailink_gateway: EmulatorGateway) -> None:
    with pytest.raises(ValueError, match="on_approval"):
        pydantic_ai_tool(name=TOOL, description="d", on_approval="interrupt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_retries"):
        pydantic_ai_model("m", gateway_url=ailink_gateway.url, max_retries=3)


def test_the_reexport_takes_a_client_and_keeps_its_token_out_of_sight(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    model = reexported_model(AIlinkClient(token, ailink_gateway.url), model="mock-gpt")
    assert model.base_url.rstrip("/") == ailink_gateway.url + "/v1" and model.model_name == "mock-gpt"
    assert token not in repr(model)
