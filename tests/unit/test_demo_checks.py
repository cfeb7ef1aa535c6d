"""``ailink demo`` judges its run: approved → one charge; rejected by the person → none."""

from __future__ import annotations

from typing import Any

from ailink import Session, SessionRequest
from ailink._demo.runner import check_outcome
from ailink.demo import LARGE_CHARGE, TOOL_NAME, DemoOutcome


def _run(charge_status: str, approval_id: str | None = "apr_1") -> tuple[DemoOutcome, Session]:
    charged = charge_status == "ok"
    artifacts: list[dict[str, Any]] = [
        {"status": "ok", "status_code": 200, "approval_id": None, "body": {"id": "cus_001"}},
        {"status": charge_status, "status_code": 200 if charged else 403, "approval_id": approval_id,
         "body": {"id": "ch_1", **LARGE_CHARGE["body"]} if charged else None},  # type: ignore[dict-item]
        {"status": "denied", "status_code": 403, "policy": "block-refunds", "approval_id": None, "body": None},
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


def test_a_gateway_that_never_names_the_approval() -> None:
    """The real gateway holds the charge and never names its approval: the check finds the charge by its answer."""
    outcome, session = _run("ok", approval_id=None)
    assert check_outcome(outcome, session, {"charges": 1}) == []
    outcome, session = _run("rejected", approval_id=None)
    assert check_outcome(outcome, session, {"charges": 0}, rejected=True) == []
