"""Emulator profiles: ``ailink`` advertises and serves the protocol extensions; ``real`` behaves,
where a client can tell, like the real AIlink gateway (shared/reference/gateway-wire-contract.md)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from ailink.emulator import EmulatorHost
from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client, send_raw
from .fault_upstream import FaultUpstream

APPROVE_POSTS: dict[str, Any] = {
    "name": "approve-posts",
    "rules": [{"when": {"field": "request.method", "op": "eq", "value": "POST"},
               "then": {"action": "require_approval", "timeout": "10m"}}],
}


def _post_in_thread(gw: EmulatorGateway, path: str, headers: dict[str, str],
                    results: list[httpx.Response]) -> threading.Thread:
    def send() -> None:
        with client(gw) as c:
            results.append(c.post(path, json={"amount": 5}, headers=headers))

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# ---------------------------------------------------------------------- ailink (default)


def test_default_profile_advertises_its_extensions(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        answers = [c.get("/v1/customers", headers=bearer(token)), c.get("/v1/customers"),
                   c.get("/v1/approvals/apr_missing", headers=bearer(token)),
                   c.post("/v1/charges", content=b"x", headers=bearer(token))]
        for resp in answers:
            assert resp.headers["x-ailink-extensions"] == "respond-async, outcome-store, approvals-watch", \
                resp.request.url
        assert "x-ailink-extensions" not in a.get("/api/v1/tokens").headers  # the management API is not [ext]


# ---------------------------------------------------------------------- real


def test_real_profile_advertises_nothing(ailink_gateway_real: EmulatorGateway) -> None:
    token = ailink_gateway_real.create_token()
    with client(ailink_gateway_real) as c:
        for resp in (c.get("/v1/customers", headers=bearer(token)), c.get("/v1/customers")):
            assert "x-ailink-extensions" not in resp.headers


def test_real_profile_holds_approvals_even_when_asked_to_respond_async(
        ailink_gateway_real: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway_real.create_token(upstream=fault_upstream.url, policies=[APPROVE_POSTS])
    approver = ailink_gateway_real.approve_when_pending(1)
    with client(ailink_gateway_real) as c:
        resp = c.post("/ok", json={"amount": 5}, headers=bearer(token, Prefer="respond-async"))
    approver.join()
    assert resp.status_code == 200  # never 202: held until the decision, then forwarded
    assert "preference-applied" not in resp.headers and "x-ailink-approval-id" not in resp.headers
    assert fault_upstream.count("/ok") == 1


def test_real_profile_proxies_the_approval_paths(ailink_gateway_real: EmulatorGateway,
                                                 fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway_real.create_token(upstream=fault_upstream.url)
    with client(ailink_gateway_real) as c:
        resp = c.get("/v1/approvals/apr_123/result", headers=bearer(token))
    assert resp.status_code == 200 and resp.json()["path"] == "/v1/approvals/apr_123/result"
    assert resp.headers["x-ailink-cb-state"] == "closed"  # the upstream answered


def test_real_profile_stores_no_outcome(ailink_gateway_real: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway_real.create_token(upstream=fault_upstream.url)
    headers = bearer(token, **{"X-AIlink-Idempotency-Key": "same"})
    with client(ailink_gateway_real) as c:
        answers = [c.post(path, json={"n": 1}, headers=headers)
                   for path in ("/ok", "/ok", "/status/500", "/status/500")]
    assert [a.status_code for a in answers] == [200, 200, 500, 500]
    assert all("idempotent-replayed" not in a.headers for a in answers)
    assert fault_upstream.count("/ok") == 2 and fault_upstream.count("/status/500") == 2
    assert all(hit.key is None for hit in fault_upstream.hits)  # the key never reaches the upstream


def test_real_profile_plain_idempotency_key_switches_on_gateway_retries(
        ailink_gateway_real: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway_real.create_token(upstream=fault_upstream.url)
    with client(ailink_gateway_real) as c:
        # POST with our own key only: the gateway does not retry (what the client relies on)
        ours = c.post("/flaky/2/a", json={}, headers=bearer(token, **{"X-AIlink-Idempotency-Key": "k1"}))
        # POST with a plain Idempotency-Key (or X-Idempotency-Key): up to 3 retries the upstream cannot tell apart
        plain = c.post("/flaky/2/b", json={}, headers=bearer(token, **{"Idempotency-Key": "k2"}))
        x_key = c.post("/flaky/5/c", json={}, headers=bearer(token, **{"X-Idempotency-Key": "k3"}))
        got = c.get("/flaky/1/d", headers=bearer(token))  # reads are always retried
        dropped = c.post("/close", json={}, headers=bearer(token, **{"Idempotency-Key": "k4"}))
    assert ours.status_code == 503 and fault_upstream.count("/flaky/2/a") == 1
    assert plain.status_code == 200 and fault_upstream.count("/flaky/2/b") == 3  # executed... three times
    assert x_key.status_code == 503 and fault_upstream.count("/flaky/5/c") == 4  # 1 + 3 retries, then given up
    assert got.status_code == 200 and fault_upstream.count("/flaky/1/d") == 2
    assert dropped.status_code == 502 and fault_upstream.count("/close") == 4  # network errors are retried too


def test_real_profile_key_reattaches_approvals_but_deduplicates_nothing(
        ailink_gateway_real: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    token = ailink_gateway_real.create_token(upstream=fault_upstream.url, policies=[APPROVE_POSTS])
    headers = bearer(token, **{"X-AIlink-Idempotency-Key": "act-1"})
    results: list[httpx.Response] = []
    first = _post_in_thread(ailink_gateway_real, "/ok", headers, results)
    _wait_for(lambda: len(ailink_gateway_real.pending_approvals()) == 1, "the approval")
    second = _post_in_thread(ailink_gateway_real, "/ok", headers, results)  # re-attaches, held too
    (pending,) = ailink_gateway_real.pending_approvals()
    assert pending["idempotency_key"] == "act-1"
    ailink_gateway_real.decide(pending["id"], "approved")
    first.join(20)
    second.join(20)
    with client(ailink_gateway_real) as c:
        later = c.post("/ok", json={"amount": 5}, headers=headers)  # an approved key lets every re-send through
    assert [r.status_code for r in results] == [200, 200] and later.status_code == 200
    with admin(ailink_gateway_real) as a:
        assert len(a.get("/api/v1/approvals").json()) == 1
    assert fault_upstream.count("/ok") == 3


def test_real_profile_rejection_and_timeout(ailink_gateway_real: EmulatorGateway) -> None:
    policy = {**APPROVE_POSTS, "rules": [{**APPROVE_POSTS["rules"][0],
                                          "then": {"action": "require_approval", "timeout": "300ms"}}]}
    token = ailink_gateway_real.create_token(policies=[policy])
    with client(ailink_gateway_real) as c:
        timed_out = c.post("/v1/charges", json={"amount": 5}, headers=bearer(token))
        approver = ailink_gateway_real.approve_when_pending(1, "rejected")
        rejected = c.post("/v1/charges", json={"amount": 5}, headers=bearer(token))
        approver.join()
    assert timed_out.status_code == 408 and timed_out.json()["error"]["code"] == "approval_timeout"
    assert rejected.status_code == 403 and rejected.json()["error"]["code"] == "approval_rejected"
    for resp in (timed_out, rejected):  # the real gateway never names the approval
        assert "details" not in resp.json()["error"] and "x-ailink-approval-id" not in resp.headers
    assert ailink_gateway_real.payments_stats()["total_executions"] == 0


def test_real_profile_errors_carry_no_details(ailink_gateway_real: EmulatorGateway) -> None:
    deny = {"name": "no-refunds", "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
                                             "then": {"action": "deny", "message": "not for agents"}}]}
    token = ailink_gateway_real.create_token(policies=[deny])
    with client(ailink_gateway_real) as c:
        denied = c.post("/v1/refunds", json={"charge": "ch_1"}, headers=bearer(token))
    refused = send_raw(ailink_gateway_real.url, "POST", b"/v1/../../x", body=b"{}",
                       headers=f"Authorization: Bearer {token}\r\n".encode())
    error = denied.json()["error"]
    assert denied.status_code == 403 and "details" not in error
    assert error["message"] == "Request blocked by policy 'no-refunds': not for agents"
    assert refused.status == 400
    assert json.loads(refused.body)["error"]["code"] == "invalid_path" and b"details" not in refused.body


def test_real_profile_management_errors_are_bare(ailink_gateway_real: EmulatorGateway) -> None:
    with client(ailink_gateway_real) as c, admin(ailink_gateway_real) as a:
        answers = {
            401: c.get("/api/v1/tokens"),
            404: a.get("/api/v1/no-such-thing"),
            422: a.post("/api/v1/policies", json={"name": "p"}),
            400: a.post("/api/v1/policies", content=b"{not json"),
        }
    for status, resp in answers.items():
        assert resp.status_code == status and resp.content == b"", (status, resp.text)


def test_real_profile_drops_query_strings(ailink_gateway_real: EmulatorGateway) -> None:
    token = ailink_gateway_real.create_token()
    with client(ailink_gateway_real) as c:
        echoed = c.get("/v1/echo", params={"limit": "3"}, headers=bearer(token)).json()
    assert echoed["query"] == ""


@pytest.mark.parametrize("profile", ["ailink", "real"])
def test_both_profiles_normalise_paths_before_policies(profile: str, ailink_emulator_host: EmulatorHost) -> None:
    from ailink.testing import start_gateway

    gw, stop = start_gateway(host=ailink_emulator_host, profile=profile)
    try:
        deny = {"name": "no-refunds", "rules": [{"when": {"field": "request.path", "op": "eq",
                                                          "value": "/v1/refunds"}, "then": {"action": "deny"}}]}
        token = gw.create_token(policies=[deny])
        auth = f"Authorization: Bearer {token}\r\n".encode()
        for path in (b"/v1/./refunds", b"/v1/x/../refunds", b"//v1/refunds", b"/v1/%72efunds", b"/v1/refunds/"):
            resp = send_raw(gw.url, "POST", path, headers=auth, body=b'{"charge": "ch_1"}')
            assert resp.status == 403, (path, resp.body)
        assert gw.payments_stats()["total_executions"] == 0
    finally:
        stop()


def test_real_profile_abandons_a_held_request_whose_client_hangs_up(
        ailink_gateway_real: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    """As the real gateway (its held handler is dropped with the connection): nothing is forwarded for a
    caller that left; the approval stays, and a re-send with the same key re-attaches to it."""
    gw = ailink_gateway_real
    token = gw.create_token(upstream=fault_upstream.url, policies=[APPROVE_POSTS])
    headers = bearer(token, **{"X-AIlink-Idempotency-Key": "act-1"})
    with client(gw, timeout=0.5) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post("/ok", json={"amount": 5}, headers=headers)
    (pending,) = gw.pending_approvals()
    results: list[httpx.Response] = []
    resend = _post_in_thread(gw, "/ok", headers, results)  # held again, or let through once approved
    gw.decide(pending["id"], "approved")
    resend.join(20)
    assert [r.status_code for r in results] == [200]
    assert len(gw.approvals()) == 1 and fault_upstream.count("/ok") == 1  # the abandoned one never ran


# ---------------------------------------------------------------------- header generations


@pytest.mark.parametrize("ailink_gateway", [{"generation": "trueflow"}, {"generation": "trueflow", "profile": "real"}],
                         indirect=True)
def test_trueflow_generation_reads_and_writes_its_own_spellings(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token()
    assert token.startswith("tf_v1_")
    with client(gw) as c:
        old = c.get("/v1/customers", headers=bearer("ailink_v1_" + token[len("tf_v1_"):]))
        ours = c.get("/v1/customers", headers=bearer(token, **{"X-TrueFlow-Agent-Name": "tf-agent"}))
        c.get("/v1/customers", headers=bearer(token, **{"X-AIlink-Agent-Name": "ailink-agent",
                                                         "User-Agent": "fallback/1"}))
        redacted = c.post("/v1/echo", json={"note": "mail ada@example.org"},
                          headers=bearer(token, **{"X-TrueFlow-Guardrails": "pii_redaction"}))
        ignored = c.post("/v1/echo", json={"note": "mail ada@example.org"},
                         headers=bearer(token, **{"X-AIlink-Guardrails": "pii_redaction"}))
    assert old.status_code == 401 and "TRUEFLOW_API_KEY" in old.json()["error"]["message"]
    assert ours.headers["x-trueflow-cb-state"] == "closed" and "x-ailink-cb-state" not in ours.headers
    if gw.serves_extensions:
        assert ours.headers["x-trueflow-extensions"] == "respond-async, outcome-store, approvals-watch"
        assert "x-ailink-extensions" not in ours.headers
    assert [row["agent_name"] for row in reversed(gw.audit(status="200"))][:2] == ["tf-agent", "fallback/1"]
    assert "[REDACTED_EMAIL]" in redacted.json()["body"] and "ada@example.org" in ignored.json()["body"]


@pytest.mark.parametrize("ailink_gateway", [{"generation": "trueflow", "profile": "real"}], indirect=True)
def test_trueflow_generation_reattaches_on_its_own_key_header_only(
        ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> None:
    gw = ailink_gateway
    token = gw.create_token(upstream=fault_upstream.url, policies=[APPROVE_POSTS])
    for header in ("X-TrueFlow-Idempotency-Key", "X-TrueFlow-Idempotency-Key", "X-AIlink-Idempotency-Key"):
        with client(gw, timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
            impatient.post("/ok", json={"amount": 5}, headers=bearer(token, **{header: "act-1"}))
    keys = sorted(str(row["idempotency_key"]) for row in gw.approvals())
    assert keys == ["None", "act-1"]  # the X-AIlink- spelling means nothing to this generation
    assert fault_upstream.count("/ok") == 0


def test_unknown_generation_is_refused() -> None:
    from ailink.emulator import create_app

    with pytest.raises(ValueError, match="trueflow"):
        create_app(generation="nope")


def test_real_profile_has_no_approval_lookup(ailink_gateway_real: EmulatorGateway) -> None:
    """The real gateway has no ``GET /api/v1/approvals/{id}`` and ignores ``?status=`` (every status)."""
    policy = {**APPROVE_POSTS, "rules": [{**APPROVE_POSTS["rules"][0],
                                          "then": {"action": "require_approval", "timeout": "300ms"}}]}
    token = ailink_gateway_real.create_token(policies=[policy])
    with client(ailink_gateway_real) as c, admin(ailink_gateway_real) as a:
        assert c.post("/v1/charges", json={"amount": 5}, headers=bearer(token)).status_code == 408
        listed = a.get("/api/v1/approvals", params={"status": "pending"}).json()
        one = a.get(f"/api/v1/approvals/{listed[0]['id']}")
    assert [row["status"] for row in listed] == ["expired"]
    assert one.status_code == 404 and one.content == b""
