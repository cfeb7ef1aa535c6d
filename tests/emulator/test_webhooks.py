"""Webhook deliveries, checked by a receiving server on loopback: signed, retried, logged, never blocking."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import ailink
from ailink import WebhookVerificationError, verify_webhook
from ailink.emulator import EmulatorHost
from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, approval_policy, bearer, client
from .webhook_receiver import WebhookReceiver

FAST_RETRIES = (0.01, 0.02, 0.05)
BIG = {"amount": 5000, "currency": "usd", "customer": "cus_1"}
SECRET = "whsec_test_0123456789"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def gateway(ailink_emulator_host: EmulatorHost) -> Iterator[EmulatorGateway]:
    gw, stop = start_gateway(host=ailink_emulator_host, webhook_retry_delays=FAST_RETRIES)
    try:
        yield gw
    finally:
        stop()


def _hook(gw: EmulatorGateway, url: str, **extra: Any) -> dict[str, Any]:
    with admin(gw) as a:
        created = a.post("/api/v1/webhooks", json={"url": url, "secret": SECRET, **extra})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _settled(gw: EmulatorGateway, hook_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The delivery log once ``count`` deliveries are no longer pending (bounded wait)."""
    deadline = time.monotonic() + 15
    with admin(gw) as a:
        while True:
            rows = a.get(f"/api/v1/webhooks/{hook_id}/deliveries").json()
            done = [r for r in rows if r["status"] != "pending"]
            if len(done) >= count:
                return list(rows)
            assert time.monotonic() < deadline, rows
            time.sleep(0.02)


def _park(gw: EmulatorGateway, token: str, **headers: str) -> dict[str, Any]:
    with client(gw) as c:
        resp = c.post("/v1/charges", json=BIG, headers=bearer(token, Prefer="respond-async", **headers))
    assert resp.status_code == 202, resp.text
    return dict(resp.json())


def test_approval_requested_is_signed_and_says_what_to_review(gateway: EmulatorGateway,
                                                               receiver: WebhookReceiver) -> None:
    hook = _hook(gateway, receiver.url + "/hook", events=["approval.requested"])
    token = gateway.create_token(policies=[approval_policy()])
    parked = _park(gateway, token, **{"X-Session-Id": "s-hook", "X-AIlink-Agent-Name": "billing-bot",
                                      "X-AIlink-Tool-Name": "create_charge"})

    (delivery,) = receiver.wait_for(1)
    assert delivery.path == "/hook" and delivery.event == "approval.requested"
    assert delivery.headers["x-ailink-delivery-id"].startswith("dlv_")
    assert delivery.headers["x-ailink-timestamp"].isdigit()
    assert delivery.headers["x-ailink-signature"].startswith("sha256=")
    event = verify_webhook(delivery.body, delivery.headers, SECRET)
    details = event["details"]
    assert event["event_type"] == "approval.requested"
    assert details["approval_id"] == parked["approval_id"] and details["status"] == "pending"
    assert (details["method"], details["path"], details["policy"]) == ("POST", "/v1/charges", "charges-over-1000")
    assert (details["agent"], details["tool_name"], details["session_id"]) == ("billing-bot", "create_charge", "s-hook")
    assert json.loads(details["body_preview"]) == BIG
    assert details["review_url"] == f"{gateway.url}/ui/approvals/{parked['approval_id']}"
    assert details["decide"]["approve"].startswith(f"ailink approvals approve {parked['approval_id']}")
    assert token not in delivery.body.decode() and event["token_id"].endswith("…")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(delivery.body, delivery.headers, "whsec_some_other_secret")

    (row,) = _settled(gateway, hook["id"])
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["response_status"] == 200
    assert row["id"] == delivery.headers["x-ailink-delivery-id"] and row["event_type"] == "approval.requested"


def test_the_trueflow_generation_brands_its_deliveries(receiver: WebhookReceiver) -> None:
    gw, stop = start_gateway(generation="trueflow", webhook_retry_delays=FAST_RETRIES)
    try:
        _hook(gw, receiver.url + "/hook", events=["approval.requested"])
        _park(gw, gw.create_token(policies=[approval_policy()]))
        (delivery,) = receiver.wait_for(1)
    finally:
        stop()
    for name in ("delivery-id", "timestamp", "event", "signature"):
        assert f"x-trueflow-{name}" in delivery.headers and f"x-ailink-{name}" not in delivery.headers, name
    assert verify_webhook(delivery.body, delivery.headers, SECRET)["event_type"] == "approval.requested"


def test_a_failing_receiver_is_retried_with_the_same_delivery_id(gateway: EmulatorGateway,
                                                                 receiver: WebhookReceiver) -> None:
    receiver.statuses = [500, 503]
    hook = _hook(gateway, receiver.url, events=["approval.requested"])
    _park(gateway, gateway.create_token(policies=[approval_policy()]))

    deliveries = receiver.wait_for(3)
    assert [d.status for d in deliveries] == [500, 503, 200]
    assert len({d.headers["x-ailink-delivery-id"] for d in deliveries}) == 1
    for d in deliveries:  # every attempt is signed over the same body
        verify_webhook(d.body, d.headers, SECRET)
    (row,) = _settled(gateway, hook["id"])
    assert (row["status"], row["attempts"], row["response_status"], row["error"]) == ("delivered", 3, 200, None)


def test_a_receiver_that_keeps_failing_ends_failed_and_4xx_is_not_retried(gateway: EmulatorGateway,
                                                                          receiver: WebhookReceiver) -> None:
    receiver.statuses = [500] * 10
    hook = _hook(gateway, receiver.url, events=["approval.requested"])
    token = gateway.create_token(policies=[approval_policy()])
    _park(gateway, token)
    (row,) = _settled(gateway, hook["id"])
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1 + len(FAST_RETRIES), "HTTP 500")

    receiver.statuses = [410]
    with admin(gateway) as a:
        a.delete(f"/api/v1/webhooks/{hook['id']}")
    gone = _hook(gateway, receiver.url, events=["approval.requested"])
    _park(gateway, token, **{"X-AIlink-Idempotency-Key": "another-charge"})
    (row,) = _settled(gateway, gone["id"])
    assert (row["status"], row["attempts"], row["response_status"]) == ("failed", 1, 410)


def test_deliveries_never_block_the_request(gateway: EmulatorGateway, receiver: WebhookReceiver) -> None:
    receiver.gate.clear()  # the receiver holds every answer until released
    hook = _hook(gateway, receiver.url)
    token = gateway.create_token(policies=[approval_policy()])
    parked = _park(gateway, token)  # answered while the receiver still holds the delivery
    receiver.wait_for(1)
    with admin(gateway) as a:
        (row,) = a.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
        assert row["status"] == "pending" and row["attempts"] == 0
        decided = a.post(f"/api/v1/approvals/{parked['approval_id']}/decision", json={"decision": "rejected"})
        assert decided.json()["updated"] is True  # the management API is not held either
    receiver.gate.set()
    rows = _settled(gateway, hook["id"], count=2)
    assert {r["event_type"] for r in rows} == {"approval.requested", "approval.decided"}
    assert all(r["status"] == "delivered" for r in rows)


def test_decided_expired_and_denied_events(gateway: EmulatorGateway, receiver: WebhookReceiver) -> None:
    _hook(gateway, receiver.url)
    deny = {"name": "no-refunds", "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
                                             "then": {"action": "deny", "message": "refunds are off"}}]}
    token = gateway.create_token(policies=[approval_policy(), deny])
    first = _park(gateway, token, **{"X-AIlink-Idempotency-Key": "k1"})
    gateway.admin.approvals.approve(first["approval_id"], "looks fine", reviewed_by="alice", channel="sdk")
    (decided,) = receiver.wait_for(1, event="approval.decided")
    details = verify_webhook(decided.body, decided.headers, SECRET)["details"]
    assert (details["approval_id"], details["status"], details["reason"]) == (first["approval_id"], "approved",
                                                                              "looks fine")
    assert (details["reviewed_by"], details["review_channel"]) == ("alice", "sdk")

    short = gateway.create_token(policies=[approval_policy("200ms")])
    expiring = _park(gateway, short)
    (expired,) = receiver.wait_for(1, event="approval.expired")  # sent by the expiry timer: nobody polled
    details = verify_webhook(expired.body, expired.headers, SECRET)["details"]
    assert (details["approval_id"], details["status"]) == (expiring["approval_id"], "expired")

    with client(gateway) as c:
        refused = c.post("/v1/refunds", json={"charge": "ch_1"}, headers=bearer(token, **{"X-Session-Id": "s-deny"}))
    assert refused.status_code == 403
    (denied,) = receiver.wait_for(1, event="policy.denied")
    details = verify_webhook(denied.body, denied.headers, SECRET)["details"]
    assert (details["policy"], details["reason"], details["path"], details["session_id"]) == (
        "no-refunds", "refunds are off", "/v1/refunds", "s-deny")


def test_subscriptions_filter_events_and_accept_the_real_gateway_names(gateway: EmulatorGateway,
                                                                       receiver: WebhookReceiver) -> None:
    only_requested = _hook(gateway, receiver.url + "/requested", events=["approval_requested"])
    only_decided = _hook(gateway, receiver.url + "/decided", events=["approval.decided"])
    parked = _park(gateway, gateway.create_token(policies=[approval_policy()]))
    gateway.decide(parked["approval_id"], "rejected", "no")
    rows_requested = _settled(gateway, only_requested["id"])
    rows_decided = _settled(gateway, only_decided["id"])
    assert [r["event_type"] for r in rows_requested] == ["approval.requested"]
    assert [r["event_type"] for r in rows_decided] == ["approval.decided"]
    assert sorted(d.path for d in receiver.received) == ["/decided", "/requested"]


def test_the_policy_action_webhook_fires_in_the_background(gateway: EmulatorGateway,
                                                            receiver: WebhookReceiver) -> None:
    with admin(gateway) as a:
        for bad in ({"action": "webhook"}, {"action": "webhook", "url": "ftp://x"},
                    {"action": "webhook", "url": receiver.url, "timeout_ms": 0},
                    {"action": "webhook", "url": receiver.url, "on_fail": "explode"}):
            refused = a.post("/api/v1/policies", json={"name": "bad", "rules": [{"then": bad}]})
            assert refused.status_code == 422, bad
    alert = {"name": "alert-on-refunds", "rules": [{
        "when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
        "then": [{"action": "webhook", "url": receiver.url + "/alert", "timeout_ms": 2000, "on_fail": "log"},
                 {"action": "deny", "message": "refunds are off"}]}]}
    receiver.gate.clear()
    token = gateway.create_token(policies=[alert])
    with client(gateway) as c:
        refused = c.post("/v1/refunds", json={"charge": "ch_1"}, headers=bearer(token))
        allowed = c.get("/v1/customers/cus_001", headers=bearer(token))
    assert refused.status_code == 403 and allowed.status_code == 200  # answered while the receiver holds
    (delivery,) = receiver.wait_for(1)
    receiver.gate.set()
    assert delivery.path == "/alert" and delivery.event == "policy.matched"
    assert "x-ailink-signature" not in delivery.headers  # the action has no secret
    details = json.loads(delivery.body)["details"]
    assert (details["policy"], details["path"], details["on_fail"]) == ("alert-on-refunds", "/v1/refunds", "log")
    with admin(gateway) as a:
        deadline = time.monotonic() + 15
        while True:
            (row,) = a.get("/api/v1/webhooks/deliveries", params={"event": "policy.matched"}).json()
            if row["status"] != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    assert row["webhook_id"].startswith("policy:") and row["status"] == "delivered"


def test_global_webhooks_and_slack_messages(receiver: WebhookReceiver) -> None:
    gateway, stop = start_gateway(webhooks=[receiver.url + "/global"], webhook_secret=SECRET,
                                  slack_webhooks=[receiver.url + "/services/T000/B000/XXXX"],
                                  webhook_retry_delays=FAST_RETRIES)
    try:
        token = gateway.create_token(policies=[approval_policy()])
        parked = _park(gateway, token, **{"X-AIlink-Agent-Name": "<!channel> & <b>bot</b>"})
        deliveries = receiver.wait_for(2, event="approval.requested")
        by_path = {d.path: d for d in deliveries}
        event = verify_webhook(by_path["/global"].body, by_path["/global"].headers, SECRET)
        assert event["details"]["approval_id"] == parked["approval_id"]

        slack = json.loads(by_path["/services/T000/B000/XXXX"].body)
        assert "x-ailink-signature" not in by_path["/services/T000/B000/XXXX"].headers
        text = json.dumps(slack)
        assert "Approval needed: POST /v1/charges" in slack["text"]
        assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;b&gt;bot&lt;/b&gt;" in text
        (button,) = [b for b in slack["blocks"] if b["type"] == "actions"]
        assert button["elements"][0]["url"] == f"{gateway.url}/ui/approvals/{parked['approval_id']}"

        with admin(gateway) as a:
            assert a.get("/api/v1/webhooks/global-1/deliveries").json()[0]["webhook_id"] == "global-1"
            (slack_row,) = a.get("/api/v1/webhooks/slack-1/deliveries").json()
            assert "XXXX" not in json.dumps(slack_row)  # a Slack URL is a secret: its path is not shown
    finally:
        stop()
    with pytest.raises(ValueError):
        start_gateway(webhooks=["not a url"])


def test_test_deliveries_and_the_sdk(gateway: EmulatorGateway, receiver: WebhookReceiver) -> None:
    admin_client = gateway.admin
    created = admin_client.webhooks.create(receiver.url + "/sdk", ["approval.requested"], SECRET)
    assert created["signing_secret"] == SECRET and created["format"] == "json"
    result = admin_client.webhooks.test(created["id"])
    assert result["delivered"] is True and result["status_code"] == 200
    (delivery,) = receiver.wait_for(1)
    assert verify_webhook(delivery.body, delivery.headers, SECRET)["event_type"] == "webhook.test"
    (row,) = admin_client.webhooks.deliveries(created["id"])
    assert row["id"] == result["delivery_id"] and row["status"] == "delivered"
    receiver.statuses = [500]
    with admin(gateway) as a:
        failed = a.post("/api/v1/webhooks/test", json={"url": receiver.url + "/x"}).json()
    assert failed["delivered"] is False and failed["status_code"] == 500 and "HTTP 500" in failed["message"]


def test_verify_webhook_refuses_forgeries() -> None:
    body = json.dumps({"event_type": "approval.requested", "timestamp": "2020-01-01T00:00:00Z",
                       "details": {}}).encode()
    signature = ailink.webhooks.sign_webhook(body, SECRET)
    headers = {"X-AIlink-Signature": signature}
    assert verify_webhook(body, headers, SECRET, tolerance=None)["event_type"] == "approval.requested"
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(body, headers, SECRET)  # signed, but years old: a replay
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(body.replace(b"requested", b"decided"), headers, SECRET, tolerance=None)
    with pytest.raises(WebhookVerificationError, match="no x-ailink-signature"):
        verify_webhook(body, {}, SECRET)
    with pytest.raises(WebhookVerificationError) as raised:
        verify_webhook(body, headers, "whsec_wrong", tolerance=None)
    assert "whsec_wrong" not in str(raised.value) and SECRET not in str(raised.value)
    not_json = b"[1, 2"
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        verify_webhook(not_json, {"x-trueflow-signature": ailink.webhooks.sign_webhook(not_json, SECRET)}, SECRET)
