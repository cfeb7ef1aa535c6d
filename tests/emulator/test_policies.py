"""Policies: deny, allow, conditions, shadow mode, rate limits, session lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client


def deny(name: str, when: dict[str, Any], message: str = "nope") -> dict[str, Any]:
    return {"name": name, "rules": [{"when": when, "then": {"action": "deny", "message": message}}]}


def test_deny_error_shape(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[deny("block-refunds", {
        "all": [{"field": "request.method", "op": "eq", "value": "POST"},
                {"field": "request.path", "op": "eq", "value": "/v1/refunds"}]}, "refunds are off")])
    with client(ailink_gateway) as c:
        resp = c.post("/v1/refunds", json={"charge": "ch_1"}, headers=bearer(token))
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
    assert resp.status_code == 403
    err = resp.json()["error"]
    assert err["code"] == "policy_denied" and err["type"] == "permission_error"
    assert err["message"] == "Request blocked by policy 'block-refunds': refunds are off"
    assert err["details"]["policy"] == "block-refunds"
    assert ailink_gateway.payments_stats()["refunds"] == 0
    row = ailink_gateway.audit(status="denied")[0]
    assert row["path"] == "/v1/refunds" and row["status_code"] == 403


CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # (condition, request kwargs, denied?)
    ({"field": "request.body.amount", "op": "gt", "value": 100}, {"json": {"amount": 101}}, True),
    ({"field": "request.body.amount", "op": "gt", "value": 100}, {"json": {"amount": "99"}}, False),
    ({"field": "request.body.amount", "op": "lte", "value": "100"}, {"json": {"amount": 100}}, True),
    ({"field": "request.body.currency", "op": "in", "value": ["eur", "gbp"]}, {"json": {"currency": "eur"}}, True),
    ({"field": "request.body.items[1].sku", "op": "eq", "value": "b"}, {"json": {"items": [{"sku": "a"},
                                                                                          {"sku": "b"}]}}, True),
    ({"field": "request.body.note", "op": "contains", "value": "urgent"}, {"json": {"note": "very urgent"}}, True),
    ({"field": "request.body.tags", "op": "contains", "value": "vip"}, {"json": {"tags": ["a", "vip"]}}, True),
    ({"field": "request.body.customer", "op": "regex", "value": "^cus_0+1$"}, {"json": {"customer": "cus_001"}},
     True),
    ({"field": "request.body.customer", "op": "exists", "value": None}, {"json": {"x": 1}}, False),
    ({"field": "request.path", "op": "glob", "value": "/v1/e*/ch*"}, {"json": {}}, True),
    ({"field": "request.path", "op": "ends_with", "value": "charges"}, {"json": {}}, True),
    ({"field": "request.headers.x-ailink-tool-name", "op": "eq", "value": "refund_tool"},
     {"json": {}, "headers": {"X-AIlink-Tool-Name": "refund_tool"}}, True),
    ({"field": "request.query.dry_run", "op": "eq", "value": "1"}, {"json": {}, "params": {"dry_run": "1"}}, True),
    ({"field": "agent.name", "op": "starts_with", "value": "rogue"},
     {"json": {}, "headers": {"X-AIlink-Agent-Name": "rogue-bot"}}, True),
    ({"not": {"field": "request.method", "op": "eq", "value": "POST"}}, {"json": {}}, False),
    ({"any": [{"field": "request.body.a", "op": "eq", "value": 1}, {"field": "request.body.b", "op": "eq",
                                                                   "value": 2}]}, {"json": {"b": 2}}, True),
    ({"all": [{"field": "request.body.a", "op": "eq", "value": 1}, {"field": "request.body.b", "op": "eq",
                                                                   "value": 2}]}, {"json": {"b": 2}}, False),
    ({"field": "request.body.missing", "op": "neq", "value": 1}, {"json": {}}, False),
    ({"always": True}, {"json": {}}, True),
]


@pytest.mark.parametrize(("when", "kwargs", "denied"), CASES)
def test_conditions(ailink_gateway: EmulatorGateway, when: dict[str, Any], kwargs: dict[str, Any],
                    denied: bool) -> None:
    token = ailink_gateway.create_token(policies=[deny("cond", when)])
    headers = bearer(token, **kwargs.pop("headers", {}))
    with client(ailink_gateway) as c:
        resp = c.post("/v1/echo/charges", headers=headers, **kwargs)
    assert (resp.status_code == 403) is denied, resp.text


def test_shadow_mode_only_records(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[{**deny("shadowed", {"always": True}), "mode": "shadow"}])
    with client(ailink_gateway) as c:
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
    assert "shadowed" in ailink_gateway.audit()[0]["deny_reason"]


def test_allow_rule_and_evaluated_names(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[{"name": "reads", "rules": [{"then": {"action": "allow"}}]}])
    with client(ailink_gateway) as c:
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
    row = ailink_gateway.audit()[0]
    assert row["policy_result"] == "allowed" and row["policies_evaluated"] == ["reads"]


def test_rate_limit(ailink_gateway: EmulatorGateway) -> None:
    policy = {"name": "rl", "rules": [{"then": {"action": "rate_limit", "window": "2s", "max_requests": 2,
                                                "key": "per_agent"}}]}
    token = ailink_gateway.create_token(policies=[policy])
    with client(ailink_gateway) as c:
        a = bearer(token, **{"X-AIlink-Agent-Name": "a"})
        assert [c.get("/v1/customers", headers=a).status_code for _ in range(2)] == [200, 200]
        limited = c.get("/v1/customers", headers=a)
        assert limited.status_code == 429
        err = limited.json()["error"]
        assert err["code"] == "rate_limit_exceeded" and err["type"] == "rate_limit_error"
        assert err["details"]["policy"] == "rl"
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert int(limited.headers["x-ratelimit-reset"]) > 0
        # per_agent: another agent has its own window
        assert c.get("/v1/customers", headers=bearer(token, **{"X-AIlink-Agent-Name": "b"})).status_code == 200
    assert ailink_gateway.audit(status="429")[0]["policy_result"] == "rate_limited"


def test_session_lifecycle(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    headers = bearer(token, **{"X-Session-Id": "sess-1"})
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        assert a.patch("/api/v1/sessions/nope/status", json={"status": "paused"}).status_code == 404
        assert c.get("/v1/customers", headers=headers).status_code == 200
        assert a.patch("/api/v1/sessions/sess-1/status", json={"status": "sleeping"}).status_code == 422
        paused = a.patch("/api/v1/sessions/sess-1/status", json={"status": "paused"})
        assert paused.json()["status"] == "paused"
        refused = c.get("/v1/customers", headers=headers)
        assert refused.status_code == 403
        err = refused.json()["error"]
        assert err["code"] == "policy_denied" and err["details"]["policy"] == "SessionLifecycle"
        assert err["message"].startswith("Request blocked by policy 'SessionLifecycle': Session 'sess-1' is paused")
        assert a.patch("/api/v1/sessions/sess-1/status", json={"status": "active"}).json()["status"] == "active"
        assert c.get("/v1/customers", headers=headers).status_code == 200
        assert a.patch("/api/v1/sessions/sess-1/status", json={"status": "completed"}).status_code == 200
        assert c.get("/v1/customers", headers=headers).status_code == 403
        assert a.patch("/api/v1/sessions/sess-1/status", json={"status": "active"}).status_code == 409
        # other sessions are unaffected
        assert c.get("/v1/customers", headers=bearer(token, **{"X-Session-Id": "sess-2"})).status_code == 200


def test_policy_crud_and_token_patch(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with admin(ailink_gateway) as a, client(ailink_gateway) as c:
        pid = a.post("/api/v1/policies", json=deny("later", {"always": True})).json()["id"]
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
        patched = a.patch(f"/api/v1/tokens/{token}", json={"policy_ids": [pid]}).json()
        assert patched["policy_ids"] == [pid]
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 403
        assert a.delete(f"/api/v1/policies/{pid}").json() == {"id": pid, "deleted": True}
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
        assert a.get(f"/api/v1/policies/{pid}").status_code == 404
