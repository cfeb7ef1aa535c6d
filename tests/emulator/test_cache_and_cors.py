"""The real gateway's response cache and CORS, in both emulator profiles."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from ailink.emulator._cache import ResponseCache, cache_key
from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client

both_profiles = pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)
CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "cache me"}], "temperature": 0}


def calls(gw: EmulatorGateway) -> int:
    """How many chat completions the mock LLM (the upstream) answered."""
    return int(gw.running.app.state.emulator.llm.calls)


@both_profiles
def test_an_identical_deterministic_request_is_answered_from_the_cache(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token(upstream="llm")
    with client(gw) as c:
        first = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        second = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
    assert first.json()["id"] == second.json()["id"] and calls(gw) == 1
    assert "x-ailink-cache" not in first.headers  # a miss says nothing (there is no MISS)
    assert second.headers["x-ailink-cache"] == "HIT" and second.headers["content-type"] == "application/json"
    assert "x-ailink-cb-state" not in second.headers  # a hit carries no upstream headers
    hit, miss = gw.audit()  # newest first
    assert (hit["cache_hit"], miss["cache_hit"]) == (True, False)


@both_profiles
@pytest.mark.parametrize(("change", "headers"), [
    ({"temperature": 0.9}, {}),
    ({}, {"Cache-Control": "no-cache"}),
    ({}, {"Cache-Control": "max-age=0, no-store"}),
    ({}, {"X-AIlink-No-Cache": "true"}),
    ({}, {"X-AIlink-No-Cache": "1"}),
])
def test_what_is_never_answered_from_the_cache(ailink_gateway: EmulatorGateway, change: dict[str, Any],
                                               headers: dict[str, str]) -> None:
    gw = ailink_gateway
    token = gw.create_token(upstream="llm")
    with client(gw) as c:
        answers = [c.post("/v1/chat/completions", json={**CHAT, **change}, headers=bearer(token, **headers))
                   for _ in range(2)]
    assert answers[0].json()["id"] != answers[1].json()["id"] and calls(gw) == 2
    assert not any("x-ailink-cache" in a.headers for a in answers)


def test_no_cache_header_of_the_trueflow_generation(ailink_gateway_trueflow: EmulatorGateway) -> None:
    gw = ailink_gateway_trueflow
    token = gw.create_token(upstream="llm")
    with client(gw) as c:
        cached = [c.post("/v1/chat/completions", json=CHAT, headers=bearer(token)) for _ in range(2)]
        fresh = [c.post("/v1/chat/completions", json=CHAT, headers=bearer(token, **{"X-TrueFlow-No-Cache": "true"}))
                 for _ in range(2)]
    assert cached[1].headers["x-trueflow-cache"] == "HIT" and "x-ailink-cache" not in cached[1].headers
    assert fresh[0].json()["id"] != fresh[1].json()["id"]


def test_streams_errors_other_tokens_and_large_answers_are_not_cached(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token(upstream="llm")
    other = gw.create_token(name="other", upstream="llm")
    gw.script_llm(token, [{"status": 500, "body": {"error": {"message": "boom", "type": "server_error"}}}])
    with client(gw) as c:
        def ask(body: dict[str, Any], who: str = token) -> httpx.Response:
            return c.post("/v1/chat/completions", json=body, headers=bearer(who))

        failed, recovered = ask(CHAT), ask(CHAT)  # only 2xx answers are kept
        mine, theirs = ask({**CHAT, "seed": 7}), ask({**CHAT, "seed": 7}, other)  # the key includes the token
        streamed = [ask({**CHAT, "stream": True}).text for _ in range(2)]
        big = {**CHAT, "messages": [{"role": "user", "content": "x " * 140_000}]}
        large = [ask(big) for _ in range(2)]  # answers over 256 KiB are not kept
    assert failed.status_code == 500 and recovered.status_code == 200 and "x-ailink-cache" not in recovered.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert streamed[0] != streamed[1] and all("data: [DONE]" in s for s in streamed)
    assert large[0].json()["id"] != large[1].json()["id"]
    assert calls(gw) == 8


def test_the_cache_sits_behind_the_policies(ailink_gateway: EmulatorGateway) -> None:
    """A cached answer is still subject to the token's policies (checked before the cache, as the real gateway)."""
    deny = {"name": "closed", "rules": [{"when": {"field": "request.headers.x-closed", "op": "exists", "value": None},
                                         "then": {"action": "deny", "message": "closed"}}]}
    token = ailink_gateway.create_token(upstream="llm", policies=[deny])
    with client(ailink_gateway) as c:
        c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        refused = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token, **{"X-Closed": "1"}))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "policy_denied"


def test_cache_key_and_expiry() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "ignored"}
    key = cache_key("tok_1", "POST", {}, body, "x-ailink-no-cache")
    assert key is not None and key == cache_key("tok_1", "POST", {}, {**body, "user": "other"}, "x-ailink-no-cache")
    assert key != cache_key("tok_2", "POST", {}, body, "x-ailink-no-cache")
    assert cache_key("tok_1", "GET", {}, body, "x-ailink-no-cache") is None
    assert cache_key("tok_1", "POST", {}, {"messages": []}, "x-ailink-no-cache") is None  # no model
    assert cache_key("tok_1", "POST", {}, {**body, "temperature": 0.1}, "x-ailink-no-cache") is not None
    cache = ResponseCache(ttl=0.05)
    cache.put(key, 200, "application/json", b"{}")
    cache.put("other", 404, "application/json", b"{}")
    assert cache.get(key) is not None and cache.get("other") is None
    time.sleep(0.1)
    assert cache.get(key) is None  # expired


# ---------------------------------------------------------------------- CORS


@both_profiles
@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:8080"])
def test_cors_for_local_origins(ailink_gateway: EmulatorGateway, origin: str) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        preflight = c.options("/v1/chat/completions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization,Content-Type"})
        data_plane = c.get("/v1/customers/cus_001", headers=bearer(token, Origin=origin))
        management = a.get("/api/v1/approvals", headers={"Origin": origin})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    for answer in (data_plane, management):
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin
        assert "origin" in answer.headers["vary"].lower()


def test_cors_refuses_other_origins(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        preflight = c.options("/v1/customers", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "GET"})
        answer = c.get("/v1/customers", headers=bearer(token, Origin="https://evil.example"))
        no_origin = c.get("/v1/customers", headers=bearer(token))
    assert preflight.status_code == 200 and "access-control-allow-origin" not in preflight.headers
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in no_origin.headers


def test_the_inbox_is_not_shared_with_other_origins(ailink_gateway: EmulatorGateway) -> None:
    """[ext] The reviewers' inbox answers its own origin only: no CORS headers for another local port."""
    origin = "http://localhost:5173"
    with client(ailink_gateway) as c:
        page = c.get("/ui/login", headers={"Origin": origin})
        preflight = c.options("/ui/approvals", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert page.status_code == 200 and "access-control-allow-origin" not in page.headers
    assert "access-control-allow-origin" not in preflight.headers
