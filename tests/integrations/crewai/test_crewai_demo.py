"""The ``ailink demo crewai`` scenario against a demo-seeded emulator with a background approver."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from crewai_ailink.demo import run

from ailink._demo.runner import check_outcome
from ailink.demo import FINAL_ANSWER, TOOL_NAME, DemoEnv
from ailink.testing import EmulatorGateway


@pytest.mark.parametrize("demo_gateway", ["ailink", "real"], indirect=True)
def test_demo_scenario(
    demo_gateway: EmulatorGateway, demo_env: Callable[..., DemoEnv], capsys: pytest.CaptureFixture[str]
) -> None:
    env = demo_env("demo-crewai-test")
    approver = demo_gateway.approve_when_pending(count=1, timeout=20)
    outcome = run(env)
    [approval_id] = approver.join()

    stats = demo_gateway.payments_stats()
    assert stats["charges"] == 1 and stats["refunds"] == 0
    statuses = [(a["status"], a.get("policy"), a.get("approval_id")) for a in outcome.tool_artifacts]
    named = approval_id if demo_gateway.serves_extensions else None  # the real gateway never names it
    assert statuses == [("ok", None, None), ("ok", None, named), ("denied", "block-refunds", None)]
    assert [a["id"] for a in demo_gateway.approvals()] == [approval_id]
    assert outcome.final_answer == FINAL_ANSWER
    session = demo_gateway.admin.sessions.get(env.session_id)
    assert check_outcome(outcome, session, stats) == []
    assert len([r for r in session.requests if r.tool_name == TOOL_NAME]) >= 3
    assert len([r for r in session.requests if (r.path or "").endswith("/chat/completions")]) == 4
    assert capsys.readouterr().out == ""
