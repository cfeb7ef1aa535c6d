"""Human approval: blocking mode, 202 mode, long poll, result replay, re-attach, expiry, restart, ownership."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, approval_policy, bearer, client

BIG = {"amount": 5000, "currency": "usd", "customer": "cus_001"}
ASYNC = {"Prefer": "respond-async"}


def _token(gw: EmulatorGateway, timeout: str = "10m") -> str:
    return gw.create_token(policies=[approval_policy(timeout)])


def test_small_charges_pass_without_approval(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    with client(ailink_gateway) as c:
        resp = c.post("/v1/charges", json={"amount": 500}, headers=bearer(token))
    assert resp.status_code == 200 and resp.json()["amount"] == 500
    assert ailink_gateway.pending_approvals() == []


def test_blocking_mode_approved(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    approver = ailink_gateway.approve_when_pending(1, "approved")
    with client(ailink_gateway) as c:
        resp = c.post("/v1/charges", json=BIG, headers=bearer(token, **{"Idempotency-Key": "blk-1"}))
    (apr_id,) = approver.join()
    assert resp.status_code == 200, resp.text
    assert resp.json()["amount"] == 5000
    assert resp.headers["x-ailink-approval-id"] == apr_id
    assert "idempotent-replayed" not in resp.headers
    assert ailink_gateway.payments_stats()["by_idempotency_key"] == {"blk-1": 1}
    row = ailink_gateway.audit(status="approved")[0]
    assert row["approval_id"] == apr_id and row["status_code"] == 200 and row["approval_wait_ms"] >= 0


def test_blocking_mode_rejected(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    approver = ailink_gateway.approve_when_pending(1, "rejected", reason="too much")
    with client(ailink_gateway) as c:
        resp = c.post("/v1/charges", json=BIG, headers=bearer(token))
    (apr_id,) = approver.join()
    assert resp.status_code == 403
    err = resp.json()["error"]
    assert err["code"] == "approval_rejected" and err["type"] == "permission_error"
    assert err["details"]["approval_id"] == apr_id and err["details"]["reason"] == "too much"
    assert ailink_gateway.payments_stats()["total_executions"] == 0
    assert ailink_gateway.audit()[0]["policy_result"] == "rejected"


def test_blocking_mode_timeout(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway, timeout="300ms")
    with client(ailink_gateway) as c:
        started = time.monotonic()
        # answered at the policy timeout: a gateway that kept holding would hit the read timeout
        resp = c.post("/v1/charges", json=BIG, headers=bearer(token), timeout=5)
        held = time.monotonic() - started
    assert resp.status_code == 408
    err = resp.json()["error"]
    assert err["code"] == "approval_timeout" and err["details"]["timeout"] == 0.3
    assert held >= 0.25  # the request was held for the approval, not refused at once
    with admin(ailink_gateway) as a:
        row = a.get(f"/api/v1/approvals/{err['details']['approval_id']}").json()
        assert row["status"] == "expired"
        late = a.post(f"/api/v1/approvals/{row['id']}/decision", json={"decision": "approved"}).json()
    assert late == {"id": row["id"], "status": "expired", "updated": False}
    assert ailink_gateway.payments_stats()["total_executions"] == 0


def test_async_mode_202_shape(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    with client(ailink_gateway) as c:
        resp = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC, **{"Idempotency-Key": "k-202"}))
    assert resp.status_code == 202
    body = resp.json()
    apr_id = body["approval_id"]
    assert apr_id.startswith("apr_")
    assert resp.headers["location"] == f"/v1/approvals/{apr_id}"
    assert resp.headers["retry-after"] == "2"
    assert resp.headers["preference-applied"] == "respond-async"
    assert body["status"] == "pending_approval"
    assert body["request_id"] == apr_id
    assert body["poll_url"] == f"/v1/approvals/{apr_id}"
    assert body["idempotency_key"] == "k-202"
    assert body["policy"] == "charges-over-1000"
    assert body["summary"] == {"method": "POST", "path": "/v1/charges"}
    assert body["expires_at"].endswith("Z")
    assert ailink_gateway.payments_stats()["total_executions"] == 0
    (pending,) = ailink_gateway.pending_approvals()
    assert pending["id"] == apr_id and pending["request_summary"]["body_preview"].startswith("{")


def test_long_poll_wakes_promptly_and_result_replays(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    with client(ailink_gateway) as c:
        apr_id = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC)).json()["approval_id"]
        # wait=0 answers at once, pending, with Retry-After
        quick = c.get(f"/v1/approvals/{apr_id}", params={"wait": 0}, headers=bearer(token))
        assert quick.json()["status"] == "pending" and quick.headers["retry-after"]
        # result while pending
        pending = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token))
        assert pending.status_code == 409 and pending.json()["error"]["code"] == "approval_pending"

        def decide() -> None:
            time.sleep(0.4)
            ailink_gateway.decide(apr_id, "approved", reason="fine")

        threading.Thread(target=decide).start()
        # A 30 s long poll must answer when the decision lands: with a 10 s read timeout, one that
        # only answered at the end of its wait fails here. (How fast: bench/bench_approvals.py.)
        resp = c.get(f"/v1/approvals/{apr_id}", params={"wait": 30}, headers=bearer(token), timeout=10)
        body = resp.json()
        assert body["status"] == "approved" and body["reason"] == "fine"
        assert body["result_url"] == f"/v1/approvals/{apr_id}/result"
        assert "retry-after" not in resp.headers

        result = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token))
        assert result.status_code == 200 and result.json()["amount"] == 5000
        assert result.headers["idempotent-replayed"] == "true"
        assert result.headers["x-ailink-approval-id"] == apr_id
        again = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token))
        assert again.json() == result.json()
    assert ailink_gateway.payments_stats()["charges"] == 1


def test_long_poll_times_out_pending(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    with client(ailink_gateway) as c:
        apr_id = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC)).json()["approval_id"]
        started = time.monotonic()
        resp = c.get(f"/v1/approvals/{apr_id}", params={"wait": 0.3}, headers=bearer(token), timeout=5)
        assert time.monotonic() - started >= 0.25  # held for the wait, then answered pending
        assert resp.json()["status"] == "pending" and "retry-after" in resp.headers
        assert c.get(f"/v1/approvals/{apr_id}", params={"wait": "soon"}, headers=bearer(token)).status_code == 422


def test_rejected_and_expired_results(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway, timeout="300ms")
    with client(ailink_gateway) as c:
        rej = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC)).json()["approval_id"]
        ailink_gateway.decide(rej, "rejected", "no")
        resp = c.get(f"/v1/approvals/{rej}/result", headers=bearer(token))
        assert resp.status_code == 403 and resp.json()["error"]["details"]["reason"] == "no"
        exp = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC)).json()["approval_id"]
        status = c.get(f"/v1/approvals/{exp}", params={"wait": 5}, headers=bearer(token)).json()
        assert status["status"] == "expired"
        resp = c.get(f"/v1/approvals/{exp}/result", headers=bearer(token))
        assert resp.status_code == 408 and resp.json()["error"]["code"] == "approval_timeout"
    assert ailink_gateway.payments_stats()["total_executions"] == 0


def test_resend_with_same_key_reattaches(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    headers = bearer(token, **ASYNC, **{"Idempotency-Key": "re-1", "X-AIlink-Idempotency-Key": "re-1"})
    with client(ailink_gateway) as c:
        first = c.post("/v1/charges", json=BIG, headers=headers).json()
        second = c.post("/v1/charges", json=BIG, headers=headers)
        assert second.status_code == 202 and second.json()["approval_id"] == first["approval_id"]
        assert len(ailink_gateway.pending_approvals()) == 1
        # blocking re-send of the same action re-attaches too and gets the outcome
        approver = ailink_gateway.approve_when_pending(1)
        held = c.post("/v1/charges", json=BIG, headers=bearer(token, **{"Idempotency-Key": "re-1"}))
        approver.join()
        assert held.status_code == 200 and held.headers["x-ailink-approval-id"] == first["approval_id"]
        replay = c.post("/v1/charges", json=BIG, headers=headers)
        assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == held.json()
        # a different body with the same key is refused
        other = c.post("/v1/charges", json={**BIG, "amount": 6000}, headers=headers)
        assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert ailink_gateway.payments_stats()["by_idempotency_key"] == {"re-1": 1}


def test_resend_after_rejection_or_expiry(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway, timeout="300ms")
    with client(ailink_gateway) as c:
        h1 = bearer(token, **ASYNC, **{"Idempotency-Key": "rej"})
        apr = c.post("/v1/charges", json=BIG, headers=h1).json()["approval_id"]
        ailink_gateway.decide(apr, "rejected")
        assert c.post("/v1/charges", json=BIG, headers=h1).status_code == 403
        h2 = bearer(token, **{"Idempotency-Key": "exp"})
        assert c.post("/v1/charges", json=BIG, headers=h2).status_code == 408
        again = c.post("/v1/charges", json=BIG, headers=h2)
        assert again.status_code == 408
        assert again.json()["error"]["code"] == "approval_timeout"
    with admin(ailink_gateway) as a:
        assert len(a.get("/api/v1/approvals").json()) == 2  # the re-sends created no new approval


def test_get_with_key_only_reattaches(ailink_gateway: EmulatorGateway) -> None:
    policy = {"name": "approve-customer-reads", "rules": [{
        "when": {"field": "request.path", "op": "starts_with", "value": "/v1/customers"},
        "then": {"action": "require_approval", "timeout": "5m"}}]}
    token = ailink_gateway.create_token(policies=[policy])
    headers = bearer(token, **ASYNC, **{"Idempotency-Key": "read-1"})
    with client(ailink_gateway) as c:
        first = c.get("/v1/customers", headers=headers).json()["approval_id"]
        assert c.get("/v1/customers", headers=headers).json()["approval_id"] == first
        ailink_gateway.decide(first, "approved")
        resp = c.get("/v1/customers", headers=headers)
        assert resp.status_code == 200 and len(resp.json()["data"]) == 3
        assert resp.headers["x-ailink-approval-id"] == first


def test_withdraw_and_decide_twice(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    with client(ailink_gateway) as c:
        a1 = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC)).json()["approval_id"]
        resp = c.delete(f"/v1/approvals/{a1}", headers=bearer(token))
        assert resp.json()["status"] == "cancelled" and resp.json()["updated"] is True
        assert ailink_gateway.decide(a1, "approved") == {"id": a1, "status": "cancelled", "updated": False}
        a2 = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC)).json()["approval_id"]
        assert ailink_gateway.decide(a2, "approved") == {"id": a2, "status": "approved", "updated": True}
        assert ailink_gateway.decide(a2, "rejected") == {"id": a2, "status": "approved", "updated": False}
        assert c.delete(f"/v1/approvals/{a2}", headers=bearer(token)).json()["updated"] is False
        assert c.get(f"/v1/approvals/{a2}/result", headers=bearer(token)).status_code == 200
    assert ailink_gateway.payments_stats()["charges"] == 1


def test_another_tokens_approval_is_404(ailink_gateway: EmulatorGateway) -> None:
    owner = _token(ailink_gateway)
    other = ailink_gateway.create_token(name="other")
    with client(ailink_gateway) as c:
        apr_id = c.post("/v1/charges", json=BIG, headers=bearer(owner, **ASYNC)).json()["approval_id"]
        for method, path in (("GET", f"/v1/approvals/{apr_id}"), ("GET", f"/v1/approvals/{apr_id}/result"),
                             ("DELETE", f"/v1/approvals/{apr_id}")):
            resp = c.request(method, path, headers=bearer(other))
            assert resp.status_code == 404
            assert resp.json()["error"]["code"] == "approval_not_found"
            assert "charges" not in resp.text and "5000" not in resp.text
        assert c.get(f"/v1/approvals/{apr_id}", headers=bearer(owner)).json()["status"] == "pending"


async def test_approved_request_executes_exactly_once_under_races(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)
    async with httpx.AsyncClient(base_url=ailink_gateway.url, timeout=30) as c:
        headers = bearer(token, **{"Idempotency-Key": "race"})
        apr_id = (await c.post("/v1/charges", json=BIG, headers={**headers, **ASYNC})).json()["approval_id"]
        blocking = [asyncio.create_task(c.post("/v1/charges", json=BIG, headers=headers)) for _ in range(3)]
        await asyncio.sleep(0.1)
        decision = asyncio.to_thread(ailink_gateway.decide, apr_id, "approved")
        results = [c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token)) for _ in range(3)]
        _, *answers = await asyncio.gather(decision, *blocking)
        polled = await asyncio.gather(*results)
    bodies = {r.json()["id"] for r in answers} | {r.json()["id"] for r in polled if r.status_code == 200}
    assert all(r.status_code == 200 for r in answers)
    assert len(bodies) == 1
    assert ailink_gateway.payments_stats()["by_idempotency_key"] == {"race": 1}


def test_restart_during_pending_approval(tmp_path: Path) -> None:
    db = str(tmp_path / "emulator.db")
    gw, stop = start_gateway(db_path=db, admin_key="restart-admin-key")
    token = _token(gw)
    with client(gw) as c:
        apr_id = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC, **{"Idempotency-Key": "rs"})).json()[
            "approval_id"]
    stop()
    gw2, stop2 = start_gateway(db_path=db, admin_key="restart-admin-key")
    try:
        assert gw2.url != "" and [a["id"] for a in gw2.pending_approvals()] == [apr_id]
        with client(gw2) as c:
            assert c.get(f"/v1/approvals/{apr_id}", headers=bearer(token)).json()["status"] == "pending"
            again = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC, **{"Idempotency-Key": "rs"}))
            assert again.status_code == 202 and again.json()["approval_id"] == apr_id

            def decide() -> None:
                time.sleep(0.3)
                gw2.decide(apr_id, "approved")

            threading.Thread(target=decide).start()
            status = c.get(f"/v1/approvals/{apr_id}", params={"wait": 20}, headers=bearer(token)).json()
            assert status["status"] == "approved"
            result = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token))
            assert result.status_code == 200 and result.json()["amount"] == 5000
        assert gw2.payments_stats()["by_idempotency_key"] == {"rs": 1}
    finally:
        stop2()


def test_many_pending_long_polls_all_wake(ailink_gateway: EmulatorGateway) -> None:
    token = _token(ailink_gateway)

    async def scenario() -> list[str]:
        async with httpx.AsyncClient(base_url=ailink_gateway.url, timeout=30) as c:
            ids = [(await c.post("/v1/charges", json={**BIG, "amount": 2000 + i},
                                 headers=bearer(token, **ASYNC))).json()["approval_id"] for i in range(20)]
            # each poll waits up to 20 s; the 10 s read timeout fails any that does not wake on its decision
            polls = [c.get(f"/v1/approvals/{i}", params={"wait": 20}, headers=bearer(token), timeout=10)
                     for i in ids]
            approver = ailink_gateway.approve_when_pending(20)
            answers = await asyncio.gather(*polls)
            await asyncio.to_thread(approver.join)
            return [a.json()["status"] for a in answers]

    statuses = asyncio.run(scenario())
    assert statuses == ["approved"] * 20


def test_execution_interrupted_by_a_restart_is_not_resent(tmp_path: Path) -> None:
    import sqlite3

    db = str(tmp_path / "emulator.db")
    gw, stop = start_gateway(db_path=db, admin_key="k")
    token = _token(gw)
    with client(gw) as c:
        apr_id = c.post("/v1/charges", json=BIG, headers=bearer(token, **ASYNC)).json()["approval_id"]
    stop()
    with sqlite3.connect(db) as conn:  # as if the process died while the approved request was in flight
        conn.execute("UPDATE approvals SET status = 'approved', exec_state = 'running' WHERE id = ?", (apr_id,))
    gw2, stop2 = start_gateway(db_path=db, admin_key="k")
    try:
        with client(gw2) as c:
            # answered from the stored state (no wait for an execution that will never finish)
            resp = c.get(f"/v1/approvals/{apr_id}/result", headers=bearer(token), timeout=5)
        assert resp.status_code == 502
        err = resp.json()["error"]
        assert err["code"] == "outcome_unknown"
        assert err["details"]["ambiguous"] is True and err["details"]["approval_id"] == apr_id
        assert gw2.payments_stats()["total_executions"] == 0
    finally:
        stop2()
