"""A gateway that is down, refuses the token or answers garbage never ends a CrewAI kickoff."""

from __future__ import annotations

from typing import Any

import pytest
from crewai_ailink import crewai_tool
from crewai_support import CHARGE, single_agent_crew, tool_call

TOOL = "payments_api"
TOKEN = "ailink_v1_crew_failure_token"
# protocol §10.3: nothing was sent or the gateway refused → request failed; a POST whose answer
# could not be read may have been performed → outcome unknown (never retryable)
EXPECTED = {"unreachable": "request_failed", "unauthorized": "request_failed", "not_http": "outcome_unknown"}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_the_kickoff_completes_and_the_agent_reads_the_failure(kind: str, failing_gateway: Any) -> None:
    tool = crewai_tool(token=TOKEN, name=TOOL, description="Call the payments API.", methods=["GET", "POST"],
                       gateway_url=failing_gateway(kind), retries=0)
    crew, llm, _ = single_agent_crew(tool, [tool_call(TOOL, CHARGE), "Could not charge."])
    output = crew.kickoff()

    assert output.raw == "Could not charge."
    [record] = output.tasks_output[0].tool_failures
    failure = record.failure
    assert failure.code == EXPECTED[kind]
    assert failure.details["status"] == ("outcome_unknown" if kind == "not_http" else "error")
    [seen] = llm.seen_tool_results
    assert failure.message.strip() and failure.message in seen and TOKEN not in seen
    if kind == "not_http":
        assert failure.retryable is False
        assert failure.details["idempotency_key"] in seen  # the key to re-send with
