"""Protocol §4.4 in the wait state machine (sans-I/O, fake clock) and the watch's book-keeping.

The flow is stepped by hand: each test plays the gateway and the client's watcher, so what the wait
asks for (watch, long poll, peek, result, withdrawal) and on which lane is checked step by step.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import httpx
import pytest

import ailink
from ailink import _approval, _watch
from ailink._approval import ApprovalStatus, PendingApproval, wait_for_decision
from ailink._config import ClientConfig
from ailink._flow import LANE_EXTENSION, POLL_LANE, WAIT_LANE, Send, Sleep, WatchDecision, WatchSignal
from ailink._llm import SSEEvent

from .helpers import GATEWAY, TOKEN, FakeClock, advertise, fast_retry

APPROVAL = "apr_watch1"
WATCHING = "respond-async, outcome-store, approvals-watch"


def _config() -> ClientConfig:
    return ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, retry=fast_retry())


def _pending(cursor: int | None = 7) -> PendingApproval:
    return PendingApproval(approval_id=APPROVAL, idempotency_key="key-1", event_cursor=cursor)


def _status(status: str, cursor: int = 9, **extra: Any) -> dict[str, Any]:
    return {"approval_id": APPROVAL, "status": status, "reason": extra.pop("reason", None),
            "decided_at": "2026-12-01T10:00:00Z", "event_cursor": cursor, **extra}


def _answer(step: Send, status: int = 200, body: Any = None, extensions: str = WATCHING) -> httpx.Response:
    """The gateway's answer to ``step`` (it says which extensions it has, as every answer does)."""
    return httpx.Response(status, json=body if body is not None else {}, request=step.request,
                          headers={"X-AIlink-Extensions": extensions})


class Stepper:
    """Drives a flow by hand on a fake clock."""

    def __init__(self, flow: Generator[Any, Any, Any], clock: FakeClock) -> None:
        self.flow = flow
        self.clock = clock
        self.step: Any = next(flow)
        self.result: Any = None
        self.done = False

    def send(self, value: Any) -> Any:
        try:
            self.step = self.flow.send(value)
        except StopIteration as stop:
            self.done, self.result, self.step = True, stop.value, None
        return self.step

    def throw(self, exc: BaseException) -> Any:
        self.step = self.flow.throw(exc)
        return self.step

    def sleep_through(self) -> Any:
        while isinstance(self.step, Sleep):
            self.clock.advance(self.step.seconds)
            self.send(None)
        return self.step


def _wait(clock: FakeClock, *, pending: PendingApproval | None = None, timeout: float = 300,
          approval_id: str = APPROVAL) -> Stepper:
    flow = wait_for_decision(_config(), approval_id, timeout=timeout, pending=pending,
                             idempotency_key="key-1", clock=clock)
    return Stepper(flow, clock)


def test_a_wait_watches_then_fetches_the_result(clock: FakeClock) -> None:
    advertise(WATCHING)
    run = _wait(clock, pending=_pending(7))
    assert isinstance(run.step, WatchDecision)
    assert (run.step.approval_id, run.step.cursor, run.step.seconds) == (APPROVAL, 7, 50)
    assert run.step.config.api_key == TOKEN
    clock.advance(50)
    run.send(None)  # still pending after 50 s: no request, the wait goes on
    assert isinstance(run.step, WatchDecision)
    run.send(_status("approved", reason="ok"))
    assert isinstance(run.step, Send)
    fetch = run.step.request
    assert (fetch.method, fetch.url.path) == ("GET", f"/v1/approvals/{APPROVAL}/result")
    assert fetch.extensions[LANE_EXTENSION] == WAIT_LANE
    assert fetch.extensions["timeout"]["pool"] is None  # the waits' lane never times out on a free connection
    run.send(_answer(run.step, body={"id": "ch_1"}))
    assert run.done and run.result.status is ApprovalStatus.APPROVED and run.result.reason == "ok"
    assert run.result.response.json() == {"id": "ch_1"}


@pytest.mark.parametrize(("status", "expected"), [("rejected", ApprovalStatus.REJECTED),
                                                  ("expired", ApprovalStatus.EXPIRED),
                                                  ("cancelled", ApprovalStatus.CANCELLED)])
def test_other_endings_come_from_the_watch_without_requests(clock: FakeClock, status: str,
                                                            expected: ApprovalStatus) -> None:
    advertise(WATCHING)
    run = _wait(clock, pending=_pending())
    run.send(_status(status, reason="no"))
    assert run.done and run.result.status is expected and run.result.response is None
    with pytest.raises(ailink.AIlinkError):
        run.result.raise_for_status()  # never a success


def test_the_deadline_withdraws_on_the_waits_lane(clock: FakeClock) -> None:
    advertise(WATCHING)
    run = _wait(clock, pending=_pending(), timeout=70)
    seconds = []
    while isinstance(run.step, WatchDecision):
        seconds.append(run.step.seconds)
        clock.advance(run.step.seconds)
        run.send(None)
    assert seconds == [50, 20]
    assert isinstance(run.step, Send) and run.step.request.method == "DELETE"
    assert run.step.request.extensions[LANE_EXTENSION] == WAIT_LANE
    with pytest.raises(ailink.ApprovalTimeoutError) as caught:
        run.send(_answer(run.step, body={"approval_id": APPROVAL, "status": "cancelled", "updated": True}))
    assert not caught.value.ambiguous and "not performed" in str(caught.value)


def test_unavailable_falls_back_to_the_long_poll(clock: FakeClock) -> None:
    advertise(WATCHING)
    run = _wait(clock, pending=_pending(), timeout=30)
    run.send(WatchSignal.UNAVAILABLE)
    assert isinstance(run.step, Send)
    poll = run.step.request
    assert poll.url.path == f"/v1/approvals/{APPROVAL}" and poll.url.params["wait"] == "30"
    assert poll.extensions[LANE_EXTENSION] == POLL_LANE
    assert poll.extensions["timeout"]["pool"] == 1.0  # no free connection: built again with the time left
    clock.advance(30)
    run.send(_answer(run.step, body=_status("pending")))
    # the fallback stays: the next step is the deadline's withdrawal, not a watch
    assert isinstance(run.step, Send) and run.step.request.method == "DELETE"


def test_resync_peeks_once_and_watches_from_the_new_cursor(clock: FakeClock) -> None:
    advertise(WATCHING)
    run = _wait(clock, pending=_pending(3))
    run.send(WatchSignal.RESYNC)
    assert isinstance(run.step, Send)
    peek = run.step.request
    assert "wait" not in peek.url.params and peek.extensions[LANE_EXTENSION] == WAIT_LANE
    run.send(_answer(run.step, body=_status("pending", cursor=40)))
    assert isinstance(run.step, WatchDecision) and run.step.cursor == 40


def test_a_wait_from_a_bare_id_reads_the_status_then_watches(clock: FakeClock) -> None:
    advertise(WATCHING)
    run = _wait(clock)
    assert isinstance(run.step, Send) and "wait" not in run.step.request.url.params
    expires = "2999-01-01T00:00:00Z"
    run.send(_answer(run.step, body=_status("pending", cursor=12, expires_at=expires)))
    assert isinstance(run.step, WatchDecision) and run.step.cursor == 12


def test_without_the_extension_a_cursor_is_not_used(clock: FakeClock) -> None:
    advertise("respond-async, outcome-store")
    run = _wait(clock, pending=_pending())
    assert isinstance(run.step, Send) and run.step.request.url.params["wait"] == "50"
    assert run.step.request.extensions[LANE_EXTENSION] == POLL_LANE


def test_without_a_cursor_the_long_poll_is_used(clock: FakeClock) -> None:
    advertise(WATCHING)
    run = _wait(clock, pending=_pending(None))
    assert isinstance(run.step, Send) and run.step.request.url.params["wait"] == "50"


def test_an_unknown_status_from_the_watch_is_lost_contact(clock: FakeClock) -> None:
    advertise(WATCHING)
    run = _wait(clock, pending=_pending())
    with pytest.raises(ailink.MalformedResponseError) as caught:
        run.send(_status("teleported"))
    assert caught.value.ambiguous and "apr_watch1" in str(caught.value)


def test_no_free_long_poll_connection_is_not_an_outcome(clock: FakeClock) -> None:
    advertise("respond-async, outcome-store")
    run = _wait(clock, pending=_pending(None), timeout=20)
    assert isinstance(run.step, Send)
    clock.advance(20)
    run.throw(httpx.PoolTimeout("no connection", request=run.step.request))  # not retried either
    assert isinstance(run.step, Send) and run.step.request.method == "DELETE"
    with pytest.raises(ailink.ApprovalTimeoutError) as caught:
        run.send(_answer(run.step, body={"approval_id": APPROVAL, "status": "cancelled", "updated": True}))
    assert not caught.value.ambiguous


def test_the_202_answer_carries_the_cursor() -> None:
    body = {"status": "pending_approval", "approval_id": APPROVAL, "event_cursor": 5}
    response = httpx.Response(202, json=body, request=httpx.Request("POST", GATEWAY + "/v1/charges"))
    assert PendingApproval.from_response(response).event_cursor == 5
    for bad in (-1, "5", True, 1.5, None):
        response = httpx.Response(202, json={**body, "event_cursor": bad},
                                  request=httpx.Request("POST", GATEWAY + "/v1/charges"))
        assert PendingApproval.from_response(response).event_cursor is None, bad


# ---------------------------------------------------------------------- the watch's book


def _event(kind: str, **data: Any) -> SSEEvent:
    return SSEEvent(kind, json.dumps(data), str(data.get("event_cursor")))


def test_book_starts_at_the_oldest_wait_and_resumes_where_it_stopped() -> None:
    book = _watch._Book()
    assert book.start_from([9, 4, 6]) == 4 and book.coverage == 4
    book.read(_event("approval", approval_id="apr_a", status="approved", event_cursor=5), 4)
    book.read(_event("ready", event_cursor=8), 4)
    assert book.start_from([1]) == 8  # a reconnection resumes; it does not go back


def test_book_answers_from_what_it_saw_and_resyncs_what_it_cannot_vouch_for() -> None:
    book = _watch._Book()
    book.start_from([10])
    news = book.read(_event("approval", approval_id="apr_a", status="rejected", event_cursor=11), 10)
    assert news is not None and news.kind == "approval" and news.status["status"] == "rejected"
    assert book.lookup("apr_a", 10) == news.status  # settled before the wait registered: still found
    assert book.lookup("apr_b", 10) is None  # covered: wait for it
    assert book.lookup("apr_c", 9) is WatchSignal.RESYNC  # older than the stream's start


def test_book_ignores_pending_and_refuses_malformed_events() -> None:
    book = _watch._Book()
    book.start_from([0])
    assert book.read(_event("approval", approval_id="apr_a", status="pending", event_cursor=1), 0) is None
    assert book.read(SSEEvent("message", "{}"), 0) is None
    for bad in (SSEEvent("approval", "not json"), _event("approval", approval_id="apr_a", status="approved"),
                _event("approval", status="approved", event_cursor=2),
                _event("ready", event_cursor=-1), _event("ready", event_cursor=True)):
        with pytest.raises(ValueError):
            book.read(bad, 0)


def test_book_forgets_the_oldest_and_moves_its_coverage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watch, "SETTLED_MEMORY", 3)
    book = _watch._Book()
    book.start_from([0])
    for cursor in range(1, 6):
        book.read(_event("approval", approval_id=f"apr_{cursor}", status="approved", event_cursor=cursor), 0)
    assert list(book.settled) == ["apr_3", "apr_4", "apr_5"] and book.coverage == 2
    assert book.lookup("apr_1", 0) is WatchSignal.RESYNC and book.lookup("apr_9", 2) is None


def test_book_notices_a_gateway_that_lost_its_history() -> None:
    book = _watch._Book()
    book.start_from([50])
    book.read(_event("approval", approval_id="apr_a", status="approved", event_cursor=51), 50)
    news = book.read(_event("ready", event_cursor=3), 51)
    assert news is not None and news.kind == "reset"
    assert book.settled == {} and book.coverage == 3 and book.start_from([]) == 3


def test_book_gives_up_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(_watch.time, "monotonic", lambda: now[0])
    book = _watch._Book()
    book.start_from([0])
    book.give_up()
    assert book.lookup("apr_a", 0) is WatchSignal.UNAVAILABLE and book.position is None
    now[0] += _watch.COOLDOWN_SECONDS + 1
    assert book.lookup("apr_a", 0) is None


def test_deadline_is_the_sooner_of_timeout_and_expiry(clock: FakeClock) -> None:
    advertise(WATCHING)
    from datetime import datetime, timedelta, timezone

    soon = datetime.now(timezone.utc) + timedelta(seconds=5)
    run = _wait(clock, pending=PendingApproval(approval_id=APPROVAL, expires_at=soon, event_cursor=1))
    assert isinstance(run.step, WatchDecision) and run.step.seconds <= 5


def test_module_constants_match_the_protocol() -> None:
    assert _approval.LONG_POLL_SECONDS == 50
    assert _watch.WATCH_PATH == "/v1/approvals/events" and _watch.STREAM_READ_TIMEOUT > 3 * 10
