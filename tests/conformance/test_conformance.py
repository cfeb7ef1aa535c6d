"""One set of scenarios, every adapter: each framework's real agent, its gateway LLM scripted by the
emulator's mock LLM, its tool one-liner, and a real emulator over loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conformance_harness import (
    CHARGE,
    CUSTOMER,
    FINAL_ANSWER,
    INVALID,
    REFUND,
    REJECTION,
    TOOL,
    Env,
    FrameworkDriver,
    in_child,
    pause_then_resume_once,
    script,
)

from ailink._session_tree import SpanNode, build_span_tree
from ailink.testing import EmulatorGateway


def test_an_allowed_call_reaches_the_upstream(driver: FrameworkDriver, make_env: Callable[..., Env],
                                              ailink_gateway: EmulatorGateway) -> None:
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(CUSTOMER))
    run = driver.run(env)
    [call] = run.calls
    assert not call.is_error and call.status == "ok"
    assert call.text.startswith("HTTP 200 from GET /v1/customers/cus_001") and "cus_001" in call.text
    assert run.events == [] and run.final_answer == FINAL_ANSWER


def test_a_policy_denial_is_an_error_result_the_model_reads(driver: FrameworkDriver, make_env: Callable[..., Env],
                                                            ailink_gateway: EmulatorGateway) -> None:
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(REFUND))
    run = driver.run(env)
    [call] = run.calls
    assert call.is_error and call.status == "denied"
    assert "denied by policy 'no-refunds'" in call.text and "not performed" in call.text
    assert ailink_gateway.payments_stats()["refunds"] == 0
    assert run.final_answer == FINAL_ANSWER  # the run goes on


def test_invalid_arguments_send_nothing(driver: FrameworkDriver, make_env: Callable[..., Env],
                                        ailink_gateway: EmulatorGateway) -> None:
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(INVALID))
    run = driver.run(env)
    [call] = run.calls
    assert call.is_error and call.status == "invalid_arguments" and "Nothing was sent" in call.text
    assert [row for row in ailink_gateway.audit() if row.get("tool_name")] == []


def test_an_approval_is_waited_for_and_announced(driver: FrameworkDriver, make_env: Callable[..., Env],
                                                 ailink_gateway: EmulatorGateway) -> None:
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(CHARGE))
    approver = ailink_gateway.approve_when_pending(count=1, timeout=30)
    run = driver.run(env)
    [approval_id] = approver.join()
    [call] = run.calls
    assert not call.is_error and call.status == "ok" and call.approval_id == approval_id
    assert "approved by a human reviewer" in call.text
    assert run.events == [("pending", approval_id), ("resolved", approval_id)]
    stats = ailink_gateway.payments_stats()
    assert stats["charges"] == 1 and stats["by_idempotency_key"] == {call.idempotency_key: 1}


def test_a_rejection_is_an_error_result_and_nothing_runs(driver: FrameworkDriver, make_env: Callable[..., Env],
                                                         ailink_gateway: EmulatorGateway) -> None:
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(CHARGE))
    approver = ailink_gateway.approve_when_pending(count=1, decision="rejected", reason="not this month", timeout=30)
    run = driver.run(env)
    [approval_id] = approver.join()
    [call] = run.calls
    assert call.is_error and call.status == "rejected" and call.approval_id == approval_id
    assert "not this month" in call.text
    assert run.events == [("pending", approval_id), ("resolved", approval_id)]
    assert ailink_gateway.payments_stats()["charges"] == 0


def test_a_timeout_is_never_an_approval(driver: FrameworkDriver, make_env: Callable[..., Env],
                                        ailink_gateway: EmulatorGateway) -> None:
    env = make_env(approval="1s", approval_timeout=5)
    ailink_gateway.script_llm(env.llm_token, script(CHARGE))
    run = driver.run(env)
    [call] = run.calls
    assert call.is_error and call.status == "timed_out" and "NOT performed" in call.text
    [(pending, approval_id), (resolved, same)] = run.events
    assert (pending, resolved) == ("pending", "resolved") and approval_id == same == call.approval_id
    assert ailink_gateway.pending_approvals() == []
    assert ailink_gateway.payments_stats()["charges"] == 0


@pytest.mark.pauses
def test_a_paused_run_resumes_in_another_process_and_the_action_runs_once(
    driver: FrameworkDriver, make_env: Callable[..., Env], ailink_gateway: EmulatorGateway, tmp_path: Path
) -> None:
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(CHARGE))
    pause_then_resume_once(driver, env, ailink_gateway, tmp_path / "paused-run")
    assert len(ailink_gateway.admin.approvals.list()) == 1  # the resumed call re-attached, it asked nobody again


@pytest.mark.pauses
@pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)
def test_a_rejection_in_the_framework_withdraws_the_approval(
    driver: FrameworkDriver, make_env: Callable[..., Env], ailink_gateway: EmulatorGateway, tmp_path: Path
) -> None:
    """Rejected through the framework (the adapter's documented way), the call can never run: its gateway
    approval is withdrawn, so a reviewer approving it later in the inbox changes nothing."""
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(CHARGE))
    state = tmp_path / "paused-run"
    if not ailink_gateway.serves_extensions:
        # the real gateway holds the call until a reviewer decides: the framework never pauses, so there is
        # nothing to reject in it; the reviewer's rejection ends the call, and nothing is left pending
        approver = ailink_gateway.approve_when_pending(count=1, decision="rejected", timeout=30)
        held = in_child(driver, "pause", env, state)
        approver.join()
        [call] = held.calls
        assert held.paused_on is None and call.is_error and call.status == "rejected"
        assert held.final_answer == FINAL_ANSWER and ailink_gateway.pending_approvals() == []
        assert ailink_gateway.payments_stats()["total_executions"] == 0
        return
    first = in_child(driver, "pause", env, state)
    [pending] = ailink_gateway.pending_approvals()
    assert first.paused_on == pending["id"]

    second = in_child(driver, "reject", env, state)
    [call] = second.calls
    assert call.is_error and REJECTION in call.text and "not performed" in call.text and pending["id"] in call.text
    assert second.final_answer == FINAL_ANSWER  # the run went on, the model told why
    assert {approval_id for _, approval_id in second.events} <= {pending["id"]}
    assert ailink_gateway.admin.approvals.get(pending["id"]).status == "cancelled"
    assert len(ailink_gateway.admin.approvals.list()) == 1  # re-attached to withdraw it: nobody was asked again

    late = ailink_gateway.decide(pending["id"], "approved")  # a reviewer who opens the inbox afterwards
    assert late["updated"] is False and late["status"] == "cancelled"
    assert ailink_gateway.payments_stats()["total_executions"] == 0


def _holder(tree: SpanNode) -> dict[str, SpanNode]:
    """Request id → the span it hangs under."""
    return {request.id: node for node in tree.walk() for request in node.requests}


def test_the_session_is_one_tree_with_llm_and_tool_spans(driver: FrameworkDriver, make_env: Callable[..., Env],
                                                        ailink_gateway: EmulatorGateway) -> None:
    env = make_env()
    ailink_gateway.script_llm(env.llm_token, script(CUSTOMER, REFUND))
    driver.run(env)
    session = ailink_gateway.admin.sessions.get(env.session_id)
    llm = [r for r in session.requests if (r.path or "").endswith("/chat/completions")]
    tools = [r for r in session.requests if r.tool_name == TOOL]
    assert len(llm) == 3 and len(tools) == 2 and len(session.requests) == 5
    assert all(r.parent_span_id for r in session.requests)
    tree = build_span_tree(session)
    [run_root] = tree.children  # every request of the run shares its root span
    holder = _holder(tree)
    assert all(holder[r.id] is not run_root and holder[r.id] is not tree for r in session.requests)
    assert not {holder[r.id].span_id for r in tools} & {holder[r.id].span_id for r in llm}
    assert {holder[r.id].span_id for r in tools} == {r.parent_span_id for r in tools}
