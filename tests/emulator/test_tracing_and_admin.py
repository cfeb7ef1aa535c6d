"""Audit and session rows carry the tracing headers; management pages; no secret in any page."""

from __future__ import annotations

import json

from ailink.testing import EmulatorGateway

from .conftest import admin, approval_policy, bearer, client

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
PARENT = "00f067aa0ba902b7"


def test_audit_and_session_rows_carry_tracing_headers(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    base = {"X-Session-Id": "run-42", "X-AIlink-Agent-Name": "billing-agent",
            "traceparent": f"00-{TRACE}-{SPAN}-01", "X-Parent-Span-Id": PARENT,
            "X-Properties": json.dumps({"framework": "langgraph", "node": "pay"}), "X-User-Id": "u-7",
            "X-Request-Id": "req_" + "1" * 32, "X-AIlink-Tool-Name": "create_charge"}
    with client(ailink_gateway) as c:
        c.post("/v1/charges", json={"amount": 10}, headers=bearer(token, **base, **{"Idempotency-Key": "t-1"}))
        apr = c.post("/v1/charges", json={"amount": 5000}, headers=bearer(
            token, **base, Prefer="respond-async", **{"Idempotency-Key": "t-2"})).json()["approval_id"]
        ailink_gateway.decide(apr, "approved")
        assert c.get(f"/v1/approvals/{apr}/result", headers=bearer(token)).status_code == 200
        # only a traceparent: its span id is the parent span id (like the real gateway)
        c.get("/v1/customers", headers=bearer(token, **{"X-Session-Id": "run-42",
                                                        "traceparent": f"00-{TRACE}-{'c' * 16}-01",
                                                        "X-Properties": "{not json"}))
    rows = ailink_gateway.audit(session_id="run-42")
    assert len(rows) == 4
    first = rows[-1]
    assert first["agent_name"] == "billing-agent" and first["tool_name"] == "create_charge"
    assert first["parent_span_id"] == PARENT and first["span_id"] == SPAN and first["trace_id"] == TRACE
    assert first["properties"] == {"framework": "langgraph", "node": "pay"}
    assert first["user_id"] == "u-7" and first["external_request_id"] == "req_" + "1" * 32
    assert first["idempotency_key"] == "t-1" and first["policy_result"] == "allowed"
    assert first["status_code"] == 200 and isinstance(first["latency_ms"], int)
    assert first["request_id"].startswith("req_")

    session = ailink_gateway.session("run-42")
    assert session["session_id"] == "run-42" and session["status"] == "active"
    assert session["total_requests"] == 4
    reqs = session["requests"]
    assert [r["policy_result"] for r in reqs] == ["allowed", "pending_approval", "approved", "allowed"]
    assert reqs[1]["status_code"] == 202 and reqs[1]["approval_id"] == apr
    assert reqs[2]["approval_id"] == apr and reqs[2]["status_code"] == 200 and reqs[2]["approval_wait_ms"] >= 0
    assert reqs[2]["parent_span_id"] == PARENT and reqs[2]["tool_name"] == "create_charge"
    assert reqs[3]["parent_span_id"] == "c" * 16 and reqs[3]["properties"] is None
    for key in ("id", "method", "path", "status_code", "parent_span_id", "span_id", "tool_name", "agent_name",
                "properties", "policy_result", "approval_id", "approval_wait_ms", "latency_ms", "created_at"):
        assert key in reqs[0]

    with admin(ailink_gateway) as a:
        listed = a.get("/api/v1/sessions").json()
        assert [s["session_id"] for s in listed] == ["run-42"] and listed[0]["total_requests"] == 4
        detail = a.get(f"/api/v1/audit/{first['id']}").json()
        assert detail["session_id"] == "run-42"
        assert a.get("/api/v1/sessions/unknown").status_code == 404


def test_audit_filters_and_paging(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        for agent in ("a", "a", "b"):
            c.get("/v1/customers", headers=bearer(token, **{"X-AIlink-Agent-Name": agent}))
        c.get("/v1/customers/missing", headers=bearer(token, **{"X-AIlink-Agent-Name": "b"}))
    assert len(ailink_gateway.audit(agent_name="a")) == 2
    assert [r["status_code"] for r in ailink_gateway.audit(status="404")] == [404]
    assert len(ailink_gateway.audit(status="allowed")) == 4
    with admin(ailink_gateway) as a:
        page = a.get("/api/v1/audit", params={"limit": 2, "offset": 1}).json()
        everything = a.get("/api/v1/audit").json()
    assert [r["id"] for r in page] == [r["id"] for r in everything[1:3]]
    assert everything[0]["path"] == "/v1/customers/missing"  # newest first


def test_token_and_service_crud_pages(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        created = a.post("/api/v1/tokens", json={"name": "t", "upstream_url": "http://payments.mock"})
        assert created.status_code == 201
        body = created.json()
        assert set(body) >= {"token_id", "name", "message"} and body["token_id"].startswith("ailink_v1_")
        row = a.get(f"/api/v1/tokens/{body['ref']}").json()
        assert row["id"].endswith("…") and body["token_id"].startswith(row["id"][:-1])
        assert a.get(f"/api/v1/tokens/{body['token_id']}").json()["ref"] == body["ref"]
        svc = a.post("/api/v1/services", json={"name": "pay", "base_url": "http://payments.mock"})
        assert svc.status_code == 201 and svc.json()["service_type"] == "generic"
        assert a.post("/api/v1/services", json={"name": "pay", "base_url": "http://x.test"}).status_code == 409
        assert a.get("/api/v1/services/pay").json()["id"] == svc.json()["id"]
        assert a.delete(f"/api/v1/services/{svc.json()['id']}").json()["deleted"] is True
        assert a.get("/api/v1/services").json() == []
        assert a.get("/api/v1/auth/whoami").json()["role"] == "superadmin"


def test_no_secret_in_any_management_page(ailink_gateway: EmulatorGateway) -> None:
    secret = "sk-planted-credential-secret-0123456789"
    token = ailink_gateway.create_token(policies=[approval_policy()], credential_secret=secret)
    byok = "Bearer sk-planted-byok-secret-987654321"
    with client(ailink_gateway) as c:
        c.post("/v1/charges", json={"amount": 5000}, headers=bearer(token, **{
            "Prefer": "respond-async", "X-Session-Id": "s", "X-Real-Authorization": byok}))
        c.get("/v1/customers", headers=bearer(token, **{"X-Session-Id": "s"}))
    planted = [token, secret, byok.split()[1], ailink_gateway.admin_key]
    with admin(ailink_gateway) as a:
        audit_id = a.get("/api/v1/audit").json()[0]["id"]
        apr_id = a.get("/api/v1/approvals").json()[0]["id"]
        cred_id = a.get("/api/v1/credentials").json()[0]["id"]
        pages = ["/api/v1/tokens", "/api/v1/credentials", f"/api/v1/credentials/{cred_id}", "/api/v1/policies",
                 "/api/v1/services", "/api/v1/approvals", f"/api/v1/approvals/{apr_id}", "/api/v1/audit",
                 f"/api/v1/audit/{audit_id}", "/api/v1/sessions", "/api/v1/sessions/s", "/api/v1/auth/whoami",
                 "/api/v1/emulator/payments/stats"]
        token_ref = a.get("/api/v1/tokens").json()[0]["ref"]
        pages.append(f"/api/v1/tokens/{token_ref}")
        for page in pages:
            resp = a.get(page)
            assert resp.status_code == 200, page
            for value in planted:
                assert value not in resp.text, page
                assert value[:20] not in resp.text, page
    with client(ailink_gateway) as c:
        status = c.get(f"/v1/approvals/{apr_id}", headers=bearer(token))
        for value in planted:
            assert value not in status.text
