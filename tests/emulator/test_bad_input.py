"""Bad input and faults: auth failures, malformed bodies, limits, malformed policies, injection-looking ids."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, bearer, client


def _assert_gateway_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str)
    assert err["request_id"].startswith("req_")
    return err


def test_health_endpoints(ailink_gateway: EmulatorGateway) -> None:
    with client(ailink_gateway) as c:
        assert c.get("/healthz").text == "ok"
        assert c.get("/readyz").status_code == 200
        # like the real gateway, other paths are the proxy: no token → 401
        _assert_gateway_error(c.get("/health"), 401, "token_not_found")


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Bearer ailink_v1_unknown_tok_0000", "ailink_v1_x", "Basic abc"])
def test_unknown_or_missing_token_is_401(ailink_gateway: EmulatorGateway, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    with client(ailink_gateway) as c:
        err = _assert_gateway_error(c.get("/v1/customers", headers=headers), 401, "token_not_found")
    assert err["type"] == "authentication_error"


def test_revoked_token_is_401(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
        assert a.delete(f"/api/v1/tokens/{token}").status_code == 204
        _assert_gateway_error(c.get("/v1/customers", headers=bearer(token)), 401, "token_not_found")
        listed = a.get("/api/v1/tokens").json()
        assert [t["is_active"] for t in listed] == [False]


def test_management_auth(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        _assert_gateway_error(c.get("/api/v1/tokens"), 401, "unauthorized")
        _assert_gateway_error(c.get("/api/v1/tokens", headers={"X-Admin-Key": "wrong"}), 401, "unauthorized")
        # a virtual token is never an admin credential
        _assert_gateway_error(c.get("/api/v1/tokens", headers=bearer(token)), 401, "unauthorized")
        as_bearer = {"Authorization": f"Bearer {ailink_gateway.admin_key}"}
        assert c.get("/api/v1/tokens", headers=as_bearer).status_code == 200
        _assert_gateway_error(c.get("/api/v1/nope", headers=as_bearer), 404, "not_found")


def test_malformed_json_bodies(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        _assert_gateway_error(a.post("/api/v1/tokens", content=b"{not json",
                                     headers={"content-type": "application/json"}), 400, "invalid_json")
        _assert_gateway_error(a.post("/api/v1/tokens", json=[1, 2]), 422, "validation_error")
        _assert_gateway_error(a.post("/api/v1/tokens", json={"name": "x"}), 422, "validation_error")
        _assert_gateway_error(a.post("/api/v1/tokens", json={"name": "x", "upstream_url": "ftp://x"}), 422,
                              "validation_error")
        _assert_gateway_error(a.post("/api/v1/tokens", json={"name": "x", "upstream_url": "http://payments.mock",
                                                             "policy_ids": ["pol_missing"]}), 422, "validation_error")
        _assert_gateway_error(a.post("/api/v1/approvals/apr_x/decision", content=b"\xff\xfe"), 400, "invalid_json")
    # a malformed JSON body on the data plane is forwarded as is: the upstream judges it
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        resp = c.post("/v1/charges", content=b"{oops", headers=bearer(token, **{"content-type": "application/json"}))
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"  # the mock upstream's error, passed through
    assert "request_id" not in resp.json()["error"]


def test_oversized_bodies_get_413_json() -> None:
    gw, stop = start_gateway(max_body_bytes=1024)
    try:
        token = gw.create_token()
        with client(gw) as c, admin(gw) as a:
            err = _assert_gateway_error(c.post("/v1/charges", content=b"x" * 2048, headers=bearer(token)),
                                        413, "payload_too_large")
            assert "1024" in err["message"]

            def chunks() -> Any:  # no content-length: the limit is enforced while streaming
                for _ in range(4):
                    yield b"y" * 512

            _assert_gateway_error(c.post("/v1/charges", content=chunks(), headers=bearer(token)), 413,
                                  "payload_too_large")
            _assert_gateway_error(a.post("/api/v1/policies", content=b"z" * 5000), 413, "payload_too_large")
            assert c.post("/v1/charges", json={"amount": 5}, headers=bearer(token)).status_code == 200
        assert gw.payments_stats()["total_executions"] == 1
    finally:
        stop()


MALFORMED_POLICIES: list[dict[str, Any]] = [
    {"rules": []},  # no name
    {"name": "p"},  # no rules
    {"name": "p", "rules": "deny"},
    {"name": "p", "rules": [{"when": {"always": True}}]},  # no then
    {"name": "p", "rules": [{"condition": {}, "action": {"type": "deny"}}]},  # the old SDK DSL shape
    {"name": "p", "rules": [{"when": {"and": []}, "then": {"action": "deny"}}]},
    {"name": "p", "rules": [{"when": {"field": "request.method", "op": "equals", "value": "GET"},
                             "then": {"action": "deny"}}]},
    {"name": "p", "rules": [{"when": {"field": "request.method", "op": "eq"}, "then": {"action": "deny"}}]},
    {"name": "p", "rules": [{"when": {"field": "request.path", "op": "regex", "value": "("},
                             "then": {"action": "deny"}}]},
    {"name": "p", "rules": [{"then": {"action": "explode"}}]},
    {"name": "p", "rules": [{"then": {"action": "require_approval", "timeout": "soon"}}]},
    {"name": "p", "rules": [{"then": {"action": "rate_limit", "window": "1m"}}]},
    {"name": "p", "rules": [{"then": {"action": "rate_limit", "window": "1m", "max_requests": 2,
                                      "key": "per_moon"}}]},
    {"name": "p", "mode": "loud", "rules": []},
]


@pytest.mark.parametrize("policy", MALFORMED_POLICIES)
def test_malformed_policies_are_refused_with_422(ailink_gateway: EmulatorGateway, policy: dict[str, Any]) -> None:
    with admin(ailink_gateway) as a:
        _assert_gateway_error(a.post("/api/v1/policies", json=policy), 422, "validation_error")
        assert a.get("/api/v1/policies").json() == []


def test_policy_update_is_validated(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        pid = a.post("/api/v1/policies", json={"name": "ok", "rules": [{"then": {"action": "allow"}}]}).json()["id"]
        _assert_gateway_error(a.put(f"/api/v1/policies/{pid}", json={"rules": [{"then": {}}]}), 422,
                              "validation_error")
        assert a.put(f"/api/v1/policies/{pid}", json={"name": "renamed"}).json()["name"] == "renamed"
        assert a.get(f"/api/v1/policies/{pid}").json()["rules"] == [{"then": {"action": "allow"}}]


INJECTIONS = ["' OR '1'='1", "1; DROP TABLE tokens;--", "apr_x' UNION SELECT * FROM tokens--", "%27%20OR%201=1"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_sql_injection_looking_ids_are_harmless(ailink_gateway: EmulatorGateway, evil: str) -> None:
    token = ailink_gateway.create_token()
    quoted = httpx.URL("/x/").copy_with(path="/x/" + evil).raw_path.decode()[3:]
    with admin(ailink_gateway) as a, client(ailink_gateway) as c:
        for path in ("tokens", "policies", "credentials", "services", "approvals", "audit", "sessions"):
            resp = a.get(f"/api/v1/{path}/{quoted}")
            assert resp.status_code == 404, (path, resp.text)
        assert a.post(f"/api/v1/approvals/{quoted}/decision", json={"decision": "approved"}).status_code == 404
        assert c.get(f"/v1/approvals/{quoted}", headers=bearer(token)).status_code == 404
        # in headers, stored verbatim and found again by an exact filter
        resp = c.get("/v1/customers", headers=bearer(token, **{"X-Session-Id": evil, "X-AIlink-Agent-Name": evil}))
        assert resp.status_code == 200
        # an idempotency key is visible ASCII without spaces (§10.2): anything else is a 422, not a lookup
        keyed = c.get("/v1/customers", headers=bearer(token, **{"Idempotency-Key": evil}))
        assert keyed.status_code == (422 if " " in evil else 200)
        rows = a.get("/api/v1/audit", params={"session_id": evil, "agent_name": evil}).json()
        assert len(rows) == 1 and rows[0]["session_id"] == evil
        assert a.get("/api/v1/audit", params={"session_id": "' OR '1'='1' --x"}).json() == []
        # nothing was dropped or leaked
        assert len(a.get("/api/v1/tokens").json()) == 1
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200


def test_unknown_approval_ids(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        _assert_gateway_error(c.get("/v1/approvals/apr_nope", headers=bearer(token)), 404, "approval_not_found")
        _assert_gateway_error(c.get("/v1/approvals/apr_nope/result", headers=bearer(token)), 404,
                              "approval_not_found")
        _assert_gateway_error(c.delete("/v1/approvals/apr_nope", headers=bearer(token)), 404, "approval_not_found")
        _assert_gateway_error(a.get("/api/v1/approvals/apr_nope"), 404, "approval_not_found")
        _assert_gateway_error(a.post("/api/v1/approvals/apr_nope/decision", json={"decision": "approved"}), 404,
                              "approval_not_found")
        # and without a token the agent endpoint is a 401, not a 404
        _assert_gateway_error(c.get("/v1/approvals/apr_nope"), 401, "token_not_found")


def test_bad_decision_value(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        assert a.post("/api/v1/approvals/apr_x/decision", json={"decision": "maybe"}).status_code == 400


def test_upstream_down_is_502(ailink_gateway: EmulatorGateway, closed_port_url: str) -> None:
    token = ailink_gateway.create_token(upstream=closed_port_url)
    with client(ailink_gateway) as c:
        err = _assert_gateway_error(c.post("/v1/anything", json={"a": 1}, headers=bearer(token)), 502,
                                    "upstream_failed")
    assert err["type"] == "upstream_error"
    assert ailink_gateway.audit()[0]["status_code"] == 502


def test_upstream_timeout_is_502(fast_timeout_gateway: EmulatorGateway, slow_upstream: tuple[str, list[str]]) -> None:
    url, hits = slow_upstream
    token = fast_timeout_gateway.create_token(upstream=url)
    with client(fast_timeout_gateway) as c:
        err = _assert_gateway_error(c.get("/slow", headers=bearer(token)), 502, "upstream_failed")
        assert "timed out" in err["message"]
        assert c.get("/fast", headers=bearer(token)).json() == {"ok": True}
    assert hits[0] == "/slow"


def test_unknown_service_is_502(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        err = _assert_gateway_error(c.get("/v1/proxy/services/ghost/v1/customers", headers=bearer(token)), 502,
                                    "upstream_failed")
    assert err["message"] == "Service not found: ghost"


def test_overlong_idempotency_key_is_422(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        _assert_gateway_error(c.post("/v1/charges", json={"amount": 5}, headers=bearer(token, **{
            "Idempotency-Key": "k" * 256})), 422, "validation_error")
    assert ailink_gateway.payments_stats()["total_executions"] == 0
