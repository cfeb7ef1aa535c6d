"""Protocol §4: the approval wait state machine on both drivers, with a simulated gateway and clock."""

from __future__ import annotations

import asyncio
import inspect
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

import ailink
from ailink import _approval, _client, _extensions
from ailink._approval import ApprovalStatus

from .helpers import GATEWAY, TOKEN, Driver, FakeClock, advertise, fast_retry, gateway_error, pending_answer

APPROVAL = "apr_7f3a"
STORED = {"id": "ch_1", "amount": 1200}


@pytest.fixture(autouse=True)
def _gateway_with_approval_endpoints(_unknown_gateways: None) -> None:
    """These scenarios are about a gateway that serves ``/v1/approvals/{id}`` (``respond-async``)."""
    advertise("respond-async")


@dataclass
class ApprovalGateway:
    """A gateway holding one approval, on a fake clock.

    ``decide_at`` is the (fake) time the reviewer decides; ``long_poll`` says whether
    ``?wait=N`` polls are held; ``latency`` is how long an answer that is not held takes.
    """

    clock: FakeClock
    decision: str = "approved"
    decide_at: float | None = None
    long_poll: bool = True
    latency: float = 0.01
    poll_retry_after: str | None = None
    expires_at: str | None = None
    reason: str | None = "looks fine"
    poll_expires_at: str | None = None
    result_answers: list[httpx.Response] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    withdrawn: bool = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        path = request.url.path
        if request.method == "DELETE" and path == f"/v1/approvals/{APPROVAL}":
            self.clock.advance(self.latency)
            if self.decided:
                return httpx.Response(200, json={"approval_id": APPROVAL, "status": self.decision, "updated": False})
            self.withdrawn = True
            self.decide_at = None
            return httpx.Response(200, json={"approval_id": APPROVAL, "status": "cancelled", "updated": True})
        if path == "/v1/charges":
            self.clock.advance(self.latency)
            return pending_answer(APPROVAL, expires_at=self.expires_at)
        if path == f"/v1/approvals/{APPROVAL}/result":
            self.clock.advance(self.latency)
            assert self.decided, "the result was fetched before a decision"
            if self.result_answers:
                return self.result_answers.pop(0)
            return httpx.Response(200, json=STORED, headers={"Idempotent-Replayed": "true",
                                                             "X-AIlink-Approval-Id": APPROVAL})
        assert path == f"/v1/approvals/{APPROVAL}", path
        wait = float(request.url.params.get("wait", "0"))
        if not self.decided and self.long_poll and wait > 0:
            if self.decide_at is not None and self.decide_at <= self.clock.now + wait:
                self.clock.now = self.decide_at  # answered as soon as the status leaves pending
            else:
                self.clock.advance(wait)
        else:
            self.clock.advance(self.latency)
        if not self.decided:
            headers = {"Retry-After": self.poll_retry_after} if self.poll_retry_after else {}
            return httpx.Response(200, headers=headers, json={"approval_id": APPROVAL, "status": "pending",
                                                              "expires_at": self.poll_expires_at})
        return httpx.Response(200, json={"approval_id": APPROVAL, "status": self.decision, "reason": self.reason,
                                         "decided_at": "2026-11-22T10:00:00Z", "result_url": "/result"})

    @property
    def decided(self) -> bool:
        return self.decide_at is not None and self.clock.now >= self.decide_at

    @property
    def polls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET" and r.url.path == f"/v1/approvals/{APPROVAL}"]

    def client(self, driver: Driver, **options: Any) -> Any:
        recorder_like = _Wrap(self)
        return driver.client(recorder_like, **options)  # type: ignore[arg-type]


class _Wrap:
    def __init__(self, handler: Any) -> None:
        self.transport = httpx.MockTransport(handler)


# -- endings --------------------------------------------------------------------------------


async def test_approved_result_is_fetched(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 12)
    client = gateway.client(driver)
    result = await driver.wait(client, APPROVAL, timeout=60)
    assert result.approved and result.status is ApprovalStatus.APPROVED
    assert result.reason == "looks fine" and result.decided_at
    assert result.response is not None and result.response.json() == STORED
    assert result.response.headers["idempotent-replayed"] == "true"
    assert result.raise_for_status() is result.response
    assert [r.url.path for r in gateway.requests][-1].endswith("/result")


async def test_post_wait_for_approval_returns_the_stored_response(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 3)
    seen: list[ailink.PendingApproval] = []
    client = gateway.client(driver)
    response = await driver.call(client, "POST", "/v1/charges", json={"amount": 1200},
                                 wait_for_approval=True, approval_timeout=60, on_pending=seen.append)
    assert response.status_code == 200 and response.json() == STORED
    assert response.headers["idempotent-replayed"] == "true"
    assert len(seen) == 1
    assert seen[0].approval_id == APPROVAL and seen[0].policy == "charges-need-approval"
    assert seen[0].summary == {"method": "POST", "path": "/v1/charges"}
    assert gateway.requests[0].headers["prefer"] == "respond-async"


async def test_post_without_wait_returns_the_202(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock)
    client = gateway.client(driver)
    response = await driver.call(client, "POST", "/v1/charges", json={})
    assert response.status_code == 202
    assert response.json()["request_id"] == APPROVAL
    assert len(gateway.requests) == 1


async def test_async_on_pending_hook_is_awaited_once(clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 70)
    calls: list[str] = []

    async def hook(pending: ailink.PendingApproval) -> None:
        await asyncio.sleep(0)
        calls.append(pending.approval_id)

    client = gateway.client(Driver("async"))
    response = await client.post("/v1/charges", json={}, wait_for_approval=True, on_pending=hook)
    assert response.status_code == 200
    assert calls == [APPROVAL]


async def test_on_pending_fires_once_for_wait_for_approval(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 130)
    seen: list[ailink.PendingApproval] = []
    client = gateway.client(driver)
    await driver.wait(client, APPROVAL, timeout=300, on_pending=seen.append)
    assert [p.approval_id for p in seen] == [APPROVAL]
    assert len(gateway.polls) >= 3  # several polls, one hook call


@pytest.mark.parametrize(
    ("decision", "status", "error"),
    [("rejected", ApprovalStatus.REJECTED, ailink.ApprovalRejectedError),
     ("cancelled", ApprovalStatus.CANCELLED, ailink.ApprovalRejectedError),
     ("expired", ApprovalStatus.EXPIRED, ailink.ApprovalTimeoutError)],
)
async def test_non_approved_endings(
    driver: Driver, clock: FakeClock, decision: str, status: ApprovalStatus, error: type[ailink.AIlinkError]
) -> None:
    gateway = ApprovalGateway(clock, decision=decision, decide_at=clock.now + 5, reason="too large")
    client = gateway.client(driver)
    result = await driver.wait(client, APPROVAL, timeout=60)
    assert result.status is status and not result.approved
    assert result.response is None
    assert not any(r.url.path.endswith("/result") for r in gateway.requests)
    with pytest.raises(error) as info:
        result.raise_for_status()
    assert info.value.approval_id == APPROVAL  # type: ignore[attr-defined]

    gateway2 = ApprovalGateway(clock, decision=decision, decide_at=clock.now + 5, reason="too large")
    client2 = gateway2.client(driver)
    with pytest.raises(error) as raised:
        await driver.call(client2, "POST", "/v1/charges", json={}, wait_for_approval=True)
    assert raised.value.approval_id == APPROVAL  # type: ignore[attr-defined]
    if error is ailink.ApprovalRejectedError:
        assert raised.value.reason == "too large"  # type: ignore[attr-defined]


async def test_approved_upstream_error_is_replayed_and_raised(driver: Driver, clock: FakeClock) -> None:
    stored = httpx.Response(402, json={"error": {"message": "card declined", "type": "card_error"}},
                            headers={"Idempotent-Replayed": "true"})
    gateway = ApprovalGateway(clock, decide_at=clock.now + 1, result_answers=[stored])
    client = gateway.client(driver)
    with pytest.raises(ailink.UpstreamError) as info:
        await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True)
    assert info.value.status_code == 402


async def test_result_still_pending_is_asked_again(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 1,
                              result_answers=[gateway_error(409, "approval_pending")])
    client = gateway.client(driver)
    result = await driver.wait(client, APPROVAL, timeout=60)
    assert result.approved and result.response is not None and result.response.json() == STORED
    assert len(gateway.requests) <= 6


# -- deadlines ------------------------------------------------------------------------------


async def test_deadline_raises_timeout_never_approval(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=None)
    client = gateway.client(driver)
    start = clock.now
    with pytest.raises(ailink.ApprovalTimeoutError) as info:
        await driver.wait(client, APPROVAL, timeout=30)
    assert info.value.approval_id == APPROVAL
    assert info.value.timeout == 30
    assert 30 <= clock.now - start <= 30.5
    assert not any(r.url.path.endswith("/result") for r in gateway.requests)


async def test_decision_after_the_deadline_is_not_an_approval(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 31)
    client = gateway.client(driver)
    with pytest.raises(ailink.ApprovalTimeoutError):
        await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True, approval_timeout=30)
    assert not any(r.url.path.endswith("/result") for r in gateway.requests)


async def test_deadline_is_min_of_timeout_and_expires_at(driver: Driver, clock: FakeClock) -> None:
    expires = (datetime.now(timezone.utc) + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    gateway = ApprovalGateway(clock, decide_at=None, expires_at=expires)
    client = gateway.client(driver)
    start = clock.now
    with pytest.raises(ailink.ApprovalTimeoutError):
        await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True, approval_timeout=300)
    assert 18 <= clock.now - start <= 21
    # and the caller's timeout when it is the shorter one
    gateway2 = ApprovalGateway(clock, decide_at=None, expires_at=expires)
    start = clock.now
    with pytest.raises(ailink.ApprovalTimeoutError):
        await driver.call(gateway2.client(driver), "POST", "/v1/charges", json={}, wait_for_approval=True,
                          approval_timeout=5)
    assert 5 <= clock.now - start <= 5.5


async def test_expiry_told_by_a_status_poll_bounds_a_wait_started_from_an_id(
    driver: Driver, clock: FakeClock
) -> None:
    expires = (datetime.now(timezone.utc) + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    gateway = ApprovalGateway(clock, decide_at=None, poll_expires_at=expires)
    start = clock.now
    with pytest.raises(ailink.ApprovalTimeoutError) as caught:
        await driver.wait(gateway.client(driver), APPROVAL, timeout=300)
    assert 18 <= clock.now - start <= 21  # the approval's expiry, not the 300 s timeout
    assert "after 2" in str(caught.value) and "300 s timeout" in str(caught.value)


async def test_already_expired_pending_times_out_without_polling(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=None, expires_at="2001-01-01T00:00:00Z")
    with pytest.raises(ailink.ApprovalTimeoutError):
        await driver.call(gateway.client(driver), "POST", "/v1/charges", json={}, wait_for_approval=True)
    assert gateway.polls == []


# -- long poll, fallback and request budget -------------------------------------------------


@pytest.mark.parametrize("decide_after", [0.3, 10, 49.5, 50, 51, 120, 260])
async def test_request_budget_with_long_polling(driver: Driver, clock: FakeClock, decide_after: float) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + decide_after)
    client = gateway.client(driver)
    result = await driver.wait(client, APPROVAL, timeout=600)
    assert result.approved
    assert clock.now - gateway.decide_at <= 0.5  # type: ignore[operator]
    assert len(gateway.requests) <= math.ceil(decide_after / 50) + 2
    assert "wait" not in gateway.polls[0].url.params  # a wait from a bare id first reads the status once
    assert all(r.url.params["wait"] for r in gateway.polls[1:])
    assert max(int(r.url.params["wait"]) for r in gateway.polls[1:]) <= 50
    assert clock.sleeps == []


async def test_long_poll_unsupported_falls_back_to_backoff(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 60, long_poll=False)
    client = gateway.client(driver)
    result = await driver.wait(client, APPROVAL, timeout=300)
    assert result.approved
    # a status read, one long poll the gateway answers at once, then plain polls with backoff
    assert "wait" not in gateway.polls[0].url.params and "wait" in gateway.polls[1].url.params
    assert all("wait" not in r.url.params for r in gateway.polls[2:])
    # 1 s doubling to a 10 s cap, with jitter
    expected = [min(10, 2**i) for i in range(len(clock.sleeps))]
    assert len(expected) >= 5
    for slept, base in zip(clock.sleeps, expected, strict=True):
        assert base * 0.8 <= slept <= min(10, base * 1.2)
    assert clock.now - gateway.decide_at <= 12.5  # type: ignore[operator]
    assert len(gateway.polls) <= 13


async def test_fallback_honours_retry_after(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 30, long_poll=False, poll_retry_after="5")
    client = gateway.client(driver)
    result = await driver.wait(client, APPROVAL, timeout=300)
    assert result.approved
    assert clock.sleeps and all(s >= 5 for s in clock.sleeps)


async def test_retry_after_of_the_202_is_honoured_by_the_first_fallback_sleep(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 30, long_poll=False)
    client = gateway.client(driver)  # the 202 carries Retry-After: 2
    await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True)
    assert clock.sleeps[0] >= 2


@pytest.mark.parametrize("timeout", [0.5, 1.0, 1.9, 3.0])
async def test_short_timeout_against_a_gateway_that_does_not_hold(
    driver: Driver, clock: FakeClock, timeout: float
) -> None:
    """Even with less than two seconds left, a gateway that answers at once is not hammered."""
    gateway = ApprovalGateway(clock, decide_at=None, long_poll=False)
    client = gateway.client(driver)
    with pytest.raises(ailink.ApprovalTimeoutError):
        await driver.wait(client, APPROVAL, timeout=timeout)
    assert len(gateway.polls) <= 4


# -- protocol errors --------------------------------------------------------------------------


async def test_unknown_approval_is_not_found(driver: Driver, clock: FakeClock) -> None:
    recorder = _Wrap(lambda r: gateway_error(404, "approval_not_found", "Approval not found"))
    client = driver.client(recorder)  # type: ignore[arg-type]
    with pytest.raises(ailink.NotFoundError):
        await driver.wait(client, "apr_unknown", timeout=10)


@pytest.mark.parametrize(
    "answer",
    [lambda: httpx.Response(200, text="not json"), lambda: httpx.Response(200, json=["x"]),
     lambda: httpx.Response(200, json={"status": "weird"})],
    ids=["text", "list", "unknown-status"],
)
async def test_malformed_poll_answers(driver: Driver, clock: FakeClock, answer: Any) -> None:
    client = driver.client(_Wrap(lambda r: answer()))  # type: ignore[arg-type]
    with pytest.raises(ailink.MalformedResponseError):
        await driver.wait(client, APPROVAL, timeout=10)


async def test_202_without_approval_id_is_malformed(driver: Driver, clock: FakeClock) -> None:
    answer = httpx.Response(202, json={"status": "pending_approval"})
    client = driver.client(_Wrap(lambda r: answer))  # type: ignore[arg-type]
    with pytest.raises(ailink.MalformedResponseError):
        await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True)


async def test_poll_retries_transient_errors(driver: Driver, clock: FakeClock) -> None:
    gateway = ApprovalGateway(clock, decide_at=clock.now + 1)
    answers: list[Any] = [gateway_error(503, "all_upstreams_exhausted"), httpx.ConnectError("reset")]

    def handler(request: httpx.Request) -> httpx.Response:
        if answers and request.url.path == f"/v1/approvals/{APPROVAL}":
            item = answers.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        return gateway(request)

    client = driver.client(_Wrap(handler), retries=fast_retry(2))  # type: ignore[arg-type]
    result = await driver.wait(client, APPROVAL, timeout=60)
    assert result.approved


async def test_approval_id_is_quoted_in_the_poll_path(driver: Driver, clock: FakeClock) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"status": "rejected"})

    client = driver.client(_Wrap(handler))  # type: ignore[arg-type]
    result = await driver.wait(client, "../admin?x=1", timeout=10)
    assert result.status is ApprovalStatus.REJECTED
    assert seen[0].startswith("/v1/approvals/..%2Fadmin%3Fx%3D1")


# -- cancellation ---------------------------------------------------------------------------


async def test_cancelling_a_long_poll_ends_promptly_and_leaks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    flows: list[Any] = []
    original = _approval.wait_for_decision

    def recording(*args: Any, **kwargs: Any) -> Any:
        flow = original(*args, **kwargs)
        flows.append(flow)
        return flow

    monkeypatch.setattr(_approval, "wait_for_decision", recording)
    in_poll = asyncio.Event()
    never = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/charges":
            return pending_answer(APPROVAL)
        assert request.url.params["wait"] == "50"
        in_poll.set()
        await never.wait()  # a long poll the gateway holds
        raise AssertionError("unreachable")

    before = asyncio.all_tasks()
    client = ailink.AsyncClient(TOKEN, GATEWAY, transport=httpx.MockTransport(handler))
    task = asyncio.create_task(client.post("/v1/charges", json={}, wait_for_approval=True, approval_timeout=300))
    await asyncio.wait_for(in_poll.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()
    assert len(flows) == 1 and inspect.getgeneratorstate(flows[0]) == inspect.GEN_CLOSED
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    await client.aclose()


def test_keyboard_interrupt_during_a_sync_wait_closes_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    flows: list[Any] = []
    original = _client.wait_for_decision

    def recording(*args: Any, **kwargs: Any) -> Any:
        flows.append(original(*args, **kwargs))
        return flows[-1]

    monkeypatch.setattr(_client, "wait_for_decision", recording)

    def handler(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    client = ailink.AIlinkClient(TOKEN, GATEWAY, transport=httpx.MockTransport(handler))
    with pytest.raises(KeyboardInterrupt):
        client.wait_for_approval(APPROVAL, timeout=60)
    assert inspect.getgeneratorstate(flows[0]) == inspect.GEN_CLOSED


async def test_cancellation_does_not_withdraw_the_approval(monkeypatch: pytest.MonkeyPatch) -> None:
    methods: list[str] = []
    in_poll = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        in_poll.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client = ailink.AsyncClient(TOKEN, GATEWAY, transport=httpx.MockTransport(handler))
    task = asyncio.create_task(client.wait_for_approval(APPROVAL, timeout=100))
    await asyncio.wait_for(in_poll.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert methods == ["GET"]


async def test_withdraw_approval(driver: Driver) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"approval_id": APPROVAL, "status": "cancelled"})

    client = driver.client(_Wrap(handler))  # type: ignore[arg-type]
    if driver.kind == "sync":
        client.withdraw_approval(APPROVAL)
    else:
        await client.withdraw_approval(APPROVAL)
    assert seen == [f"DELETE /v1/approvals/{APPROVAL}"]


# -- blocking mode --------------------------------------------------------------------------


async def test_blocking_mode_request_shape(driver: Driver) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = driver.client(_Wrap(handler), approval_mode="blocking", approval_timeout=600, timeout=30)  # type: ignore[arg-type]
    await driver.call(client, "POST", "/v1/charges", json={})
    await driver.call(client, "POST", "/v1/charges", json={}, approval_timeout=900)
    first, second = seen
    assert "prefer" not in first.headers
    assert first.extensions["timeout"]["read"] > 600
    assert second.extensions["timeout"]["read"] > 900
    assert first.extensions["timeout"]["connect"] <= 30


@pytest.mark.parametrize(
    ("answer", "error"),
    [(lambda: gateway_error(403, "approval_rejected", "Request was rejected by a reviewer."),
      ailink.ApprovalRejectedError),
     (lambda: gateway_error(408, "approval_timeout", "timed out"), ailink.ApprovalTimeoutError)],
    ids=["403", "408"],
)
async def test_blocking_mode_typed_errors_not_retried(
    driver: Driver, answer: Any, error: type[ailink.AIlinkError]
) -> None:
    count: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        count.append(1)
        return answer()  # type: ignore[no-any-return]

    client = driver.client(_Wrap(handler), approval_mode="blocking", retries=fast_retry(3))  # type: ignore[arg-type]
    with pytest.raises(error):
        await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True)
    assert len(count) == 1


async def test_async_mode_read_timeout_follows_what_the_gateway_advertises(driver: Driver) -> None:
    """Until the gateway says it answers 202, a call that may need approval may be held open (the
    real gateway holds it): its read timeout is above the approval timeout. Once the gateway
    advertises ``respond-async``, the plain timeout applies."""
    _extensions.forget()  # a gateway this process has not heard from yet
    seen: list[httpx.Request] = []
    advertises = httpx.Response(200, headers={"X-AIlink-Extensions": "respond-async, outcome-store"})
    client = driver.client(_Wrap(lambda r: seen.append(r) or advertises), timeout=7, approval_timeout=60)  # type: ignore[arg-type]
    await driver.call(client, "POST", "/v1/charges", json={})
    await driver.call(client, "POST", "/v1/charges", json={})
    assert [r.headers["prefer"] for r in seen] == ["respond-async", "respond-async"]
    assert [r.extensions["timeout"]["read"] for r in seen] == [90, 7]


async def test_a_gateway_that_stops_advertising_is_treated_as_the_real_one(driver: Driver) -> None:
    _extensions.forget()  # a gateway this process has not heard from yet
    seen: list[httpx.Request] = []
    answers = [httpx.Response(200, headers={"X-AIlink-Extensions": "respond-async"}), httpx.Response(200)]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0) if answers else httpx.Response(200)

    client = driver.client(_Wrap(answer), timeout=7, approval_timeout=60)  # type: ignore[arg-type]
    for _ in range(3):
        await driver.call(client, "POST", "/v1/charges", json={})
    assert [r.extensions["timeout"]["read"] for r in seen] == [90, 7, 90]


def test_pending_approval_helpers() -> None:
    pending = ailink.PendingApproval.from_response(pending_answer("apr_x", expires_at="2030-01-01T00:00:00Z"))
    assert pending.approval_id == "apr_x" and pending.retry_after == 2
    assert pending.expires_at == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert pending.to_dict()["expires_at"] == "2030-01-01T00:00:00+00:00"
    assert "POST /v1/charges" in pending.describe() and "charges-need-approval" in pending.describe()


async def test_a_trickling_gateway_cannot_stretch_an_approval_wait(driver: Driver, clock: FakeClock) -> None:
    """Status polls whose answers trickle in a byte per second end with the wait's deadline."""

    def trickle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/charges":
            return pending_answer(APPROVAL)
        if request.method == "DELETE":
            return httpx.Response(200, json={"approval_id": APPROVAL, "status": "cancelled"})

        def body() -> Any:
            for _ in range(10_000):
                clock.advance(1.0)
                yield b" "

        return httpx.Response(200, stream=_IterStream(body()))

    start = clock.now
    client = driver.client(_Wrap(trickle), timeout=30, retries=fast_retry(0))  # type: ignore[arg-type]
    with pytest.raises(ailink.AIlinkError):
        await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True, approval_timeout=4)
    assert clock.now - start <= 10  # the 4 s wait plus one poll's margin, not 30 s per poll or 10,000 s


class _IterStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks

    def __iter__(self) -> Any:
        return self._chunks

    async def __aiter__(self) -> Any:
        for chunk in self._chunks:
            yield chunk


async def test_no_approval_endpoints_on_a_gateway_without_respond_async(driver: Driver) -> None:
    """On the real gateway ``/v1/approvals/...`` would be proxied to the upstream: the client asks the
    gateway once what it supports (``/healthz``) and then sends nothing there."""
    _extensions.forget()
    seen: list[httpx.Request] = []

    def real_gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")  # no X-AIlink-Extensions: the real gateway

    client = driver.client(_Wrap(real_gateway))  # type: ignore[arg-type]
    with pytest.raises(ailink.NotFoundError) as waited:
        await driver.wait(client, APPROVAL, timeout=5)
    if driver.kind == "sync":
        with pytest.raises(ailink.NotFoundError) as withdrawn:
            client.withdraw_approval(APPROVAL)
    else:
        with pytest.raises(ailink.NotFoundError) as withdrawn:
            await client.withdraw_approval(APPROVAL)
    assert [f"{r.method} {r.url.path}" for r in seen] == ["GET /healthz"]  # asked once, then remembered
    for caught in (waited, withdrawn):
        assert caught.value.code == "approval_endpoints_unavailable"
        assert APPROVAL in str(caught.value) and "idempotency key" in str(caught.value)
        assert TOKEN not in str(caught.value)


async def test_a_gateway_first_heard_through_the_probe_serves_the_wait(driver: Driver, clock: FakeClock) -> None:
    """A wait started from a bare id (e.g. after a restart) on a gateway with the endpoints works."""
    _extensions.forget()
    gateway = ApprovalGateway(clock, decide_at=clock.now + 3)

    def with_probe(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, text="ok", headers={"X-AIlink-Extensions": "respond-async, outcome-store"})
        return gateway(request)

    client = driver.client(_Wrap(with_probe))  # type: ignore[arg-type]
    result = await driver.wait(client, APPROVAL, timeout=60)
    assert result.approved and result.response is not None and result.response.json() == STORED


def test_management_answers_do_not_unlearn_the_extensions() -> None:
    """The management API never carries ``X-AIlink-Extensions``: an admin call between a 202 and the
    wait must not make the client take the gateway for one without approval endpoints."""
    _extensions.forget()
    advertise("respond-async")
    bare = httpx.Response(200, json=[], request=httpx.Request("GET", GATEWAY + "/api/v1/approvals"))
    _extensions.remember(bare)
    assert _extensions.supports(GATEWAY, _extensions.RESPOND_ASYNC)
    plain = httpx.Response(200, request=httpx.Request("GET", GATEWAY + "/v1/customers"))
    _extensions.remember(plain)  # a data-plane answer without the header: a gateway without extensions
    assert not _extensions.supports(GATEWAY, _extensions.RESPOND_ASYNC) and _extensions.known(GATEWAY)
