"""Analytics and billing from the audit log; experiments and webhook subscriptions (deliveries: test_webhooks)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx

from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client

DENY_REFUNDS = {"name": "block-refunds", "rules": [{"when": {"field": "request.path", "op": "eq",
                                                             "value": "/v1/refunds"}, "then": {"action": "deny"}}]}


def test_analytics_from_the_audit_log(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(name="agent", upstream="payments", policies=[DENY_REFUNDS])
    idle = ailink_gateway.create_token(name="idle", upstream="payments")
    with client(ailink_gateway) as c:
        for team in ("red", "red", "blue"):
            c.get("/v1/customers", headers={**bearer(token), "X-Properties": json.dumps({"team": team})})
        c.post("/v1/refunds", json={"charge": "ch_1"}, headers=bearer(token))
    with admin(ailink_gateway) as a:
        (summary,) = a.get("/api/v1/analytics/tokens").json()
        assert summary["name"] == "agent" and summary["total_requests"] == 4 and summary["errors"] == 1
        assert token not in json.dumps(summary) and summary["last_active"] is not None
        volume = a.get(f"/api/v1/analytics/tokens/{token}/volume").json()
        assert sum(v["count"] for v in volume) == 4 and all(v["hour"].endswith(":00:00.000Z") for v in volume)
        assert a.get(f"/api/v1/analytics/tokens/{token}/status").json() == [{"status": 200, "count": 3},
                                                                            {"status": 403, "count": 1}]
        latency = a.get(f"/api/v1/analytics/tokens/{token}/latency").json()
        assert set(latency) == {"p50", "p90", "p99"} and latency["p50"] <= latency["p90"] <= latency["p99"]
        assert a.get(f"/api/v1/analytics/tokens/{idle}/latency").json() == {"p50": 0.0, "p90": 0.0, "p99": 0.0}
        assert a.get(f"/api/v1/analytics/tokens/{idle}/volume").json() == []
        assert a.get("/api/v1/analytics/tokens/ailink_v1_nope/status").status_code == 404
        by_tag = a.get("/api/v1/analytics/spend/breakdown", params={"group_by": "tag:team"}).json()
        assert [(b["dimension"], b["request_count"]) for b in by_tag["breakdown"]] == \
            [("red", 2), ("blue", 1), ("untagged", 1)]
        assert by_tag["total_requests"] == 4 and by_tag["dimension_label"] == "team"
        by_token = a.get("/api/v1/analytics/spend/breakdown", params={"group_by": "token"}).json()
        assert by_token["breakdown"] == [{"dimension": "agent", "request_count": 4, "total_cost_usd": 0.0}]
        for params in ({"group_by": "colour"}, {"hours": 0}, {"hours": 9000}):
            assert a.get("/api/v1/analytics/spend/breakdown", params=params).status_code == 400


def test_billing_usage_per_month(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="payments")
    with client(ailink_gateway) as c:
        for _ in range(3):
            c.get("/v1/customers", headers=bearer(token))
    now = datetime.now(timezone.utc)
    with admin(ailink_gateway) as a:
        usage = a.get("/api/v1/billing/usage").json()
        assert usage["period"] == f"{now.year:04d}-{now.month:02d}" and usage["total_requests"] == 3
        assert set(usage) == {"org_id", "period", "total_requests", "total_tokens_used", "total_spend_usd",
                              "updated_at"}
        same = a.get("/api/v1/billing/usage", params={"period": now.strftime("%Y-%m-01")}).json()
        assert same["total_requests"] == 3
        assert a.get("/api/v1/billing/usage", params={"period": "1999-12"}).json()["total_requests"] == 0
        assert a.get("/api/v1/billing/usage", params={"period": "last month"}).status_code == 422
    assert httpx.get(f"{ailink_gateway.url}/api/v1/billing/usage").status_code == 401


def test_experiments_are_stored_listed_and_stopped(ailink_gateway: EmulatorGateway) -> None:
    variants = [{"name": "control", "weight": 50, "model": "gpt-4o"},
                {"name": "treatment", "weight": 50, "set_body_fields": {"model": "claude-3-5-sonnet"}}]
    with admin(ailink_gateway) as a:
        created = a.post("/api/v1/experiments", json={"name": "gpt-vs-claude", "variants": variants})
        assert created.status_code == 201
        exp = created.json()
        assert exp["status"] == "running" and exp["scope"] == "project"
        assert exp["variants"][0]["set_body_fields"] == {"model": "gpt-4o"}
        assert [e["id"] for e in a.get("/api/v1/experiments").json()] == [exp["id"]]
        results = a.get(f"/api/v1/experiments/{exp['id']}/results").json()
        assert results["experiment"] == "gpt-vs-claude" and [v["variant"] for v in results["variants"]] == \
            ["control", "treatment"]
        assert a.post("/api/v1/experiments", json={"name": "gpt-vs-claude", "variants": variants}).status_code == 409
        updated = a.put(f"/api/v1/experiments/{exp['id']}", json={"variants": [{**variants[0], "weight": 90},
                                                                               {**variants[1], "weight": 10}]})
        assert [v["weight"] for v in updated.json()["variants"]] == [90, 10]
        assert a.post(f"/api/v1/experiments/{exp['id']}/stop").json() == {"id": exp["id"], "status": "stopped"}
        assert a.get(f"/api/v1/experiments/{exp['id']}").json()["status"] == "stopped"
        assert a.post(f"/api/v1/experiments/{exp['id']}/stop").json()["status"] == "stopped"
        assert a.get("/api/v1/experiments/nope").status_code == 404
        for bad, code in (({"name": "x", "variants": variants[:1]}, 400),
                          ({"name": "x", "variants": [variants[0], {**variants[0]}]}, 422),
                          ({"name": "x", "variants": [{"name": "a", "weight": -1}, variants[1]]}, 422),
                          ({"name": "", "variants": variants}, 422),
                          ({"name": "x", "variants": variants, "scope": "galaxy"}, 422)):
            assert a.post("/api/v1/experiments", json=bad).status_code == code, bad


def test_webhooks_are_stored_listed_tested_and_deleted(ailink_gateway: EmulatorGateway, closed_port_url: str) -> None:
    hook_url = closed_port_url + "/ailink"  # nothing listens there: deliveries fail, on loopback
    with admin(ailink_gateway) as a:
        created = a.post("/api/v1/webhooks", json={"url": hook_url, "events": ["approval_requested"],
                                                   "secret": "s3cret-value"})
        assert created.status_code == 201
        hook = created.json()
        assert hook["signing_secret"] == "s3cret-value" and hook["events"] == ["approval_requested"]
        generated = a.post("/api/v1/webhooks", json={"url": closed_port_url + "/all", "format": "slack"}).json()
        assert generated["signing_secret"].startswith("whsec_") and generated["format"] == "slack"
        assert generated["events"] == ["approval.requested", "approval.decided", "approval.expired", "policy.denied"]
        listed = a.get("/api/v1/webhooks").json()
        assert [h["id"] for h in listed] == [hook["id"], generated["id"]]
        assert "signing_secret" not in json.dumps(listed) and "s3cret-value" not in json.dumps(listed)
        assert a.get(f"/api/v1/webhooks/{hook['id']}").json()["url"] == hook_url
        test = a.post(f"/api/v1/webhooks/{hook['id']}/test").json()
        assert test["success"] is False and test["delivered"] is False and "ConnectError" in test["message"]
        (delivery,) = a.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
        assert delivery["id"] == test["delivery_id"] and delivery["event_type"] == "webhook.test"
        assert delivery["status"] == "failed" and delivery["attempts"] == 1
        assert a.post("/api/v1/webhooks/test", json={"url": closed_port_url}).json()["delivered"] is False
        assert a.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
        assert a.get(f"/api/v1/webhooks/{hook['id']}").status_code == 404
        assert [h["id"] for h in a.get("/api/v1/webhooks").json()] == [generated["id"]]
        for bad in ({"url": "not-a-url"}, {"url": "https://x.example", "events": ["everything"]},
                    {"url": "https://x.example", "secret": "short"}, {"url": "https://x.example", "format": "xml"}):
            assert a.post("/api/v1/webhooks", json=bad).status_code == 422, bad


NEW_ENDPOINTS = [
    ("GET", "/api/v1/projects"), ("POST", "/api/v1/projects"), ("PUT", "/api/v1/projects/p"),
    ("DELETE", "/api/v1/projects/p"), ("GET", "/api/v1/auth/keys"), ("POST", "/api/v1/auth/keys"),
    ("DELETE", "/api/v1/auth/keys/k"), ("GET", "/api/v1/auth/whoami"),
    ("GET", "/api/v1/tokens/t/circuit-breaker"), ("PATCH", "/api/v1/tokens/t/circuit-breaker"),
    ("GET", "/api/v1/health/upstreams"), ("GET", "/api/v1/model-aliases"), ("POST", "/api/v1/model-aliases"),
    ("POST", "/api/v1/model-aliases/bulk"), ("GET", "/api/v1/model-aliases/a"), ("PUT", "/api/v1/model-aliases/a"),
    ("DELETE", "/api/v1/model-aliases/a"), ("GET", "/api/v1/guardrails/presets"),
    ("POST", "/api/v1/guardrails/enable"), ("DELETE", "/api/v1/guardrails/disable"),
    ("GET", "/api/v1/guardrails/status"), ("GET", "/api/v1/config/export"), ("GET", "/api/v1/config/export/policies"),
    ("GET", "/api/v1/config/export/tokens"), ("POST", "/api/v1/config/import"), ("GET", "/api/v1/analytics/tokens"),
    ("GET", "/api/v1/analytics/tokens/t/volume"), ("GET", "/api/v1/analytics/tokens/t/status"),
    ("GET", "/api/v1/analytics/tokens/t/latency"), ("GET", "/api/v1/analytics/spend/breakdown"),
    ("GET", "/api/v1/billing/usage"), ("GET", "/api/v1/experiments"), ("POST", "/api/v1/experiments"),
    ("GET", "/api/v1/experiments/e"), ("PUT", "/api/v1/experiments/e"), ("GET", "/api/v1/experiments/e/results"),
    ("POST", "/api/v1/experiments/e/stop"), ("GET", "/api/v1/webhooks"), ("POST", "/api/v1/webhooks"),
    ("POST", "/api/v1/webhooks/test"), ("GET", "/api/v1/webhooks/w"), ("DELETE", "/api/v1/webhooks/w"),
    ("POST", "/api/v1/webhooks/w/test"), ("GET", "/api/v1/webhooks/w/deliveries"),
]


def test_every_new_endpoint_needs_credentials_and_scopes(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        readonly = a.post("/api/v1/auth/keys", json={"name": "ro", "role": "readonly", "scopes": []}).json()["key"]
    with httpx.Client(base_url=ailink_gateway.url) as anon, \
            httpx.Client(base_url=ailink_gateway.url, headers=bearer(readonly)) as ro:
        for method, path in NEW_ENDPOINTS:
            assert anon.request(method, path).status_code == 401, (method, path)
            expected = 200 if path == "/api/v1/auth/whoami" else 403
            assert ro.request(method, path).status_code == expected, (method, path)


def test_new_write_endpoints_refuse_malformed_json(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        for method, path in (m for m in NEW_ENDPOINTS if m[0] != "GET"):
            resp = a.request(method, path, content=b"{oops", headers={"Content-Type": "application/json"})
            # never a 500, always the JSON error shape
            assert resp.status_code in (400, 404, 422), (method, path, resp.text)
            assert resp.json()["error"]["code"] in ("invalid_json", "not_found", "validation_error"), (method, path)
