"""The emulator's approval watch [ext] (protocol §4.4) and bulk decisions (§7)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from ailink._llm import SSEDecoder, SSEEvent
from ailink.emulator import EmulatorHost
from ailink.emulator._profile import AILINK
from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, approval_policy, bearer, client

ASYNC = {"Prefer": "respond-async"}


def _park(c: httpx.Client, token: str, amount: int) -> dict[str, Any]:
    """A charge that needs approval, answered 202; its body."""
    answer = c.post("/v1/charges", json={"amount": amount}, headers=bearer(token, **ASYNC))
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _decide(gw: EmulatorGateway, decisions: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    with admin(gw) as a:
        return a.post("/api/v1/approvals/decisions", json={"decisions": decisions, **extra})


class EventReader:
    """The events of an open approval stream, read in a background thread."""

    def __init__(self, response: httpx.Response) -> None:
        self.events: list[SSEEvent] = []
        self._arrived = threading.Condition()
        self._response = response
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        decoder = SSEDecoder()
        try:
            for chunk in self._response.iter_bytes():
                events = decoder.feed(chunk)
                with self._arrived:
                    self.events.extend(events)
                    self._arrived.notify_all()
        except httpx.HTTPError:
            pass

    def until(self, count: int, kind: str = "approval") -> list[SSEEvent]:
        """The events once ``count`` of ``kind`` have arrived (fails the test after 20 s)."""
        with self._arrived:
            assert self._arrived.wait_for(lambda: sum(e.event == kind for e in self.events) >= count, 20), \
                f"only {[e.event for e in self.events]}"
            return list(self.events)


@contextmanager
def watching(gw: EmulatorGateway, token: str, **params: Any) -> Iterator[EventReader]:
    with client(gw) as c, c.stream("GET", "/v1/approvals/events", params=params, headers=bearer(token)) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        yield EventReader(answer)


def _approvals(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in events if e.event == "approval"]


def test_the_202_and_the_status_carry_the_event_cursor(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    with client(ailink_gateway) as c:
        first = _park(c, token, 2000)
        assert first["event_cursor"] == 0
        _decide(ailink_gateway, [{"id": first["approval_id"], "decision": "rejected"}])
        second = _park(c, token, 3000)
        assert second["event_cursor"] == 1  # one settlement since
        status = c.get(f"/v1/approvals/{second['approval_id']}", headers=bearer(token)).json()
        assert status["status"] == "pending" and status["event_cursor"] == 1
        assert "approvals-watch" in c.get("/v1/customers", headers=bearer(token)).headers["x-ailink-extensions"]


def test_stream_catches_up_then_goes_live(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    with client(ailink_gateway) as c:
        parked = [_park(c, token, 2000 + i) for i in range(4)]
        _decide(ailink_gateway, [{"id": parked[0]["approval_id"], "decision": "approved"},
                                 {"id": parked[1]["approval_id"], "decision": "rejected", "reason": "no"}])
        with watching(ailink_gateway, token, after=0) as stream:
            events = stream.until(1, "ready")
            caught_up = _approvals(events)
            assert [(a["approval_id"], a["status"], a["event_cursor"]) for a in caught_up] == [
                (parked[0]["approval_id"], "approved", 1), (parked[1]["approval_id"], "rejected", 2)]
            assert caught_up[1]["reason"] == "no" and caught_up[0]["result_url"].endswith("/result")
            assert json.loads(events[-1].data) == {"event_cursor": 2}
            assert [e.id for e in events if e.event == "approval"] == ["1", "2"]
            # live: a decision, a withdrawal by the agent
            _decide(ailink_gateway, [{"id": parked[2]["approval_id"], "decision": "approved"}])
            c.delete(f"/v1/approvals/{parked[3]['approval_id']}", headers=bearer(token))
            live = _approvals(stream.until(4))[2:]
        assert [(a["approval_id"], a["status"], a["event_cursor"]) for a in live] == [
            (parked[2]["approval_id"], "approved", 3), (parked[3]["approval_id"], "cancelled", 4)]


def test_stream_resumes_after_a_cursor_and_from_last_event_id(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    with client(ailink_gateway) as c:
        parked = [_park(c, token, 2000 + i) for i in range(3)]
    _decide(ailink_gateway, [{"id": p["approval_id"], "decision": "approved"} for p in parked])
    with watching(ailink_gateway, token, after=2) as stream:
        assert [a["approval_id"] for a in _approvals(stream.until(1, "ready"))] == [parked[2]["approval_id"]]
    with client(ailink_gateway) as c, c.stream("GET", "/v1/approvals/events",
                                               headers=bearer(token, **{"Last-Event-ID": "1"})) as answer:
        reader = EventReader(answer)
        assert [a["event_cursor"] for a in _approvals(reader.until(1, "ready"))] == [2, 3]


def test_expiry_is_a_settlement_on_the_stream(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy("1s")])
    with client(ailink_gateway) as c:
        parked = _park(c, token, 2000)
    with watching(ailink_gateway, token, after=parked["event_cursor"]) as stream:
        expired = _approvals(stream.until(1))  # the emulator's expiry timer settles it on time
    assert [(a["approval_id"], a["status"]) for a in expired] == [(parked["approval_id"], "expired")]


def test_a_stream_shows_only_the_calling_tokens_approvals(ailink_gateway: EmulatorGateway) -> None:
    mine = ailink_gateway.create_token(name="mine", policies=[approval_policy()])
    other = ailink_gateway.create_token(name="other", policies=[approval_policy()])
    with client(ailink_gateway) as c:
        theirs = _park(c, other, 2000)
        ours = _park(c, mine, 3000)
    with watching(ailink_gateway, mine, after=0) as stream:
        _decide(ailink_gateway, [{"id": theirs["approval_id"], "decision": "approved"},
                                 {"id": ours["approval_id"], "decision": "approved"}])
        events = stream.until(1)
    assert [a["approval_id"] for a in _approvals(events)] == [ours["approval_id"]]
    assert all(theirs["approval_id"] not in e.data for e in events)


def test_stream_refuses_bad_input(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        assert c.get("/v1/approvals/events").status_code == 401
        assert c.get("/v1/approvals/events", headers=bearer("ailink_v1_nope_tok_0")).status_code == 401
        for after in ("-1", "1.5", "x", "9" * 40):
            answer = c.get("/v1/approvals/events", params={"after": after}, headers=bearer(token))
            assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error", after


def test_a_gateway_without_the_watch_has_no_cursor_and_no_stream(ailink_emulator_host: EmulatorHost) -> None:
    no_watch = replace(AILINK, name="no-watch", extensions=("respond-async", "outcome-store"), approvals_watch=False)
    gateway, stop = start_gateway(host=ailink_emulator_host, profile=no_watch)
    try:
        token = gateway.create_token(policies=[approval_policy()])
        with client(gateway) as c:
            parked = _park(c, token, 2000)
            assert "event_cursor" not in parked
            # the path is an approval id there: no such approval
            assert c.get("/v1/approvals/events", headers=bearer(token)).status_code == 404
    finally:
        stop()


def test_real_profile_proxies_the_stream_path(ailink_gateway_real: EmulatorGateway) -> None:
    token = ailink_gateway_real.create_token()
    with client(ailink_gateway_real) as c:
        answer = c.get("/v1/approvals/events", headers=bearer(token))
    assert "x-ailink-extensions" not in answer.headers
    assert answer.headers.get("x-ailink-cb-state") is not None  # an upstream (the payments mock) answered


# ---------------------------------------------------------------------- bulk decisions


def test_bulk_decisions_decide_many_and_report_unknown_ids(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    with client(ailink_gateway) as c:
        parked = [_park(c, token, 2000 + i) for i in range(3)]
    ids = [p["approval_id"] for p in parked]
    answer = _decide(ailink_gateway, [
        {"id": ids[0], "decision": "approved"}, {"id": ids[1], "decision": "reject", "reason": "too much"},
        {"id": "apr_unknown", "decision": "approved"}, {"id": ids[0], "decision": "rejected"},
    ], reviewed_by="ops", channel="sdk")
    assert answer.status_code == 200
    assert answer.json() == {"updated": 2, "results": [
        {"id": ids[0], "status": "approved", "updated": True},
        {"id": ids[1], "status": "rejected", "updated": True},
        {"id": "apr_unknown", "status": None, "updated": False, "error": "approval_not_found"},
        {"id": ids[0], "status": "approved", "updated": False},  # no longer pending
    ]}
    rows = {a["id"]: a for a in ailink_gateway.admin.approvals.list()}
    assert rows[ids[1]]["status"] == "rejected" and rows[ids[2]]["status"] == "pending"
    with admin(ailink_gateway) as a:
        page = a.get(f"/api/v1/approvals/{ids[1]}").json()
    assert (page["reviewed_by"], page["review_channel"], page["reason"]) == ("ops", "sdk", "too much")
    with client(ailink_gateway) as c:
        assert c.get(f"/v1/approvals/{ids[0]}/result", headers=bearer(token)).status_code == 200
    assert ailink_gateway.payments_stats()["charges"] == 1  # the approved one ran, once


@pytest.mark.parametrize("body", [
    {}, {"decisions": []}, {"decisions": "apr_1"}, {"decisions": [{"decision": "approved"}]},
    {"decisions": [{"id": "apr_1", "decision": "maybe"}]},
    {"decisions": [{"id": "apr_1", "decision": "approved", "reason": 5}]},
    {"decisions": [{"id": "apr_1", "decision": "approved"}], "channel": "carrier-pigeon"},
    {"decisions": [{"id": "apr_1", "decision": "approved"}] * 10_001},
])
def test_bulk_decisions_check_every_item_before_applying_any(ailink_gateway: EmulatorGateway,
                                                             body: dict[str, Any]) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    with client(ailink_gateway) as c:
        parked = _park(c, token, 2000)
    if isinstance(body.get("decisions"), list) and body["decisions"]:
        body = {**body, "decisions": [{"id": parked["approval_id"], "decision": "approved"}, *body["decisions"]]}
    with admin(ailink_gateway) as a:
        answer = a.post("/api/v1/approvals/decisions", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "validation_error"
    assert [p["id"] for p in ailink_gateway.pending_approvals()] == [parked["approval_id"]]


def test_real_profile_has_no_bulk_decisions(ailink_gateway_real: EmulatorGateway) -> None:
    token = ailink_gateway_real.create_token(policies=[approval_policy()])
    held = threading.Thread(target=lambda: _held_charge(ailink_gateway_real, token), daemon=True)
    held.start()
    [pending] = _pending_soon(ailink_gateway_real)
    answer = _decide(ailink_gateway_real, [{"id": pending["id"], "decision": "approved"}])
    assert answer.status_code == 404 and answer.content == b""  # the real gateway's bare 404
    assert [p["id"] for p in ailink_gateway_real.pending_approvals()] == [pending["id"]]  # nothing decided
    ailink_gateway_real.decide(pending["id"], "rejected")
    held.join(20)


def _held_charge(gw: EmulatorGateway, token: str) -> None:
    with client(gw) as c:
        c.post("/v1/charges", json={"amount": 2000}, headers=bearer(token), timeout=30)


def _pending_soon(gw: EmulatorGateway) -> list[dict[str, Any]]:
    for _ in range(400):
        pending = gw.pending_approvals()
        if pending:
            return pending
        threading.Event().wait(0.05)
    raise AssertionError("no approval became pending")


def test_bulk_decisions_need_the_admin_key(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        answer = c.post("/api/v1/approvals/decisions", json={"decisions": [{"id": "apr_1", "decision": "approved"}]},
                        headers=bearer(token))
    assert answer.status_code == 401


def test_hundreds_of_pending_approvals_decided_in_one_call_reach_the_stream(ailink_gateway: EmulatorGateway) -> None:
    count = 300
    token = ailink_gateway.create_token(policies=[approval_policy()])
    with client(ailink_gateway) as c:
        ids = [_park(c, token, 2000 + i)["approval_id"] for i in range(count)]
    with watching(ailink_gateway, token, after=0) as stream:
        stream.until(1, "ready")
        answer = _decide(ailink_gateway, [{"id": i, "decision": "approved"} for i in ids])
        assert answer.json()["updated"] == count
        settled = _approvals(stream.until(count))
    assert sorted(a["approval_id"] for a in settled) == sorted(ids)
    assert [a["event_cursor"] for a in settled] == list(range(1, count + 1))
