"""Proxying: upstream URL, services, credentials, BYOK, forwarded headers, query, SSE, upstream errors."""

from __future__ import annotations

import json
import time

from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client


def _echo(resp_json: dict[str, object]) -> dict[str, str]:
    headers = resp_json["headers"]
    assert isinstance(headers, dict)
    return headers


def test_token_upstream_plus_path_and_query(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        resp = c.post("/v1/echo/a/b", params={"x": "1", "y": "two"}, json={"k": "v"},
                      headers=bearer(token, **{"X-Session-Id": "s", "X-Custom": "dropped",
                                               "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
                                               "Idempotency-Key": "fwd-1", "User-Agent": "agent/1"}))
    body = resp.json()
    assert body["method"] == "POST" and body["path"] == "/v1/echo/a/b"
    # deviation from the real gateway, on purpose: the query string reaches the upstream
    assert body["query"] == "x=1&y=two"
    assert json.loads(body["body"]) == {"k": "v"}
    headers = _echo(body)
    assert "authorization" not in headers  # the virtual token never reaches the upstream
    assert "x-custom" not in headers and "x-session-id" not in headers
    assert headers["traceparent"].startswith("00-" + "a" * 32)
    assert headers["idempotency-key"] == "fwd-1"
    assert headers["user-agent"] == "agent/1"
    assert resp.headers["x-request-id"].startswith("req_")


def test_service_route_and_credential_injection(ailink_gateway: EmulatorGateway) -> None:
    cred_bearer = ailink_gateway.create_credential("sk-test-bearer-secret-1")
    cred_header = ailink_gateway.create_credential("raw-header-secret", injection_mode="header",
                                                   injection_header="X-Api-Key")
    ailink_gateway.create_service("pay", "payments", credential_id=cred_header)
    token = ailink_gateway.create_token(credential_secret="sk-token-level-secret")
    with client(ailink_gateway) as c:
        via_token = _echo(c.get("/v1/echo", headers=bearer(token)).json())
        assert via_token["authorization"] == "Bearer sk-token-level-secret"
        via_service = c.get("/v1/proxy/services/pay/v1/echo/x", headers=bearer(token)).json()
        assert via_service["path"] == "/v1/echo/x"
        assert _echo(via_service)["x-api-key"] == "raw-header-secret"
        # a stored credential wins over bring-your-own-key
        mixed = _echo(c.get("/v1/echo", headers=bearer(token, **{"X-Real-Authorization": "Bearer mine"})).json())
        assert mixed["authorization"] == "Bearer sk-token-level-secret"
        customers = c.get("/v1/proxy/services/pay/v1/customers", headers=bearer(token))
        assert customers.status_code == 200 and customers.json()["data"][0]["id"] == "cus_001"
    with admin(ailink_gateway) as a:
        creds = a.get("/api/v1/credentials").json()
        ids = {cr["id"] for cr in creds}
        assert len(ids) == 3 and {cred_bearer, cred_header} <= ids
        assert all("secret" not in cr for cr in creds)


def test_byok_passthrough(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        byok = _echo(c.get("/v1/echo", headers=bearer(token, **{"X-Real-Authorization": "Bearer sk-mine"})).json())
        assert byok["authorization"] == "Bearer sk-mine"
        alt = _echo(c.get("/v1/echo", headers=bearer(token, **{"X-Upstream-Authorization": "Bearer up"})).json())
        assert alt["authorization"] == "Bearer up"
        none = _echo(c.get("/v1/echo", headers=bearer(token)).json())
        assert "authorization" not in none and "x-real-authorization" not in none


def test_upstream_errors_pass_through(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        resp = c.get("/v1/customers/cus_999", headers=bearer(token))
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert err["code"] == "resource_missing" and "request_id" not in err
    assert resp.headers["x-ailink-cb-state"] == "closed"  # marks an upstream-derived answer


def test_sse_passthrough_streams_incrementally(ailink_gateway: EmulatorGateway,
                                               slow_upstream: tuple[str, list[str]]) -> None:
    url, _ = slow_upstream
    token = ailink_gateway.create_token(upstream=url)
    arrivals: list[float] = []
    lines: list[str] = []
    with client(ailink_gateway) as c, c.stream("GET", "/sse", headers=bearer(token)) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                lines.append(line)
                arrivals.append(time.monotonic())
    assert [json.loads(x[6:])["i"] for x in lines] == [0, 1, 2]
    # the first event arrived well before the last was produced (0.3 s apart upstream)
    assert arrivals[-1] - arrivals[0] >= 0.4
    (row,) = ailink_gateway.audit()
    assert row["is_streaming"] is True and row["status_code"] == 200


def test_llm_stream_via_proxy(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    with client(ailink_gateway) as c:
        resp = c.post("/v1/chat/completions", headers=bearer(token), json={
            "model": "mock-gpt", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "stream me please"}]})
    events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
    assert text == "Echo: stream me please"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]][-1] == "stop"
