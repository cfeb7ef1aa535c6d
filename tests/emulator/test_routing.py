"""Upstream pools, circuit breakers, failover without duplicates, and dynamic routing (issue 15).

Every upstream here is a counting loopback server that does not deduplicate: each request that
reaches it is an execution.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, bearer, client
from .counting_upstream import CountingUpstream

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def pool_token(gw: EmulatorGateway, upstreams: list[dict[str, Any]], **extra: Any) -> str:
    with admin(gw) as a:
        resp = a.post("/api/v1/tokens", json={"name": "pool", "upstream_url": upstreams[0]["url"],
                                              "upstreams": upstreams, **extra})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["token_id"])


def route_token(gw: EmulatorGateway, action: dict[str, Any], upstream_url: str, **extra: Any) -> str:
    with admin(gw) as a:
        pol = a.post("/api/v1/policies", json={"name": "router", "rules": [{"when": {"always": True},
                                                                            "then": action}]})
        assert pol.status_code == 201, pol.text
        resp = a.post("/api/v1/tokens", json={"name": "routed", "upstream_url": upstream_url,
                                              "policy_ids": [pol.json()["id"]], **extra})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["token_id"])


def served_by(resp: httpx.Response) -> str:
    return str(resp.json()["served_by"])


def test_weights_are_honoured_and_each_target_gets_its_own_credential(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    heavy, light = make_upstream("heavy"), make_upstream("light")
    key_a = ailink_gateway.create_credential("sk-heavy-key-0001")
    key_b = ailink_gateway.create_credential("sk-light-key-0002")
    token = pool_token(ailink_gateway, [{"url": heavy.url, "weight": 75, "credential_id": key_a},
                                        {"url": light.url, "weight": 25, "credential_id": key_b}])
    with client(ailink_gateway) as c:
        answers = Counter(served_by(c.get("/v1/ping", headers=bearer(token))) for _ in range(2000))
    assert heavy.count() + light.count() == 2000
    assert abs(answers["heavy"] / 2000 - 0.75) <= 0.05 and abs(answers["light"] / 2000 - 0.25) <= 0.05
    assert {s.headers["authorization"] for s in heavy.seen} == {"Bearer sk-heavy-key-0001"}
    assert {s.headers["authorization"] for s in light.seen} == {"Bearer sk-light-key-0002"}


def test_a_lower_priority_takes_over_only_when_the_first_tier_is_open(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    primary, backup = make_upstream("primary", status=503), make_upstream("backup")
    token = pool_token(ailink_gateway, [{"url": primary.url, "priority": 1}, {"url": backup.url, "priority": 2}],
                       circuit_breaker={"failure_threshold": 2, "recovery_cooldown_secs": 60})
    with client(ailink_gateway) as c:
        first = [c.post("/v1/work", json={"i": i}, headers=bearer(token)) for i in range(5)]
    assert [r.status_code for r in first] == [200] * 5 and {served_by(r) for r in first} == {"backup"}
    assert primary.count() == 2  # two 503s opened its circuit; then it was skipped
    assert first[-1].headers["x-ailink-route-strategy"] == "weighted"
    assert "skipped (circuit open)" in first[-1].headers["x-ailink-route-reason"]


def test_a_failing_target_trips_its_breaker_and_recovers_after_the_cooldown(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    sick, well = make_upstream("sick", status=500), make_upstream("well")
    token = pool_token(ailink_gateway, [{"url": sick.url}, {"url": well.url}],
                       circuit_breaker={"failure_threshold": 3, "recovery_cooldown_secs": 1})

    def health() -> dict[str, dict[str, Any]]:
        with admin(ailink_gateway) as a:
            return {row["url"]: row for row in a.get("/api/v1/health/upstreams").json()}

    with client(ailink_gateway) as c:
        statuses = [c.get("/v1/read", headers=bearer(token)).status_code for _ in range(12)]
        assert sick.count() == 3 and statuses.count(500) == 3  # a 500 is an answer: no failover, but it counts
        assert health()[sick.url]["state"] == "open" and health()[sick.url]["failure_count"] == 3
        assert health()[sick.url]["cooldown_remaining_secs"] == 1 and health()[well.url]["state"] == "closed"
        sick.status = 200
        time.sleep(1.1)  # the cooldown passes: the next turn of the sick target is a probe
        assert health()[sick.url]["state"] == "half_open"
        after = Counter(served_by(c.get("/v1/read", headers=bearer(token))) for _ in range(10))
    assert after == {"sick": 5, "well": 5}  # the probe succeeded: the circuit closed, turns resumed
    assert health()[sick.url]["state"] == "closed" and health()[sick.url]["failure_count"] == 0


def test_a_failed_probe_opens_the_circuit_again(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    sick, well = make_upstream("sick", status=503), make_upstream("well")
    # A cooldown long enough that a slow machine does not see it pass again before the state is read.
    token = pool_token(ailink_gateway, [{"url": sick.url}, {"url": well.url}],
                       circuit_breaker={"failure_threshold": 1, "recovery_cooldown_secs": 2,
                                        "half_open_max_requests": 1})
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        for _ in range(4):
            assert served_by(c.get("/v1/x", headers=bearer(token))) == "well"
        assert sick.count() == 1
        time.sleep(2.1)
        for _ in range(4):  # the pool's turn comes to the sick target within a few calls: its probe
            assert served_by(c.get("/v1/x", headers=bearer(token))) == "well"  # fails over
            if sick.count() == 2:
                break
        assert sick.count() == 2
        assert {r["url"]: r["state"] for r in a.get("/api/v1/health/upstreams").json()}[sick.url] == "open"
        for _ in range(4):
            assert served_by(c.get("/v1/x", headers=bearer(token))) == "well"
    assert sick.count() == 2


def test_failure_rate_opens_a_circuit(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    flaky, well = make_upstream("flaky"), make_upstream("well")
    token = pool_token(ailink_gateway, [{"url": flaky.url}, {"url": well.url}],
                       circuit_breaker={"failure_threshold": 100, "failure_rate_threshold": 0.5,
                                        "min_sample_size": 4, "recovery_cooldown_secs": 60})
    with client(ailink_gateway) as c:
        for status in (200, 500, 200, 500):  # alternate answers: 2 failures of 4, never 2 in a row
            flaky.status = status
            c.get("/v1/x", headers=bearer(token))
            c.get("/v1/x", headers=bearer(token))
        before = flaky.count()
        for _ in range(6):
            assert served_by(c.get("/v1/x", headers=bearer(token))) == "well"
    assert before == 4 and flaky.count() == 4


def test_every_circuit_open_is_a_503_before_forwarding(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    one, two = make_upstream("one", status=503), make_upstream("two", status=503)
    token = pool_token(ailink_gateway, [{"url": one.url}, {"url": two.url + "/base?api_key=sk-hidden-000"}],
                       circuit_breaker={"failure_threshold": 1, "recovery_cooldown_secs": 30})
    with client(ailink_gateway) as c:
        first = c.post("/v1/pay", json={}, headers=bearer(token, **{"Idempotency-Key": "k1"}))
        assert first.status_code == 503 and "x-ailink-cb-state" in first.headers  # the last target's own 503
        hits = one.count() + two.count()
        refused = c.post("/v1/pay", json={}, headers=bearer(token, **{"Idempotency-Key": "k2"}))
    assert hits == 2 and one.count() + two.count() == 2  # nothing reached an upstream
    err = refused.json()["error"]
    assert refused.status_code == 503 and err["code"] == "all_upstreams_exhausted"
    assert err["details"]["reason"] == "circuit_breaker_open" and err["details"]["forwarded"] is False
    assert 1 <= err["details"]["cooldown_secs"] <= 30 and refused.headers["retry-after"] == str(
        err["details"]["cooldown_secs"])
    assert err["details"]["upstream"] in (one.url, two.url + "/base") and "sk-hidden" not in refused.text
    assert "x-ailink-cb-state" not in refused.headers  # a gateway answer


def test_a_single_upstream_is_always_sent_to_and_its_state_reported(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    lone = make_upstream("lone", status=502)
    with admin(ailink_gateway) as a:
        token = a.post("/api/v1/tokens", json={"name": "lone", "upstream_url": lone.url,
                                               "circuit_breaker": {"failure_threshold": 2}}).json()["token_id"]
    with client(ailink_gateway) as c:
        states = [c.get("/v1/x", headers=bearer(token)).headers["x-ailink-cb-state"] for _ in range(3)]
        assert states == ["closed", "open", "open"] and lone.count() == 3
        lone.status = 200
        assert c.get("/v1/x", headers=bearer(token)).headers["x-ailink-cb-state"] == "closed"


def test_disabled_breakers_never_open(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    sick, well = make_upstream("sick", status=503), make_upstream("well")
    token = pool_token(ailink_gateway, [{"url": sick.url}, {"url": well.url}],
                       circuit_breaker={"enabled": False})
    with client(ailink_gateway) as c:
        answers = [c.get("/v1/x", headers=bearer(token)) for _ in range(6)]
    assert {served_by(r) for r in answers} == {"well"} and sick.count() == 3  # failover still, but no circuit
    assert {r.headers["x-ailink-cb-state"] for r in answers} == {"disabled"}


# ---------------------------------------------------------------------------------------- failover


@pytest.mark.parametrize("failure", ["refused", "503", "429"])
def test_failover_executes_each_logical_call_exactly_once(
        ailink_gateway: EmulatorGateway, make_upstream: Any, failure: str) -> None:
    bad, good = make_upstream("bad", status={"503": 503, "429": 429}.get(failure, 200)), make_upstream("good")
    if failure == "refused":
        bad.refuse()
    token = pool_token(ailink_gateway, [{"url": bad.url, "weight": 50}, {"url": good.url, "weight": 50}],
                       circuit_breaker={"failure_threshold": 1000})
    keys = [f"charge-{i}" for i in range(20)]
    with client(ailink_gateway) as c:
        for key in keys:
            resp = c.post("/v1/charges", json={"amount": 5}, headers=bearer(token, **{"Idempotency-Key": key}))
            assert resp.status_code == 200 and served_by(resp) == "good"
            again = c.post("/v1/charges", json={"amount": 5}, headers=bearer(token, **{"Idempotency-Key": key}))
            assert again.headers["idempotent-replayed"] == "true" and again.content == resp.content
    assert all(good.count(key=key) == 1 for key in keys)  # each action executed exactly once
    if failure == "refused":
        assert bad.count() == 0
    else:  # the bad target answered "not processed" for half of the first attempts, never twice per key
        assert 0 < bad.count() <= len(keys) and all(bad.count(key=key) <= 1 for key in keys)
    rows = [r for r in ailink_gateway.audit() if r["path"] == "/v1/charges" and r["policy_result"] == "allowed"]
    failed_over = [r for r in rows if len(r["router_info"]["attempts"]) == 2]
    assert len(rows) == len(keys) and failed_over and all(r["upstream_url"] == good.url + "/v1/charges"
                                                           for r in rows)


def test_no_failover_after_forwarding_without_a_complete_answer(
        fast_timeout_gateway: EmulatorGateway, make_upstream: Any) -> None:
    slow, good = make_upstream("slow", delay=3.0), make_upstream("good")
    token = pool_token(fast_timeout_gateway, [{"url": slow.url, "priority": 1}, {"url": good.url, "priority": 2}])
    headers = bearer(token, **{"Idempotency-Key": "pay-once"})
    with client(fast_timeout_gateway) as c:
        first = c.post("/v1/charges", json={"amount": 5}, headers=headers)
        again = c.post("/v1/charges", json={"amount": 5}, headers=headers)
    assert first.status_code == 502 and first.json()["error"]["details"]["ambiguous"] is True
    assert again.status_code == 502 and again.json()["error"]["code"] == "outcome_unknown"
    assert slow.count() == 1 and good.count() == 0  # the backup never saw it: the first may have acted


def test_a_complete_500_is_the_answer_not_a_reason_to_fail_over(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    broken, good = make_upstream("broken", status=500), make_upstream("good")
    token = pool_token(ailink_gateway, [{"url": broken.url, "priority": 1}, {"url": good.url, "priority": 2}])
    with client(ailink_gateway) as c:
        resp = c.post("/v1/charges", json={}, headers=bearer(token, **{"Idempotency-Key": "k"}))
    assert resp.status_code == 500 and served_by(resp) == "broken" and good.count() == 0


# ---------------------------------------------------------------------------------------- dynamic routes


def test_lowest_cost_picks_the_cheapest_model_and_rewrites_the_body(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    a, b, c_ = make_upstream("a"), make_upstream("b"), make_upstream("c")
    token = route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "lowest_cost", "pool": [
        {"model": "gpt-4o", "upstream_url": a.url}, {"model": "gpt-4o-mini", "upstream_url": b.url},
        {"model": "claude-3-opus", "upstream_url": c_.url}]}, a.url)
    with client(ailink_gateway) as c:
        resp = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token, **{"X-Session-Id": "cost-run"}))
    assert served_by(resp) == "b" and b.seen[0].model == "gpt-4o-mini"
    assert resp.headers["x-ailink-route-strategy"] == "lowest_cost"
    assert resp.headers["x-ailink-route-reason"].startswith("cheapest at $0.3750/M blended")
    assert resp.headers["x-ailink-upstream"] == b.url + "/v1/chat/completions"
    (row,) = ailink_gateway.session("cost-run")["requests"]
    assert row["upstream_url"] == b.url + "/v1/chat/completions" and row["route_strategy"] == "lowest_cost"
    assert row["model"] == "gpt-4o-mini" and row["route_reason"].startswith("cheapest")


def test_lowest_latency_measures_then_picks_the_fastest(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    slow, fast, middle = make_upstream("slow", delay=0.3), make_upstream("fast"), make_upstream("middle", delay=0.1)
    token = route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "lowest_latency", "pool": [
        {"model": "m", "upstream_url": u.url} for u in (slow, fast, middle)]}, slow.url)
    with client(ailink_gateway) as c:
        warmup = [served_by(c.get("/v1/x", headers=bearer(token))) for _ in range(3)]
        then = [c.get("/v1/x", headers=bearer(token)) for _ in range(5)]
    assert warmup == ["slow", "fast", "middle"]  # every target measured once
    assert {served_by(r) for r in then} == {"fast"} and "p50" in then[0].headers["x-ailink-route-reason"]


def test_round_robin_takes_turns(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    ups = [make_upstream(n) for n in ("a", "b", "c")]
    token = route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "round_robin", "pool": [
        {"model": "m", "upstream_url": u.url} for u in ups]}, ups[0].url)
    with client(ailink_gateway) as c:
        order = [served_by(c.get("/v1/x", headers=bearer(token))) for _ in range(6)]
    assert order == ["a", "b", "c", "a", "b", "c"]


def test_least_busy_avoids_the_target_with_a_request_in_flight(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    busy, idle = make_upstream("busy"), make_upstream("idle")
    token = route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "least_busy", "pool": [
        {"model": "m", "upstream_url": u.url} for u in (busy, idle)]}, busy.url)
    busy.hold()
    held: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: held.append(
        httpx.get(f"{ailink_gateway.url}/v1/slow", headers=bearer(token), timeout=30)))
    worker.start()
    deadline = time.monotonic() + 10
    while busy.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with client(ailink_gateway) as c:
        second = c.get("/v1/x", headers=bearer(token))
    busy.release()
    worker.join(10)
    assert served_by(held[0]) == "busy" and served_by(second) == "idle"
    assert second.headers["x-ailink-route-reason"] == "0 in-flight requests"


def test_weighted_random_follows_the_pool_weights(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    a, b = make_upstream("a"), make_upstream("b")
    token = route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "weighted_random", "pool": [
        {"model": "m", "upstream_url": a.url, "weight": 1}, {"model": "m", "upstream_url": b.url, "weight": 3}]},
        a.url)
    with client(ailink_gateway) as c:
        picks = Counter(served_by(c.get("/v1/x", headers=bearer(token))) for _ in range(400))
    assert 0.63 <= picks["b"] / 400 <= 0.87  # expected 0.75; this band is > 5 standard deviations wide


def test_multi_objective_weighs_cost_reliability_and_fairness(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    cheap, dear, third = make_upstream("cheap"), make_upstream("dear"), make_upstream("third")
    pool = [{"model": "gpt-4o-mini", "upstream_url": cheap.url}, {"model": "gpt-4o", "upstream_url": dear.url},
            {"model": "gpt-4-turbo", "upstream_url": third.url}]

    def token_for(weights: dict[str, float]) -> str:
        return route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "multi_objective",
                                            "weights": weights, "pool": pool}, cheap.url)

    with client(ailink_gateway) as c:
        by_cost = token_for({"cost": 1})
        assert {served_by(c.get("/v1/x", headers=bearer(by_cost))) for _ in range(3)} == {"cheap"}
        fair = token_for({"fairness": 1})
        assert Counter(served_by(c.get("/v1/x", headers=bearer(fair))) for _ in range(6)) == {
            "cheap": 2, "dear": 2, "third": 2}
        reliable = token_for({"reliability": 0.8, "cost": 0.2})
        cheap.status = 500
        for _ in range(3):
            c.get("/v1/x", headers=bearer(reliable))  # the cheap target fails three times
        cheap.status = 200
        resp = c.get("/v1/x", headers=bearer(reliable))
    assert served_by(resp) != "cheap" and resp.headers["x-ailink-route-strategy"] == "multi_objective"
    assert "reliability" in resp.headers["x-ailink-route-reason"]


def test_open_pool_targets_are_skipped_then_the_fallback(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    a, b, spare = make_upstream("a", status=503), make_upstream("b", status=503), make_upstream("spare")
    token = route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "round_robin", "pool": [
        {"model": "m1", "upstream_url": a.url}, {"model": "m2", "upstream_url": b.url}],
        "fallback": {"model": "m3", "upstream_url": spare.url}}, a.url,
        circuit_breaker={"failure_threshold": 1, "recovery_cooldown_secs": 60})
    with client(ailink_gateway) as c:
        first = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        later = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
    assert served_by(first) == "spare" and first.json()["model"] == "m3"  # a then b answered 503: failed over
    assert served_by(later) == "spare" and later.headers["x-ailink-route-strategy"] == "fallback"
    assert a.count() == 1 and b.count() == 1


@pytest.mark.parametrize("bad", [
    {"strategy": "cheapest", "pool": [{"model": "m", "upstream_url": "http://a.invalid"}]},
    {"strategy": "round_robin", "pool": []},
    {"strategy": "round_robin", "pool": [{"model": "m", "upstream_url": "ftp://a.invalid"}]},
    {"strategy": "round_robin", "pool": [{"model": "", "upstream_url": "http://a.invalid"}]},
    {"strategy": "round_robin", "pool": [{"model": "m", "upstream_url": "http://a.invalid"}] * 2},
    {"strategy": "round_robin", "weights": {"cost": 1}, "pool": [{"model": "m", "upstream_url": "http://a.invalid"}]},
    {"strategy": "multi_objective", "weights": {"speed": 1}, "pool": [{"model": "m", "upstream_url": "http://a.invalid"}]},
    {"strategy": "multi_objective", "weights": {"cost": 0}, "pool": [{"model": "m", "upstream_url": "http://a.invalid"}]},
])
def test_malformed_dynamic_routes_are_refused(ailink_gateway: EmulatorGateway, bad: dict[str, Any]) -> None:
    with admin(ailink_gateway) as a:
        resp = a.post("/api/v1/policies", json={"name": "r", "rules": [{"then": {"action": "dynamic_route", **bad}}]})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"


def test_real_profile_routes_but_has_no_multi_objective(make_upstream: Any) -> None:
    a, b = make_upstream("a"), make_upstream("b")
    sick, ill = make_upstream("sick", status=503), make_upstream("ill", status=503)
    gateway, stop = start_gateway(profile="real", retry_backoff=0.01)
    try:
        pool = pool_token(gateway, [{"url": sick.url}, {"url": ill.url}],
                          circuit_breaker={"failure_threshold": 1, "recovery_cooldown_secs": 30})
        with client(gateway) as c:
            c.get("/v1/x", headers=bearer(pool))  # each answers 503 (four times: the real gateway retries GETs)
            exhausted = c.get("/v1/x", headers=bearer(pool))
        assert exhausted.status_code == 503 and sick.count() == ill.count() == 4
        details = exhausted.json()["error"]["details"]  # as the real gateway's, without this project's marks
        assert set(details) == {"reason", "upstream", "cooldown_secs"} and 1 <= details["cooldown_secs"] <= 30
        rr = route_token(gateway, {"action": "dynamic_route", "strategy": "round_robin", "pool": [
            {"model": "m", "upstream_url": u.url} for u in (a, b)]}, a.url)
        mo = route_token(gateway, {"action": "dynamic_route", "strategy": "multi_objective", "weights": {"cost": 1},
                                   "pool": [{"model": "m", "upstream_url": a.url}]}, a.url)
        with client(gateway) as c:
            assert [served_by(c.get("/v1/x", headers=bearer(rr))) for _ in range(2)] == ["a", "b"]
            refused = c.get("/v1/x", headers=bearer(mo))
        assert refused.status_code == 500 and "details" not in refused.json()["error"]
        assert a.count() == 1
    finally:
        stop()


def test_token_upstream_validation(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        for bad in ([{"url": "http://a.invalid", "weight": 0}], [{"url": "http://a.invalid"}] * 2,
                    [{"url": "http://a.invalid", "priority": -1}]):
            resp = a.post("/api/v1/tokens", json={"name": "x", "upstream_url": "http://a.invalid", "upstreams": bad})
            assert resp.status_code == 422, bad


def test_routing_headers_and_audit_never_show_a_query_credential(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    up = make_upstream("q")
    cred = ailink_gateway.create_credential("sk-query-secret-123", injection_mode="query", injection_header="key")
    token = pool_token(ailink_gateway, [{"url": up.url, "credential_id": cred}, {"url": up.url + "/two"}])
    with client(ailink_gateway) as c:
        answers = [c.get("/v1/x", headers=bearer(token)) for _ in range(2)]
    assert all("sk-query-secret" not in str(r.headers) for r in answers)
    assert "sk-query-secret" not in str(ailink_gateway.audit())
    assert any(s.path == "/v1/x" for s in up.seen)


def test_counting_upstream_helper_counts_by_key(make_upstream: Any) -> None:
    up: CountingUpstream = make_upstream("h")
    httpx.post(up.url + "/a", json={}, headers={"Idempotency-Key": "x"})
    httpx.post(up.url + "/a", json={})
    assert up.count() == 2 and up.count(key="x") == 1


def test_the_sdk_raises_circuit_open_with_where_and_when(ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    import ailink
    from ailink.exceptions import CircuitOpenError

    one, two = make_upstream("one", status=503), make_upstream("two", status=503)
    token = pool_token(ailink_gateway, [{"url": one.url}, {"url": two.url}],
                       circuit_breaker={"failure_threshold": 1, "recovery_cooldown_secs": 20})
    with ailink.AIlinkClient(token, ailink_gateway.url, max_retries=0) as sdk:
        with pytest.raises(ailink.GatewayError):  # the last target's own 503 (an upstream answer)
            sdk.post("/v1/pay", json={})
        with pytest.raises(CircuitOpenError) as caught:
            sdk.post("/v1/pay", json={})
    assert caught.value.status_code == 503 and caught.value.upstream in (one.url, two.url)
    assert caught.value.cooldown_secs is not None and 1 <= caught.value.cooldown_secs <= 20
    assert one.count() + two.count() == 2


@pytest.mark.parametrize("ailink_gateway", [{"generation": "trueflow"}], indirect=True)
def test_the_trueflow_generation_spells_routing_cost_and_budget_headers_its_way(
        ailink_gateway: EmulatorGateway, make_upstream: Any) -> None:
    """Every branded answer header (routing, cost, budgets) has the generation's spelling only."""
    a, b = make_upstream("a", usage_tokens=50), make_upstream("b", usage_tokens=50)
    token = route_token(ailink_gateway, {"action": "dynamic_route", "strategy": "round_robin", "pool": [
        {"model": "gpt-4o", "upstream_url": a.url}, {"model": "gpt-4o-mini", "upstream_url": b.url}]}, a.url,
        log_level=1)
    ailink_gateway.admin.tokens.set_spend_cap(token, "daily", 1000)
    ailink_gateway.admin.tokens.set_spend_cap(token, "monthly", 1e-9, mode="shadow")
    with client(ailink_gateway) as c:
        resp = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token, **{"X-TrueFlow-No-Cache": "true"}))
    assert resp.status_code == 200 and served_by(resp) == "a"
    assert resp.headers["x-trueflow-route-strategy"] == "round_robin"
    assert resp.headers["x-trueflow-upstream"] == a.url + "/v1/chat/completions"
    assert resp.headers["x-trueflow-cb-state"] == "closed"
    assert float(resp.headers["x-trueflow-cost-usd"]) > 0
    assert "shadow mode, not enforced" in resp.headers["x-trueflow-warning"]
    for name in ("route-strategy", "route-reason", "upstream", "cb-state", "cost-usd", "budget-remaining-daily",
                 "budget-remaining-monthly", "warning"):
        assert f"x-trueflow-{name}" in resp.headers and f"x-ailink-{name}" not in resp.headers, name
