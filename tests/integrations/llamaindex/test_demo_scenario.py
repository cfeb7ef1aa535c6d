"""The ``ailink demo llamaindex`` scenario against a demo-seeded emulator, with a background approver."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from llama_index.tools.ailink import demo as llamaindex_scenario

from ailink.demo import FINAL_ANSWER, TOOL_NAME, DemoEnv
from ailink.testing import EmulatorGateway


@pytest.mark.parametrize("demo_gateway", ["ailink", "real"], indirect=True)
def test_scenario_charges_once_and_refund_is_denied(
    demo_gateway: EmulatorGateway, demo_env: Callable[..., DemoEnv]
) -> None:
    env = demo_env("demo-llamaindex-test")
    approver = demo_gateway.approve_when_pending(count=1, timeout=20)
    outcome = llamaindex_scenario.run(env)
    [approval_id] = approver.join()
    assert outcome.final_answer == FINAL_ANSWER
    assert [a["status"] for a in outcome.tool_artifacts] == ["ok", "ok", "denied"]
    # a gateway that holds the call (the real one) never names its approval
    assert outcome.tool_artifacts[1]["approval_id"] == (approval_id if demo_gateway.serves_extensions else None)
    assert [a["id"] for a in demo_gateway.approvals()] == [approval_id]
    assert outcome.tool_artifacts[2]["policy"] == "block-refunds"
    stats = demo_gateway.payments_stats()
    assert stats["charges"] == 1 and stats["refunds"] == 0
    requests = demo_gateway.session(env.session_id)["requests"]
    assert len([r for r in requests if r["tool_name"] == TOOL_NAME]) >= 3
    assert len([r for r in requests if r["path"] == "/v1/chat/completions"]) == 4
    assert all(r["parent_span_id"] for r in requests)
