"""Tool calls against a gateway that is down, refuses the token or answers garbage, per framework.

Every framework's real invocation path answers with its error result and readable text, never an
exception; the outcome follows the protocol (§10.3): a call that never reached the gateway or was
refused failed, a POST whose answer could not be read may have been performed (outcome unknown,
and the text names the idempotency key to re-send it with).
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway_stubs import describe
from tool_paths import PATHS, TOOL

TOKEN = "ailink_v1_gateway_failure_token"
READ_FAILURES = ("not_http", "truncated")  # the request went out; no answer could be read
KINDS = ("unreachable", "unauthorized", *READ_FAILURES, "broken_pending")
CALLS = {"GET": {"method": "GET", "path": "/v1/customers/cus_001"},
         "POST": {"method": "POST", "path": "/v1/charges", "body": {"amount": 700, "currency": "usd"}}}


def expected_statuses(kind: str, method: str) -> set[str]:
    if method == "POST" and kind in READ_FAILURES:
        return {"outcome_unknown"}
    if method == "POST" and kind == "broken_pending":  # a 202 it cannot read: parked or not, unknown
        return {"error", "outcome_unknown"}
    return {"error"}


@pytest.mark.parametrize("method", list(CALLS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path_name", list(PATHS))
async def test_a_failing_gateway_gives_the_framework_error_result(path_name: str, kind: str, method: str,
                                                                  failing_gateway: Any) -> None:
    path = PATHS[path_name]
    tool = path.build(token=TOKEN, name=TOOL, description="Call the payments API.", methods=["GET", "POST"],
                      gateway_url=failing_gateway(kind), retries=0)
    try:
        answer = await path.invoke(tool, CALLS[method], "call_failing")
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} escaped the tool: {describe(str(exc), 300)}")
    seen = path.read(answer)
    assert seen.is_error and seen.status in expected_statuses(kind, method)
    assert seen.text.strip() and TOKEN not in seen.text
    if path_name.startswith("crewai"):
        assert seen.code == ("outcome_unknown" if seen.status == "outcome_unknown" else "request_failed")
    if seen.status == "outcome_unknown":
        assert seen.idempotency_key and seen.idempotency_key in seen.text
