"""Idempotency (protocol §5): replay, in-flight 409, 422 on a different request, what is (not) stored."""

from __future__ import annotations

import asyncio
import threading

import httpx

from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client

CHARGE = {"amount": 700, "currency": "usd", "customer": "cus_002"}


def test_replay_returns_the_stored_response(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    headers = bearer(token, **{"Idempotency-Key": "pay-1", "X-AIlink-Idempotency-Key": "pay-1"})
    with client(ailink_gateway) as c:
        first = c.post("/v1/charges", json=CHARGE, headers=headers)
        second = c.post("/v1/charges", json=CHARGE, headers=headers)
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert ailink_gateway.payments_stats() == {"total_executions": 1, "charges": 1, "refunds": 0,
                                               "by_idempotency_key": {"pay-1": 1}}


def test_keys_are_scoped_per_token(ailink_gateway: EmulatorGateway) -> None:
    t1, t2 = ailink_gateway.create_token(name="a"), ailink_gateway.create_token(name="b")
    with client(ailink_gateway) as c:
        for token in (t1, t2):
            assert "idempotent-replayed" not in c.post("/v1/charges", json=CHARGE,
                                                       headers=bearer(token, **{"Idempotency-Key": "k"})).headers
    assert ailink_gateway.payments_stats()["by_idempotency_key"] == {"k": 2}


def test_different_request_same_key_is_422(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    headers = bearer(token, **{"Idempotency-Key": "k2"})
    with client(ailink_gateway) as c:
        assert c.post("/v1/charges", json=CHARGE, headers=headers).status_code == 200
        for kwargs in ({"json": {**CHARGE, "amount": 701}}, {"json": CHARGE, "params": {"q": "1"}}):
            resp = c.post("/v1/charges", headers=headers, **kwargs)  # type: ignore[arg-type]
            assert resp.status_code == 422
            assert resp.json()["error"]["code"] == "idempotency_key_reused"
        other_path = c.post("/v1/refunds", json=CHARGE, headers=headers)
        assert other_path.status_code == 422
    assert ailink_gateway.payments_stats()["total_executions"] == 1


def test_in_flight_duplicate_gets_409(ailink_gateway: EmulatorGateway, slow_upstream: tuple[str, list[str]]) -> None:
    url, hits = slow_upstream
    token = ailink_gateway.create_token(upstream=url)
    headers = bearer(token, **{"Idempotency-Key": "slow-1"})
    results: list[httpx.Response] = []
    with client(ailink_gateway) as c, client(ailink_gateway) as c2:
        first = threading.Thread(target=lambda: results.append(c.post("/pause", json={}, headers=headers)))
        first.start()
        while not hits:  # the first request has reached the upstream
            threading.Event().wait(0.01)
        dup = c2.post("/pause", json={}, headers=headers)
        first.join()
        replay = c2.post("/pause", json={}, headers=headers)
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "idempotency_in_progress"
    assert dup.headers["retry-after"] == "1"
    assert results[0].status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert hits == ["/pause"]


async def test_concurrent_requests_one_key_execute_once(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    headers = bearer(token, **{"Idempotency-Key": "burst"})
    async with httpx.AsyncClient(base_url=ailink_gateway.url, timeout=30) as c:
        answers = await asyncio.gather(*(c.post("/v1/charges", json=CHARGE, headers=headers) for _ in range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 409}
    ok = [a for a in answers if a.status_code == 200]
    assert len({a.json()["id"] for a in ok}) == 1
    stats = ailink_gateway.payments_stats()
    assert stats["by_idempotency_key"] == {"burst": 1} and stats["charges"] == 1


def test_every_complete_upstream_answer_is_stored_5xx_and_429_included(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        for status in (500, 503, 429, 400):
            headers = bearer(token, **{"Idempotency-Key": f"fail-{status}", "X-Mock-Status": str(status)})
            failed = c.post("/v1/charges", json=CHARGE, headers=headers)
            assert failed.status_code == status and "idempotent-replayed" not in failed.headers
            assert "x-ailink-cb-state" in failed.headers  # an upstream answer (its circuit: closed, then open)
            replay = c.post("/v1/charges", json=CHARGE, headers=headers)
            assert replay.status_code == status and replay.headers["idempotent-replayed"] == "true"
            assert replay.headers["x-ailink-cb-state"] == failed.headers["x-ailink-cb-state"]  # still the upstream's
            assert replay.content == failed.content
    stats = ailink_gateway.payments_stats()["by_idempotency_key"]
    assert stats == {"fail-500": 1, "fail-503": 1, "fail-429": 1, "fail-400": 1}  # never forwarded twice


def test_refusals_before_forwarding_store_nothing(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[
        {"name": "no-refunds", "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
                                          "then": {"action": "deny"}}]},
        {"name": "rl", "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
                                  "then": {"action": "rate_limit", "window": "1m", "max_requests": 1}}]},
    ])
    with client(ailink_gateway) as c:
        d = bearer(token, **{"Idempotency-Key": "deny-1"})
        for _ in range(2):
            denied = c.post("/v1/refunds", json={}, headers=d)
            assert denied.status_code == 403 and "idempotent-replayed" not in denied.headers
            assert denied.json()["error"]["details"]["forwarded"] is False
            assert "x-ailink-cb-state" not in denied.headers  # a gateway answer, not the upstream's
        assert c.post("/v1/charges", json=CHARGE, headers=bearer(token)).status_code == 200
        r = bearer(token, **{"Idempotency-Key": "rl-1"})
        for _ in range(2):
            limited = c.post("/v1/charges", json=CHARGE, headers=r)
            assert limited.status_code == 429 and "idempotent-replayed" not in limited.headers
            assert limited.json()["error"]["details"]["forwarded"] is False
        # a refusal releases the key: once it no longer applies, the same key goes through
        assert c.post("/v1/echo", json={"n": 1}, headers=bearer(token, **{"X-Session-Id": "s-1"})).status_code == 200
        with admin(ailink_gateway) as a:
            assert a.patch("/api/v1/sessions/s-1/status", json={"status": "paused"}).status_code == 200
            keyed = bearer(token, **{"Idempotency-Key": "sess-1", "X-Session-Id": "s-1"})
            refused = c.post("/v1/echo", json={"n": 2}, headers=keyed)
            assert refused.status_code == 403 and refused.json()["error"]["details"]["forwarded"] is False
            assert a.patch("/api/v1/sessions/s-1/status", json={"status": "active"}).status_code == 200
        again = c.post("/v1/echo", json={"n": 2}, headers=keyed)
        assert again.status_code == 200 and "idempotent-replayed" not in again.headers
        assert again.json()["headers"]["idempotency-key"] == "sess-1"
    assert ailink_gateway.payments_stats()["by_idempotency_key"] == {}


def test_get_responses_are_not_stored(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    headers = bearer(token, **{"Idempotency-Key": "get-1"})
    with client(ailink_gateway) as c:
        for _ in range(2):
            resp = c.get("/v1/customers", headers=headers)
            assert resp.status_code == 200 and "idempotent-replayed" not in resp.headers
        # a POST with the same key is a fresh request: GETs left no record behind
        assert "idempotent-replayed" not in c.post("/v1/charges", json=CHARGE, headers=headers).headers


def test_streamed_response_is_replayed(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    body = {"model": "mock-gpt", "stream": True, "messages": [{"role": "user", "content": "once"}]}
    headers = bearer(token, **{"Idempotency-Key": "stream-1"})
    with client(ailink_gateway) as c:
        first = c.post("/v1/chat/completions", json=body, headers=headers)
        second = c.post("/v1/chat/completions", json=body, headers=headers)
    assert first.text.endswith("data: [DONE]\n\n")
    assert second.text == first.text and second.headers["idempotent-replayed"] == "true"
