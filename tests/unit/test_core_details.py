"""Smaller core rules: upstream vs gateway errors, empty keys, cookies, request URLs, and the
session tree builder."""

from __future__ import annotations

import httpx
import pytest

import ailink
from ailink import Session, SessionRequest
from ailink._errors import error_from_response, is_gateway_error
from ailink._session_tree import build_span_tree, describe_request

from .helpers import Driver, Recorder


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


async def test_a_cookie_one_upstream_sets_is_not_sent_on_later_calls(driver: Driver) -> None:
    # One gateway host fronts every upstream: a kept cookie would travel to all of them.
    recorder = Recorder(script=[httpx.Response(200, json={}, headers={"Set-Cookie": "upstream_session=abc; Path=/"})])
    client = driver.client(recorder)
    await driver.call(client, "GET", "/v1/proxy/crm/contacts")
    await driver.call(client, "POST", "/v1/proxy/payments/charges", json={})
    await driver.call(client, "GET", "/v1/proxy/crm/contacts", headers={"Cookie": "chosen=by-the-caller"})
    assert recorder.header("cookie") == [None, None, "chosen=by-the-caller"]
    assert len(client._http.cookies) == 0


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_sdk_http_clients_keep_no_cookies(kind: str) -> None:
    recorder = Recorder(default=httpx.Response(200, json={}, headers={"Set-Cookie": "upstream_session=abc; Path=/"}))
    config = ailink.ClientConfig(api_key="ailink_v1_test_token", gateway_url="http://gw")
    explicit = {"chosen": "by-the-caller"}
    if kind == "sync":
        with ailink.http_client(config, transport=recorder.transport) as http:
            http.cookies = explicit
            http.get("http://gw/v1/models")
            http.get("http://gw/v1/models")
    else:
        async with ailink.async_http_client(config, transport=recorder.transport) as ahttp:
            ahttp.cookies = explicit
            await ahttp.get("http://gw/v1/models")
            await ahttp.get("http://gw/v1/models")
    # cookies set on the client on purpose are sent; the one the answer set is not kept
    assert recorder.header("cookie") == ["chosen=by-the-caller", "chosen=by-the-caller"]


async def test_calls_to_one_path_never_share_query_params(driver: Driver) -> None:
    # Request URLs are parsed once per path (a cache): the params of one call must not stick to it.
    recorder = Recorder()
    client = driver.client(recorder)
    await driver.call(client, "GET", "/v1/customers", params={"limit": 2, "email": None})
    await driver.call(client, "GET", "/v1/customers")
    await driver.call(client, "GET", "/v1/customers/cus_1", params={"expand": "card"})
    await driver.call(client, "POST", "/v1/customers", json={})
    assert [str(r.url) for r in recorder.requests] == [
        "http://gateway.test/v1/customers?limit=2",
        "http://gateway.test/v1/customers",
        "http://gateway.test/v1/customers/cus_1?expand=card",
        "http://gateway.test/v1/customers",
    ]


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


def test_a_routed_request_says_which_target_served_it_and_why() -> None:
    routed = SessionRequest(id="1", method="POST", path="/v1/chat/completions", status_code=200,
                            upstream_url="http://127.0.0.1:9001/v1/chat/completions", route_strategy="lowest_cost",
                            route_reason="cheapest at $0.3750/M blended (gpt-4o-mini)")
    line = describe_request(routed)
    assert "via http://127.0.0.1:9001 (lowest_cost: cheapest at $0.3750/M blended (gpt-4o-mini))" in line
    plain = SessionRequest(id="2", method="GET", path="/v1/x", status_code=200, upstream_url="http://a/v1/x")
    assert "via" not in describe_request(plain)  # a single upstream: nothing was chosen
