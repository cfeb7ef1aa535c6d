"""Token settings: circuit breaker (get/set round trip), upstream list, log level names, upstream health."""

from __future__ import annotations

import httpx

from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client

CB_DEFAULT = {"enabled": True, "failure_threshold": 3, "recovery_cooldown_secs": 30, "half_open_max_requests": 1}
MSG = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


def test_circuit_breaker_defaults_create_and_update_round_trip(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        plain = ailink_gateway.create_token(upstream="llm")
        assert a.get(f"/api/v1/tokens/{plain}/circuit-breaker").json() == CB_DEFAULT
        created = a.post("/api/v1/tokens", json={
            "name": "cb", "upstream_url": "http://llm.mock",
            "circuit_breaker": {"enabled": True, "failure_threshold": 5, "recovery_cooldown_secs": 60}}).json()
        token, ref = created["token_id"], created["ref"]
        expected = {**CB_DEFAULT, "failure_threshold": 5, "recovery_cooldown_secs": 60}
        assert a.get(f"/api/v1/tokens/{token}/circuit-breaker").json() == expected
        assert a.get(f"/api/v1/tokens/{ref}").json()["circuit_breaker"] == expected
        update = {"enabled": False, "failure_threshold": 2, "recovery_cooldown_secs": 10, "half_open_max_requests": 3}
        assert a.patch(f"/api/v1/tokens/{token}/circuit-breaker", json=update).json() == update
        assert a.get(f"/api/v1/tokens/{ref}/circuit-breaker").json() == update
        for bad in ({"failure_threshold": 0}, {"enabled": "yes"}, {"half_open_max_requests": 1.5},
                    {"failure_rate_threshold": 2}, {"mystery": 1}):
            resp = a.patch(f"/api/v1/tokens/{token}/circuit-breaker", json=bad)
            assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_config", bad
        assert a.get(f"/api/v1/tokens/{ref}/circuit-breaker").json() == update  # bad input changed nothing
        assert a.get("/api/v1/tokens/ailink_v1_nope/circuit-breaker").status_code == 404
        refused = a.post("/api/v1/tokens", json={"name": "x", "upstream_url": "http://llm.mock",
                                                 "circuit_breaker": {"failure_threshold": -1}})
        assert refused.status_code == 422
        assert "x" not in [t["name"] for t in a.get("/api/v1/tokens").json()]


def test_upstream_list_and_log_level_names(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        upstreams = [{"url": "http://llm.mock", "weight": 70, "priority": 1},
                     {"url": "http://backup.invalid", "weight": 30, "priority": 2}]
        ref = a.post("/api/v1/tokens", json={"name": "lb", "upstream_url": "http://llm.mock", "upstreams": upstreams,
                                             "log_level": "full", "fallback_url": "http://backup.invalid"}).json()["ref"]
        page = a.get(f"/api/v1/tokens/{ref}").json()
        assert page["log_level"] == 2
        assert [(u["url"], u["weight"], u["priority"]) for u in page["upstreams"]] == \
            [("http://llm.mock", 70, 1), ("http://backup.invalid", 30, 2)]
        assert a.post("/api/v1/tokens", json={"name": "m", "upstream_url": "http://llm.mock",
                                              "log_level_name": "metadata"}).status_code == 201
        for bad in ({"upstreams": [{"url": "http://a.invalid", "weight": 0}]},
                    {"upstreams": [{"url": "http://a.invalid"}, {"url": "http://a.invalid"}]},
                    {"upstreams": [{"url": "ftp://a.invalid"}]}, {"log_level": "verbose"}, {"log_level": 7}):
            resp = a.post("/api/v1/tokens", json={"name": "bad", "upstream_url": "http://llm.mock", **bad})
            assert resp.status_code == 422, bad
        assert "bad" not in [t["name"] for t in a.get("/api/v1/tokens").json()]


def test_upstream_health_counts_consecutive_failed_forwards(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        token = a.post("/api/v1/tokens", json={"name": "flaky", "upstream_url": "http://llm.mock",
                                               "circuit_breaker": {"failure_threshold": 2}}).json()["token_id"]

        def health() -> dict[str, object]:
            (row,) = a.get("/api/v1/health/upstreams").json()
            assert isinstance(row, dict)
            return row

        assert health()["is_healthy"] is True and health()["failure_count"] == 0
        assert token not in a.get("/api/v1/health/upstreams").text
        ailink_gateway.script_llm(token, [{"status": 503}, {"status": 502}])
        with client(ailink_gateway) as c:
            assert c.post("/v1/chat/completions", json=MSG, headers=bearer(token)).status_code == 503
            assert health()["failure_count"] == 1 and health()["is_healthy"] is True
            assert c.post("/v1/chat/completions", json=MSG, headers=bearer(token)).status_code == 502
            assert health() == {**health(), "failure_count": 2, "is_healthy": False, "url": "http://llm.mock"}
            assert c.post("/v1/chat/completions", json=MSG, headers=bearer(token)).status_code == 200
        assert health()["failure_count"] == 0 and health()["is_healthy"] is True
        assert a.get("/api/v1/health/upstreams", params={"project_id": "nope"}).status_code == 404
    assert httpx.get(f"{ailink_gateway.url}/api/v1/health/upstreams").status_code == 401
