"""``ailink demo`` judges its run: approved → one charge; rejected by the person → none."""

from __future__ import annotations

from typing import Any

from ailink import Session, SessionRequest
from ailink._demo.runner import check_outcome
from ailink.demo import TOOL_NAME, DemoOutcome


def _run(charge_status: str) -> tuple[DemoOutcome, Session]:
    artifacts: list[dict[str, Any]] = [
        {"status": "ok", "status_code": 200, "approval_id": None},
        {"status": charge_status, "status_code": 200 if charge_status == "ok" else 403, "approval_id": "apr_1"},
        {"status": "denied", "status_code": 403, "policy": "block-refunds", "approval_id": None},
    ]
    requests = [SessionRequest(id=str(i), tool_name=TOOL_NAME, parent_span_id="a" * 16) for i in range(3)]
    return DemoOutcome("done", artifacts), Session(session_id="s", requests=requests)


def test_approved_run_needs_exactly_one_charge() -> None:
    outcome, session = _run("ok")
    assert check_outcome(outcome, session, {"charges": 1}) == []
    assert any("exactly" not in p and "1 charge" in p for p in check_outcome(outcome, session, {"charges": 2}))


def test_rejected_run_needs_no_charge_and_a_rejected_tool_result() -> None:
    outcome, session = _run("rejected")
    assert check_outcome(outcome, session, {"charges": 0}, rejected=True) == []
    problems = check_outcome(outcome, session, {"charges": 1}, rejected=True)
    assert any("0 charge" in p for p in problems)
    assert check_outcome(outcome, session, {"charges": 0}) != []  # not what an approval produces


def test_a_trace_without_parent_spans_is_incomplete() -> None:
    outcome, session = _run("ok")
    session.requests[0].parent_span_id = None
    assert any("parent span" in p for p in check_outcome(outcome, session, {"charges": 1}))
