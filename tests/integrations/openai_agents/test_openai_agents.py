"""openai-agents-ailink beyond the conformance suite: a real ``Agent`` on the emulator's scripted mock LLM."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, RunState, ToolCallOutputItem, function_tool
from agents.tracing import set_trace_processors, set_tracing_disabled
from agents_ailink import AIlinkToolOutput, openai_agents_model, openai_agents_tool, reject

import ailink
from ailink import AIlinkClient
from ailink.integrations import openai_agents_model as reexported_model
from ailink.testing import EmulatorGateway

TOOL = "payments_api"
LOOKUP = {"method": "GET", "path": "/v1/customers/cus_001"}
CHARGE = {"method": "POST", "path": "/v1/charges", "body": {"amount": 250000, "currency": "usd", "customer": "cus_001"}}
POLICY = {"name": "charges-need-approval", "rules": [{
    "when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
    "then": {"action": "require_approval", "timeout": "30s"}}]}


@pytest.fixture(autouse=True)
def local_traces() -> None:
    set_trace_processors([])  # the SDK keeps its traces (and their ids) but exports nothing
    set_tracing_disabled(False)


def _agent(gateway: EmulatorGateway, steps: list[dict[str, Any]], on_approval: str = "wait") -> Agent[Any]:
    llm = gateway.create_token(name="llm", upstream="llm")
    gateway.script_llm(llm, [*({"tool_calls": [{"id": f"call_{i}", "name": TOOL, "arguments": step}]}
                               for i, step in enumerate(steps)), {"content": "done"}])
    tool = openai_agents_tool(token=gateway.create_token(policies=[POLICY]), name=TOOL, description="Payments API.",
                              methods=["GET", "POST"], gateway_url=gateway.url, approval_timeout=20,
                              on_approval=on_approval)  # type: ignore[arg-type]
    return Agent(name="clerk", tools=[tool], model=openai_agents_model("mock-gpt", token=llm, gateway_url=gateway.url))


def _outputs(result: Any) -> list[AIlinkToolOutput]:
    return [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)]


def test_interrupt_mode_sends_a_call_without_approval_once_and_does_not_interrupt(
        ailink_gateway: EmulatorGateway) -> None:
    result = Runner.run_sync(_agent(ailink_gateway, [LOOKUP], "interrupt"), "go",
                             run_config=RunConfig(group_id="agents-lookup"))
    assert result.interruptions == [] and result.final_output == "done"
    [output] = _outputs(result)
    assert not output.is_error and output.startswith("HTTP 200 from GET /v1/customers/cus_001")
    assert len([row for row in ailink_gateway.audit(session_id="agents-lookup") if row.get("tool_name")]) == 1


def _pause(gateway: EmulatorGateway) -> tuple[Agent[Any], Any, str]:
    agent = _agent(gateway, [CHARGE], "interrupt")
    result = Runner.run_sync(agent, "go", run_config=RunConfig(group_id="agents-charge"))
    [item] = result.interruptions
    assert item.tool_name == TOOL and _outputs(result) == []
    [pending] = gateway.pending_approvals()
    state = result.to_state()
    state.approve(item)
    return agent, state, pending["id"]


def test_a_run_resumed_before_the_decision_waits_for_it_and_charges_once(ailink_gateway: EmulatorGateway) -> None:
    agent, state, approval_id = _pause(ailink_gateway)
    approver = ailink_gateway.approve_when_pending(count=1, timeout=30)
    result = Runner.run_sync(agent, state, run_config=RunConfig(group_id="agents-charge"))
    assert approver.join() == [approval_id]
    [output] = _outputs(result)
    assert not output.is_error and output.artifact["approval_id"] == approval_id
    stats = ailink_gateway.payments_stats()
    assert stats["charges"] == 1 and stats["by_idempotency_key"] == {output.artifact["idempotency_key"]: 1}
    assert len(ailink_gateway.admin.approvals.list()) == 1


def test_a_rejection_on_the_gateway_reaches_the_model_after_the_resume(ailink_gateway: EmulatorGateway) -> None:
    agent, state, approval_id = _pause(ailink_gateway)
    ailink_gateway.decide(approval_id, "rejected", reason="over budget")
    result = Runner.run_sync(agent, state, run_config=RunConfig(group_id="agents-charge"))
    [output] = _outputs(result)
    assert output.is_error and output.artifact["status"] == "rejected" and "over budget" in output
    assert ailink_gateway.payments_stats()["charges"] == 0 and result.final_output == "done"


def _paused(gateway: EmulatorGateway, **run: Any) -> tuple[Agent[Any], Any, Any, str]:
    """A run paused on the charge's approval: the agent, its state, the interruption, the approval id."""
    agent = _agent(gateway, [CHARGE], "interrupt")
    result = Runner.run_sync(agent, "go", **run)
    [item] = result.interruptions
    [pending] = gateway.pending_approvals()
    return agent, result.to_state(), item, pending["id"]


def _never_runs(gateway: EmulatorGateway, approval_id: str) -> None:
    assert gateway.admin.approvals.get(approval_id).status == "cancelled"
    assert gateway.decide(approval_id, "approved")["updated"] is False  # a reviewer's late approval does nothing
    assert gateway.payments_stats()["total_executions"] == 0


def test_reject_withdraws_the_approval_and_the_model_reads_why(ailink_gateway: EmulatorGateway) -> None:
    config = RunConfig(group_id="agents-reject")
    agent, state, item, approval_id = _paused(ailink_gateway, run_config=config)
    rejected = asyncio.run(reject(state, item, message="over budget"))
    assert rejected is not None and rejected.outcome is ailink.ToolOutcome.REJECTED
    assert rejected.approval_id == approval_id
    _never_runs(ailink_gateway, approval_id)
    result = Runner.run_sync(agent, state, run_config=config)
    [output] = _outputs(result)
    assert output.is_error and output.artifact["status"] == "rejected" and output.artifact["approval_id"] == approval_id
    assert f"rejected (approval {approval_id} withdrawn): over budget" in output
    assert result.interruptions == [] and result.final_output == "done"
    assert len(ailink_gateway.admin.approvals.list()) == 1  # re-attached to reject it: nobody asked twice


def test_reject_works_on_a_state_restored_from_json_with_tracing_disabled(ailink_gateway: EmulatorGateway) -> None:
    set_tracing_disabled(True)  # no trace ids: the key rests on the tool-call id
    agent, state, _, approval_id = _paused(ailink_gateway)
    restored = asyncio.run(RunState.from_json(agent, state.to_json()))
    [item] = restored.get_interruptions()
    asyncio.run(reject(restored, item))
    _never_runs(ailink_gateway, approval_id)
    [output] = _outputs(Runner.run_sync(agent, restored))
    assert "not performed" in output and ailink_gateway.payments_stats()["charges"] == 0


def test_reject_after_a_reviewer_approved_lets_the_model_read_the_performed_action(
        ailink_gateway: EmulatorGateway) -> None:
    config = RunConfig(group_id="agents-late-reject")
    agent, state, item, approval_id = _paused(ailink_gateway, run_config=config)
    ailink_gateway.decide(approval_id, "approved")
    performed = asyncio.run(reject(state, item, message="too late"))
    assert performed is not None and performed.ok  # it ran: approved in the run state, not rejected
    [output] = _outputs(Runner.run_sync(agent, state, run_config=config))
    assert not output.is_error and output.artifact["approval_id"] == approval_id
    assert ailink_gateway.payments_stats()["total_executions"] == 1


def test_reject_of_another_tools_interruption_is_the_sdks_reject(ailink_gateway: EmulatorGateway) -> None:
    @function_tool(needs_approval=True)
    def refund(charge: str) -> str:
        """Refund a charge."""
        return "refunded"

    llm = ailink_gateway.create_token(name="llm", upstream="llm")
    refund_call = {"id": "call_r", "name": "refund", "arguments": {"charge": "ch_1"}}
    ailink_gateway.script_llm(llm, [{"tool_calls": [refund_call]}, {"content": "done"}])
    agent = Agent(name="clerk", tools=[refund], model=openai_agents_model("mock-gpt", token=llm,
                                                                          gateway_url=ailink_gateway.url))
    result = Runner.run_sync(agent, "go")
    state = result.to_state()
    [item] = result.interruptions
    assert asyncio.run(reject(state, item, message="no refunds")) is None
    [output] = _outputs(Runner.run_sync(agent, state))
    assert output == "no refunds"


def test_with_tracing_disabled_an_ailink_trace_block_gives_the_session(ailink_gateway: EmulatorGateway) -> None:
    set_tracing_disabled(True)
    agent = _agent(ailink_gateway, [LOOKUP])
    with ailink.trace("agents-untraced"):
        asyncio.run(Runner.run(agent, "go"))
    rows = ailink_gateway.audit(session_id="agents-untraced")
    assert len(rows) == 3 and all(row["parent_span_id"] for row in rows)


def test_options_are_checked(ailink_gateway: EmulatorGateway) -> None:
    with pytest.raises(ValueError, match="on_approval"):
        openai_agents_tool(name=TOOL, description="d", on_approval="later")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="methdos"):
        openai_agents_tool(name=TOOL, description="d", methdos=["GET"])  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_retries"):
        openai_agents_model("m", gateway_url=ailink_gateway.url, max_retries=2)


def test_the_reexport_takes_a_client_and_keeps_its_token_out_of_sight(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    model = reexported_model(AIlinkClient(token, ailink_gateway.url, agent_name="writer"), model="mock-gpt")
    client = model._client
    assert str(client.base_url).rstrip("/") == ailink_gateway.url + "/v1" and client.max_retries == 0
    assert token not in repr(model) and token not in repr(client)
