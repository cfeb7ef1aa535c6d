"""Smaller core rules: upstream vs gateway errors, empty keys, and the session tree builder."""

from __future__ import annotations

import httpx
import pytest

import ailink
from ailink import Session, SessionRequest
from ailink._errors import error_from_response, is_gateway_error
from ailink._session_tree import build_span_tree, describe_request


def _response(status: int, body: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("POST", "http://gw/v1/x"))


def test_an_upstream_rate_limit_is_not_the_gateways() -> None:
    # OpenAI's own 429 uses the same code as the gateway's; the gateway marks upstream answers.
    body = {"error": {"code": "rate_limit_exceeded", "message": "Rate limit reached", "type": "requests"}}
    upstream = _response(429, body, **{"x-ailink-cb-state": "closed"})
    assert not is_gateway_error(upstream)
    assert type(error_from_response(upstream)) is ailink.UpstreamError
    gateway = _response(429, {"error": {**body["error"], "type": "rate_limit_error", "request_id": "r"}})
    assert isinstance(error_from_response(gateway), ailink.RateLimitError)


def test_an_empty_idempotency_key_is_refused() -> None:
    config = ailink.ClientConfig(api_key="ailink_v1_test_token", gateway_url="http://gw")
    with pytest.raises(ValueError, match="must not be empty"):
        config.build_request("POST", "/v1/charges", json={}, idempotency_key="")


def _request(i: int, parent: str | None, span_path: list[list[str]] | None = None, **fields: object) -> SessionRequest:
    props = {"span_path": span_path} if span_path is not None else None
    return SessionRequest(id=str(i), created_at=f"2026-11-22T10:00:0{i}Z", parent_span_id=parent,
                          properties=props, **fields)  # type: ignore[arg-type]


def test_session_tree_nests_by_span_path_and_groups_by_parent() -> None:
    agent, tool_a, tool_b, llm = "a" * 16, "b" * 16, "c" * 16, "d" * 16
    session = Session(session_id="s", requests=[
        _request(1, llm, [[agent, "agent"], [llm, "llm"]], method="POST", path="/v1/chat/completions"),
        _request(2, tool_a, [[agent, "agent"], [tool_a, "tool"]], method="POST", path="/v1/charges",
                 status_code=202, tool_name="pay", approval_id="apr_1"),
        _request(3, tool_a, [[agent, "agent"], [tool_a, "tool:pay"]], method="POST", path="/v1/charges",
                 status_code=200, tool_name="pay", approval_id="apr_1", approval_wait_ms=3200),
        _request(4, tool_b, None, method="GET", path="/v1/customers", status_code=200, tool_name="pay"),
    ])
    root = build_span_tree(session)
    assert root.label == "session s"
    [agent_node, tool_b_node] = root.children
    assert (agent_node.label, tool_b_node.label) == ("agent", "tool:pay")  # no path: grouped by parent span
    assert [c.span_id for c in agent_node.children] == [llm, tool_a]
    tool_a_node = agent_node.children[1]
    assert tool_a_node.label == "tool:pay"  # the more specific label a later request knew
    assert [r.id for r in tool_a_node.requests] == ["2", "3"]
    assert "approval apr_1, waited 3.2 s" in describe_request(tool_a_node.requests[1])
    assert len(root.walk()) == 5
