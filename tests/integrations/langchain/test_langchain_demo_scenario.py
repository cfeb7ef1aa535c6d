"""The ``ailink demo langchain`` scenario against a demo-seeded emulator, a background approver deciding."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from langchain_ailink import demo as langchain_scenario

from ailink.demo import DEMO_ACTIONS, FINAL_ANSWER, DemoEnv
from ailink.testing import EmulatorGateway


@pytest.mark.parametrize("demo_gateway", ["ailink", "real"], indirect=True)
def test_the_scenario_charges_once_and_is_refused_the_refund(
    demo_gateway: EmulatorGateway, demo_env: Callable[..., DemoEnv]
) -> None:
    env = demo_env("demo-langchain-test", approval_timeout=30)
    approver = demo_gateway.approve_when_pending(count=1, timeout=30)
    outcome = langchain_scenario.run(env)
    (approval_id,) = approver.join()

    assert outcome.final_answer == FINAL_ANSWER
    statuses = [(a["status"], a["policy"]) for a in outcome.tool_artifacts]
    assert statuses == [("ok", None), ("ok", None), ("denied", "block-refunds")]
    # a gateway that holds the call (the real one) never names its approval
    assert outcome.tool_artifacts[1]["approval_id"] == (approval_id if demo_gateway.serves_extensions else None)
    stats = demo_gateway.payments_stats()
    assert (stats["charges"], stats["refunds"], stats["total_executions"]) == (1, 0, 1)
    assert [a["id"] for a in demo_gateway.approvals()] == [approval_id]
    session = demo_gateway.session("demo-langchain-test")
    paths = [r["path"] for r in session["requests"]]
    assert paths.count("/v1/chat/completions") == 4
    assert {str(action["path"]) for action in DEMO_ACTIONS} <= set(paths)
