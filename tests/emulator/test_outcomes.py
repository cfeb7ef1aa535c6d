"""Outcome semantics (protocol §5, §10.3) against a real loopback upstream that does not dedupe.

Every request that reaches ``FaultUpstream`` counts as an execution. The rules under test:
a complete answer (any status) is stored and replayed; a request that may have reached the
upstream without a complete answer becomes *outcome unknown* and is never forwarded again;
a request refused before forwarding stores nothing and says ``details.forwarded = false``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, bearer, client
from .fault_upstream import FaultUpstream

ALWAYS_APPROVE: dict[str, Any] = {
    "name": "approve-every-post",
    "rules": [{"when": {"field": "request.method", "op": "eq", "value": "POST"},
               "then": {"action": "require_approval", "timeout": "5m"}}],
}


def _key(k: str, **extra: str) -> dict[str, str]:
    return {"X-AIlink-Idempotency-Key": k, **extra}


def _details(resp: httpx.Response) -> dict[str, Any]:
    details: dict[str, Any] = resp.json()["error"].get("details") or {}
    return details


def test_complete_5xx_is_stored_and_replayed(ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key("k-500"))
    with client(ailink_gateway) as c:
        first = c.post("/status/500", json={"n": 1}, headers=headers)
        replays = [c.post("/status/500", json={"n": 1}, headers=headers) for _ in range(3)]
    assert first.status_code == 500 and first.json()["error"]["message"] == "upstream says no"
    assert first.headers["x-ailink-cb-state"] == "closed"
    for replay in replays:
        assert replay.status_code == 500 and replay.content == first.content
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.headers["x-ailink-cb-state"] == "closed"
    assert fault_upstream.count("/status/500") == 1


def test_upstream_401_stays_an_upstream_answer_when_replayed(ailink_gateway: EmulatorGateway,
                                                              fault_upstream: FaultUpstream) -> None:
    from ailink._errors import AuthenticationError, UpstreamError, error_from_response

    token = ailink_gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key("k-401"))
    with client(ailink_gateway) as c:
        first = c.post("/lookalike-401", json={}, headers=headers)
        replay = c.post("/lookalike-401", json={}, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == first.content
    for resp in (first, replay):  # the provider's key is bad, not the gateway token
        assert resp.status_code == 401 and resp.headers["x-ailink-cb-state"] == "closed"
        error = error_from_response(resp)
        assert isinstance(error, UpstreamError) and not isinstance(error, AuthenticationError)
    assert fault_upstream.count("/lookalike-401") == 1


@pytest.mark.parametrize("path", ["/reset", "/close", "/hang"])
def test_no_complete_answer_becomes_outcome_unknown(fast_timeout_gateway: EmulatorGateway,
                                                    fault_upstream: FaultUpstream, path: str) -> None:
    token = fast_timeout_gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key(f"amb{path}"))
    with client(fast_timeout_gateway) as c:
        first = c.post(path, json={"amount": 1}, headers=headers)
        assert first.status_code == 502
        assert first.json()["error"]["code"] == "upstream_failed"
        assert _details(first) == {"ambiguous": True, "idempotency_key": f"amb{path}"}
        if path == "/hang":
            assert "timed out" in first.json()["error"]["message"]
        for _ in range(3):
            again = c.post(path, json={"amount": 1}, headers=headers)
            assert again.status_code == 502
            assert again.json()["error"]["code"] == "outcome_unknown"
            assert _details(again) == {"ambiguous": True, "idempotency_key": f"amb{path}"}
            assert "x-ailink-cb-state" not in again.headers  # a gateway answer
    assert fault_upstream.count(path) == 1  # never forwarded again


def test_stream_cut_mid_body_becomes_outcome_unknown(ailink_gateway: EmulatorGateway,
                                                     fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key("sse-cut"))
    with client(ailink_gateway) as c:
        with pytest.raises(httpx.HTTPError), c.stream("POST", "/sse-cut", json={}, headers=headers) as resp:
            assert resp.status_code == 200
            resp.read()  # the client sees the cut too (no clean end of the stream)
        again = c.post("/sse-cut", json={}, headers=headers)
    assert again.status_code == 502 and again.json()["error"]["code"] == "outcome_unknown"
    assert fault_upstream.count("/sse-cut") == 1


def test_complete_stream_is_stored(ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key("sse-ok"))
    with client(ailink_gateway) as c:
        first = c.post("/sse", json={}, headers=headers)
        again = c.post("/sse", json={}, headers=headers)
    assert first.text.count("data: ") == 3
    assert again.text == first.text and again.headers["idempotent-replayed"] == "true"
    assert fault_upstream.count("/sse") == 1


def test_client_gone_mid_stream_is_outcome_unknown(ailink_gateway: EmulatorGateway,
                                                   fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key("sse-gone"))
    with client(ailink_gateway) as c, c.stream("POST", "/sse-slow", json={}, headers=headers) as resp:
        next(resp.iter_lines())  # one event, then the client hangs up
    with client(ailink_gateway) as c:
        deadline = time.monotonic() + 20
        again = c.post("/sse-slow", json={}, headers=headers)
        while again.status_code == 409 and time.monotonic() < deadline:  # until the gateway notices
            time.sleep(0.1)
            again = c.post("/sse-slow", json={}, headers=headers)
    assert again.status_code == 502 and again.json()["error"]["code"] == "outcome_unknown"
    assert fault_upstream.count("/sse-slow") == 1


def test_connection_refused_is_not_forwarded_and_releases_the_key(
        ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key("refused-1"))
    fault_upstream.refuse()
    with client(ailink_gateway) as c:
        for _ in range(2):
            refused = c.post("/ok", json={"n": 1}, headers=headers)
            assert refused.status_code == 502 and refused.json()["error"]["code"] == "upstream_failed"
            assert _details(refused) == {"forwarded": False}
        fault_upstream.listen()
        done = c.post("/ok", json={"n": 1}, headers=headers)
        replay = c.post("/ok", json={"n": 1}, headers=headers)
    assert done.status_code == 200 and "idempotent-replayed" not in done.headers
    assert replay.headers["idempotent-replayed"] == "true"
    assert fault_upstream.count("/ok") == 1


def test_in_flight_key_answers_409_then_outcome_unknown(fault_upstream: FaultUpstream) -> None:
    gateway, stop = start_gateway(upstream_timeout=3.0)  # long enough for the duplicate to land in flight
    try:
        _in_flight_then_unknown(gateway, fault_upstream)
    finally:
        stop()


def _in_flight_then_unknown(gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = gateway.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **_key("hang-2"))
    results: list[httpx.Response] = []
    with client(gateway) as c, client(gateway) as c2:
        worker = threading.Thread(target=lambda: results.append(c.post("/hang", json={}, headers=headers)))
        worker.start()
        while fault_upstream.count("/hang") == 0:
            time.sleep(0.01)
        during = c2.post("/hang", json={}, headers=headers)
        worker.join()
        after = c2.post("/hang", json={}, headers=headers)
    assert during.status_code == 409 and during.json()["error"]["code"] == "idempotency_in_progress"
    assert _details(during)["forwarded"] is False  # this duplicate itself was not forwarded
    assert results[0].status_code == 502 and _details(results[0])["ambiguous"] is True
    assert after.status_code == 502 and after.json()["error"]["code"] == "outcome_unknown"
    assert fault_upstream.count("/hang") == 1


def test_get_failures_are_not_stored(ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url)
    with client(ailink_gateway) as c:
        for _ in range(2):
            resp = c.get("/reset", headers=bearer(token, **_key("get-1")))
            assert resp.status_code == 502 and _details(resp)["ambiguous"] is True
    assert fault_upstream.count("/reset") == 2  # a GET is re-sent: GETs are not stored (§5)


def test_approved_execution_without_complete_answer_is_unknown(
        ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url, policies=[ALWAYS_APPROVE])
    headers = bearer(token, **_key("apr-reset", Prefer="respond-async"))
    with client(ailink_gateway) as c:
        apr_id = c.post("/reset", json={"amount": 9}, headers=headers).json()["approval_id"]
        ailink_gateway.decide(apr_id, "approved")
        results = [c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token)) for _ in range(2)]
        resent = c.post("/reset", json={"amount": 9}, headers=headers)
    for resp in [*results, resent]:
        assert resp.status_code == 502 and resp.json()["error"]["code"] == "outcome_unknown"
        assert _details(resp)["ambiguous"] is True and _details(resp)["approval_id"] == apr_id
    assert fault_upstream.count("/reset") == 1


def test_approved_execution_refused_by_the_upstream_is_tried_again(
        ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url, policies=[ALWAYS_APPROVE])
    headers = bearer(token, **_key("apr-refused", Prefer="respond-async"))
    with client(ailink_gateway) as c:
        apr_id = c.post("/ok", json={"amount": 9}, headers=headers).json()["approval_id"]
        fault_upstream.refuse()
        ailink_gateway.decide(apr_id, "approved")
        refused = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token))
        assert refused.status_code == 502 and _details(refused)["forwarded"] is False
        fault_upstream.listen()
        done = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token))
        again = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token))
    assert done.status_code == 200 and done.json()["body"] == '{"amount":9}'
    assert again.content == done.content
    assert fault_upstream.count("/ok") == 1


def test_pending_approval_blocking_resend_gets_the_single_execution(
        ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway.create_token(upstream=fault_upstream.url, policies=[ALWAYS_APPROVE])
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        apr_id = c.post("/ok", json={"n": 3}, headers=bearer(token, **_key("blk", Prefer="respond-async"))).json()[
            "approval_id"]
        approver = ailink_gateway.approve_when_pending(1)
        held = c.post("/ok", json={"n": 3}, headers=bearer(token, **_key("blk")))
        approver.join()
        assert a.get(f"/api/v1/approvals/{apr_id}").json()["executed"] is True
    assert held.status_code == 200 and held.headers["x-ailink-approval-id"] == apr_id
    assert fault_upstream.count("/ok") == 1
