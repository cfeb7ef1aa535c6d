"""Spend caps (token per period, session), shadow caps, budget headers, usage and capacity (issue 15)."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ailink import AIlinkClient, BudgetExceededError
from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, bearer, client


def chat(words: int = 3, **extra: Any) -> dict[str, Any]:
    """A sampled chat call (temperature 1): the gateway's response cache never answers it, so every call
    reaches the upstream and costs."""
    return {"model": "mock-gpt", "messages": [{"role": "user", "content": " ".join(["word"] * words)}],
            "temperature": 1, **extra}


def llm_token(gw: EmulatorGateway) -> tuple[str, str]:
    with admin(gw) as a:
        created = a.post("/api/v1/tokens", json={"name": "llm", "upstream_url": "http://llm.mock"}).json()
    return str(created["token_id"]), str(created["ref"])


def call_cost(gw: EmulatorGateway, body: dict[str, Any]) -> Decimal:
    """The cost of one such call, measured on a token of its own."""
    token, _ = llm_token(gw)
    with client(gw) as c:
        resp = c.post("/v1/chat/completions", json=body, headers=bearer(token))
    return Decimal(resp.headers["x-ailink-cost-usd"])


def token_spend(gw: EmulatorGateway, ref: str) -> Decimal:
    return sum((Decimal(r["estimated_cost_usd"]) for r in gw.audit() if r["token_ref"] == ref), Decimal(0))


def test_a_daily_cap_refuses_with_402_and_the_sdk_error_says_why(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:  # dear enough for the 4-decimal budget header to show each call
        a.put("/api/v1/pricing/mock-gpt", json={"input_per_1k_usd": 1, "output_per_1k_usd": 2})
    cost = call_cost(ailink_gateway, chat())
    token, ref = llm_token(ailink_gateway)
    limit = float(cost * Decimal("2.5"))
    with admin(ailink_gateway) as a:
        assert a.put(f"/api/v1/tokens/{ref}/spend", json={"period": "daily", "limit_usd": limit}).status_code == 204
        status = a.get(f"/api/v1/tokens/{token}/spend").json()
    assert status["daily_limit_usd"] == limit and status["monthly_limit_usd"] is None
    assert status["current_daily_usd"] == 0 and status["caps"][0]["mode"] == "enforce"
    remaining = []
    with client(ailink_gateway) as c:
        for _ in range(3):
            resp = c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
            assert resp.status_code == 200
            remaining.append(Decimal(resp.headers["x-ailink-budget-remaining-daily"]))
        refused = c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
    assert remaining[0] > remaining[1] > remaining[2] == 0  # the third call went over by less than its cost
    err = refused.json()["error"]
    assert refused.status_code == 402 and err["code"] == "spend_cap_reached" and err["type"] == "billing_error"
    assert err["details"] == {"period": "daily", "limit_usd": limit, "current_usd": float(3 * cost),
                              "forwarded": False}
    assert err["message"].startswith("Spend cap reached (USD): daily spend cap of $")
    with AIlinkClient(token, ailink_gateway.url) as sdk, pytest.raises(BudgetExceededError) as caught:
        sdk.chat("mock-gpt", "word word word")
    assert caught.value.limit == limit and caught.value.current == float(3 * cost)
    assert caught.value.period == "daily" and caught.value.status_code == 402
    rows = [r for r in ailink_gateway.audit() if r["token_ref"] == ref]
    assert sum(1 for r in rows if r["error_type"] == "spend_cap_reached") == 2 and len(rows) == 5
    ailink_gateway.admin.tokens.delete_spend_cap(token, "daily")
    with client(ailink_gateway) as c:
        assert c.post("/v1/chat/completions", json=chat(), headers=bearer(token)).status_code == 200


def test_a_reached_cap_refuses_every_request_of_the_token(ailink_gateway: EmulatorGateway) -> None:
    token, ref = llm_token(ailink_gateway)
    with client(ailink_gateway) as c:
        c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
        ailink_gateway.admin.tokens.set_spend_cap(ref, "lifetime", 1e-9)
        models = c.get("/v1/models", headers=bearer(token))
    assert models.status_code == 402 and models.json()["error"]["details"]["period"] == "lifetime"


@pytest.mark.parametrize("max_tokens", [None, 200])
def test_twenty_concurrent_callers_overspend_a_hard_cap_by_at_most_one_call(
        ailink_gateway: EmulatorGateway, make_upstream: Any, max_tokens: int | None) -> None:
    """A slow upstream keeps all twenty callers in flight at once; each answer reports 100 + 100 tokens."""
    llm = make_upstream("slow-llm", delay=0.2, usage_tokens=100)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "go"}], "temperature": 1}  # never cached
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    cost = Decimal("0.00125")  # 100 prompt tokens at $0.0025/1k + 100 completion tokens at $0.01/1k
    limit = cost * Decimal("10.5")
    with admin(ailink_gateway) as a:
        created = a.post("/api/v1/tokens", json={"name": "capped", "upstream_url": llm.url}).json()
    token, ref = created["token_id"], created["ref"]
    ailink_gateway.admin.tokens.set_spend_cap(token, "monthly", float(limit))
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def caller() -> None:
        with httpx.Client(base_url=ailink_gateway.url, timeout=60) as c:
            start.wait()
            for _ in range(2):
                resp = c.post("/v1/chat/completions", json=body, headers=bearer(token))
                with lock:
                    statuses.append(resp.status_code)
                if resp.status_code == 402:
                    assert resp.json()["error"]["details"]["forwarded"] is False

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    spent = token_spend(ailink_gateway, ref)
    assert len(statuses) == 40 and set(statuses) == {200, 402}
    assert llm.count() == statuses.count(200)  # refused calls never reached the upstream
    assert spent == statuses.count(200) * cost  # every forwarded call was charged once
    assert limit <= spent <= limit + cost  # the cap was reached and exceeded by at most one call's cost


def test_max_tokens_makes_the_reservation_tight_and_lets_calls_run_side_by_side(
        ailink_gateway: EmulatorGateway) -> None:
    token, ref = llm_token(ailink_gateway)
    ailink_gateway.admin.tokens.set_spend_cap(token, "daily", 1.0)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(httpx.post(
        f"{ailink_gateway.url}/v1/chat/completions", json=chat(max_tokens=50), headers=bearer(token),
        timeout=30).status_code)) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 10
    assert ailink_gateway.admin.tokens.get_spend(token)["current_daily_usd"] == float(token_spend(ailink_gateway, ref))


def test_shadow_caps_warn_instead_of_refusing(ailink_gateway: EmulatorGateway) -> None:
    token, _ = llm_token(ailink_gateway)
    ailink_gateway.admin.tokens.set_spend_cap(token, "daily", 1e-7, mode="shadow")
    with client(ailink_gateway) as c:
        answers = [c.post("/v1/chat/completions", json=chat(), headers=bearer(token)) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert all("shadow mode, not enforced" in r.headers["x-ailink-warning"] for r in answers)
    assert answers[-1].headers["x-ailink-budget-remaining-daily"] == "0.0000"


def test_budget_headers_follow_the_log_level(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        quiet = a.post("/api/v1/tokens", json={"name": "q", "upstream_url": "http://llm.mock",
                                               "log_level": 0}).json()["token_id"]
        a.put(f"/api/v1/tokens/{quiet}/spend", json={"period": "monthly", "limit_usd": 5})
    plain, _ = llm_token(ailink_gateway)
    with client(ailink_gateway) as c:
        assert "x-ailink-budget-remaining-monthly" not in c.post("/v1/chat/completions", json=chat(),
                                                                 headers=bearer(quiet)).headers
        assert not any(h.startswith("x-ailink-budget") for h in c.post(
            "/v1/chat/completions", json=chat(), headers=bearer(plain)).headers)


def test_session_caps_stop_one_run_only(ailink_gateway: EmulatorGateway) -> None:
    token, _ = llm_token(ailink_gateway)
    with admin(ailink_gateway) as a:
        assert a.put("/api/v1/sessions/run-1/spend-cap", json={"spend_cap_usd": 1}).status_code == 404
    with client(ailink_gateway) as c:
        first = c.post("/v1/chat/completions", json=chat(), headers=bearer(token, **{"X-Session-Id": "run-1"}))
        entity = ailink_gateway.admin.sessions.set_spend_cap("run-1", "0.0000001")
        assert entity["spend_cap_usd"] == "0.0000001" and first.status_code == 200
        refused = c.post("/v1/chat/completions", json=chat(), headers=bearer(token, **{"X-Session-Id": "run-1"}))
        other = c.post("/v1/chat/completions", json=chat(), headers=bearer(token, **{"X-Session-Id": "run-2"}))
    err = refused.json()["error"]
    assert refused.status_code == 402 and err["details"]["period"] == "session"
    assert err["message"] == "Session 'run-1' has exceeded its spend cap (0.0000001 USD)"
    assert other.status_code == 200
    assert ailink_gateway.admin.sessions.set_spend_cap("run-1", None)["spend_cap_usd"] is None
    with client(ailink_gateway) as c:
        assert c.post("/v1/chat/completions", json=chat(),
                      headers=bearer(token, **{"X-Session-Id": "run-1"})).status_code == 200


@pytest.mark.parametrize("bad", [{"period": "weekly", "limit_usd": 1}, {"period": "daily", "limit_usd": 0},
                                 {"period": "daily", "limit_usd": -2}, {"period": "daily", "limit_usd": "x"},
                                 {"period": "daily"}, {"period": "daily", "limit_usd": 1, "mode": "soft"},
                                 {"period": "daily", "limit_usd": True}])
def test_bad_caps_are_refused_and_change_nothing(ailink_gateway: EmulatorGateway, bad: dict[str, Any]) -> None:
    _, ref = llm_token(ailink_gateway)
    with admin(ailink_gateway) as a:
        assert a.put(f"/api/v1/tokens/{ref}/spend", json=bad).status_code == 422
        assert a.get(f"/api/v1/tokens/{ref}/spend").json()["caps"] == []
        assert a.put("/api/v1/tokens/tok_nope/spend", json={"period": "daily", "limit_usd": 1}).status_code == 404
        assert a.delete(f"/api/v1/tokens/{ref}/spend/weekly").status_code == 422


def test_usage_and_capacity_state_match_the_audit_log(ailink_gateway: EmulatorGateway) -> None:
    cost = call_cost(ailink_gateway, chat())
    token, ref = llm_token(ailink_gateway)
    sdk = ailink_gateway.admin.tokens
    sdk.set_spend_cap(token, "daily", float(cost * 10))
    sdk.set_spend_cap(token, "monthly", float(cost * 100))
    with client(ailink_gateway) as c:
        for _ in range(7):
            c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
        c.get("/v1/models", headers=bearer(token))
    report = sdk.usage(token)
    rows = [r for r in ailink_gateway.audit() if r["token_ref"] == ref]
    by_window = {w["window"]: w for w in report["windows"]}
    for window in ("hour", "day", "month", "lifetime"):
        w = by_window[window]
        assert w["requests"] == len(rows) == 8
        assert w["prompt_tokens"] == sum(r["prompt_tokens"] or 0 for r in rows)
        assert w["completion_tokens"] == sum(r["completion_tokens"] or 0 for r in rows)
        assert Decimal(str(w["spend_usd"])) == sum(Decimal(r["estimated_cost_usd"]) for r in rows) == 7 * cost
    day, month, hour = by_window["day"], by_window["month"], by_window["hour"]
    assert day["limit_usd"] == float(cost * 10) and day["capacity_state"] == "constrained"  # 30 % left
    assert Decimal(str(day["remaining_usd"])) == 3 * cost and day["used_fraction"] == 0.7
    assert month["capacity_state"] == "abundant" and hour["limit_usd"] is None
    assert hour["capacity_state"] == "abundant" and hour["predicted_exhaustion_at"] is None
    assert Decimal(str(day["rate_usd_per_hour"])) == 7 * cost
    as_of = _ts(report["as_of"])
    predicted = _ts(day["predicted_exhaustion_at"])
    assert abs(predicted - (as_of + 3 / 7 * 3600)) < 0.01 and day["exhausts_before_reset"] in (True, False)
    assert report["capacity_state"] == "constrained"
    with client(ailink_gateway) as c:
        for _ in range(2):
            c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
        assert sdk.usage(token)["windows"][1]["capacity_state"] == "critical"  # 10 % left
        c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
    exhausted = sdk.usage(token)
    assert exhausted["windows"][1]["capacity_state"] == "exhausted" == exhausted["capacity_state"]
    assert exhausted["windows"][1]["predicted_exhaustion_at"] == exhausted["as_of"]


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_real_profile_caps_without_extensions() -> None:
    gateway, stop = start_gateway(profile="real")
    try:
        token, ref = llm_token(gateway)
        with admin(gateway) as a:
            a.put(f"/api/v1/tokens/{ref}/spend", json={"period": "lifetime", "limit_usd": 1e-9})
            status = a.get(f"/api/v1/tokens/{ref}/spend").json()
            assert set(status) == {"daily_limit_usd", "monthly_limit_usd", "lifetime_limit_usd", "current_daily_usd",
                                   "current_monthly_usd", "current_lifetime_usd"}
            assert a.get(f"/api/v1/tokens/{ref}/usage").status_code == 404
        with client(gateway) as c:
            c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
            refused = c.post("/v1/chat/completions", json=chat(), headers=bearer(token))
        assert refused.status_code == 402 and "details" not in refused.json()["error"]
        assert "lifetime spend cap of $" in refused.json()["error"]["message"]
    finally:
        stop()


def test_failover_charges_once(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    down, up = make_upstream("down", status=503), make_upstream("up", usage_tokens=1000)
    with admin(ailink_gateway) as a:
        token = a.post("/api/v1/tokens", json={"name": "two-keys", "upstream_url": down.url, "upstreams": [
            {"url": down.url, "priority": 1}, {"url": up.url, "priority": 2}]}).json()["token_id"]
        a.put(f"/api/v1/tokens/{token}/spend", json={"period": "daily", "limit_usd": 100})
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with client(ailink_gateway) as c:
        resp = c.post("/v1/chat/completions", json=body, headers=bearer(token, **{"Idempotency-Key": "once"}))
        again = c.post("/v1/chat/completions", json=body, headers=bearer(token, **{"Idempotency-Key": "once"}))
    assert resp.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert resp.headers["x-ailink-cost-usd"] == "0.0125"  # 1,000 in + 1,000 out tokens at gpt-4o prices
    assert ailink_gateway.admin.tokens.get_spend(token)["current_daily_usd"] == 0.0125  # the replay cost nothing
    assert down.count() == 1 and up.count(key="once") == 1
