"""Generated tools, every adapter: each framework's real agent gets one typed tool per operation of the
payments API's OpenAPI document (served by the emulator through the gateway, the token's policies read
with the admin key), its gateway LLM scripted by the emulator's mock LLM, and a real emulator over loopback.

The token's policies: charges need a human (``charges-need-approval``), refunds are denied
(``no-refunds``). So the agent's ``create_charge`` says so before any call, and ``create_refund``
is not among its tools at all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conformance_harness import (
    FINAL_ANSWER,
    OP_CHARGE,
    OP_CUSTOMER,
    OP_INVALID,
    OP_REFUND,
    Env,
    FrameworkDriver,
    pause_then_resume_once,
    script,
)

from ailink.adapters import gateway_tools
from ailink.testing import EmulatorGateway


def test_the_tools_say_what_the_policies_will_do_before_any_call(make_env: Callable[..., Env],
                                                                  ailink_gateway: EmulatorGateway) -> None:
    env = make_env(openapi=True)
    tools = {tool.action.name: tool for tool in gateway_tools(**env.openapi_options())}
    assert sorted(tools) == ["create_charge", "list_charges", "list_customers", "retrieve_charge",
                             "retrieve_customer"]  # create_refund: always denied, left out
    charge = tools["create_charge"]
    assert charge.action.description.startswith(
        "Create a charge. Needs human approval (policy 'charges-need-approval')")
    assert charge.tool_metadata()["approval"]["approval"] == "required"
    assert tools["retrieve_customer"].tool_metadata()["approval"] == {"approval": "none", "denied": "never",
                                                                      "gates": []}
    assert [row for row in ailink_gateway.audit() if row.get("tool_name")] == []  # nothing called yet


def test_a_denied_operation_is_not_among_the_agents_tools(driver: FrameworkDriver, make_env: Callable[..., Env],
                                                          ailink_gateway: EmulatorGateway) -> None:
    env = make_env(openapi=True)
    ailink_gateway.script_llm(env.llm_token, script(calls=(OP_REFUND,)))
    run = driver.run(env)
    [call] = run.calls
    # the framework's own "no such tool" answer (wording differs: "not a valid tool", "Unknown tool name", ...)
    assert call.status is None and any(word in call.text.lower() for word in ("not", "unknown"))
    assert [row for row in ailink_gateway.audit() if row.get("tool_name")] == []  # nothing reached the gateway
    assert ailink_gateway.payments_stats()["refunds"] == 0 and run.final_answer == FINAL_ANSWER


def test_an_allowed_call_and_invalid_arguments(driver: FrameworkDriver, make_env: Callable[..., Env],
                                               ailink_gateway: EmulatorGateway) -> None:
    env = make_env(openapi=True)
    ailink_gateway.script_llm(env.llm_token, script(calls=(OP_CUSTOMER, OP_INVALID)))
    run = driver.run(env)
    allowed, invalid = run.calls
    assert not allowed.is_error and allowed.status == "ok"
    assert allowed.text.startswith("HTTP 200 from GET /v1/customers/cus_001") and "Ada Lovelace" in allowed.text
    assert invalid.is_error and invalid.status == "invalid_arguments"
    assert "body.amount: must be an integer" in invalid.text and "Nothing was sent" in invalid.text
    tool_rows = [row for row in ailink_gateway.audit() if row.get("tool_name")]
    assert [(row["tool_name"], row["method"]) for row in tool_rows] == [("retrieve_customer", "GET")]
    assert ailink_gateway.payments_stats()["charges"] == 0
    assert run.events == [] and run.final_answer == FINAL_ANSWER
    session = ailink_gateway.admin.sessions.get(env.session_id)  # the run's session holds the tool's request
    [request] = [r for r in session.requests if r.tool_name == "retrieve_customer"]
    assert request.parent_span_id and len(session.requests) == 4  # three LLM calls and the tool's request


def test_a_gated_call_waits_for_the_reviewer(driver: FrameworkDriver, make_env: Callable[..., Env],
                                             ailink_gateway: EmulatorGateway) -> None:
    env = make_env(openapi=True)
    ailink_gateway.script_llm(env.llm_token, script(calls=(OP_CHARGE,)))
    approver = ailink_gateway.approve_when_pending(count=1, timeout=30)
    run = driver.run(env)
    [approval_id] = approver.join()
    [call] = run.calls
    assert not call.is_error and call.status == "ok" and call.approval_id == approval_id
    assert call.text.startswith("HTTP 200 from POST /v1/charges (approved by a human reviewer")
    assert run.events == [("pending", approval_id), ("resolved", approval_id)]
    stats = ailink_gateway.payments_stats()
    assert stats["charges"] == 1 and stats["by_idempotency_key"] == {call.idempotency_key: 1}
    [pending] = [a for a in ailink_gateway.admin.approvals.list() if a.id == approval_id]
    assert pending.request_summary is not None and pending.request_summary.tool_name == "create_charge"


@pytest.mark.pauses
def test_a_gated_call_pauses_the_run_and_resumes_once_in_another_process(
    driver: FrameworkDriver, make_env: Callable[..., Env], ailink_gateway: EmulatorGateway, tmp_path: Path
) -> None:
    env = make_env(openapi=True)
    ailink_gateway.script_llm(env.llm_token, script(calls=(OP_CHARGE,)))
    pause_then_resume_once(driver, env, ailink_gateway, tmp_path / "paused-run")
