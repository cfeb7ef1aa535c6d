"""Many approval waits on one client against the emulator: one shared watch (protocol §4.4), its
fallbacks, and waits that never starve calls.

The scenarios a client meets on any gateway run against both profiles: ``ailink`` (the watch: one
stream for every wait) and ``real`` (no extension: each call is held until its decision, nothing is
ever sent to the watch's path, which the real gateway would proxy upstream).

Connections are counted from the client side: every answer names the local address of the
connection it came on, so the set of those per lane is the set of connections that lane used.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

import ailink
from ailink import AIlinkClient, AsyncClient
from ailink._flow import LANE_EXTENSION, POLL_LANE, WAIT_LANE
from ailink.adapters import CallContext, GatewayTool, ToolAction
from ailink.emulator import EmulatorHost
from ailink.emulator._profile import AILINK
from ailink.testing import EmulatorGateway, gateway_options, start_gateway

APPROVE_CHARGES = {
    "name": "charges-need-approval",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
               "then": {"action": "require_approval", "timeout": "10m"}}],
}
WATCH_PATH = "/v1/approvals/events"


@dataclass
class Traffic:
    """What a client sent: requests by path kind, and the connections each lane used."""

    requests: Counter[str] = field(default_factory=Counter)
    connections: dict[str, set[Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, request: httpx.Request) -> None:
        path = request.url.path
        kind = ("watch" if path == WATCH_PATH else "result" if path.endswith("/result")
                else "status" if path.startswith("/v1/approvals/") else f"{request.method} {path}")
        with self.lock:
            self.requests[kind] += 1

    def response(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        local = stream.get_extra_info("client_addr") if stream is not None else None
        lane = response.request.extensions.get(LANE_EXTENSION) or "calls"
        with self.lock:
            self.connections.setdefault(lane, set()).add(local)

    def hooks(self, asynchronous: bool) -> dict[str, list[Callable[..., Any]]]:
        if not asynchronous:
            return {"request": [self.request], "response": [self.response]}

        async def request(request: httpx.Request) -> None:
            self.request(request)

        async def response(response: httpx.Response) -> None:
            self.response(response)

        return {"request": [request], "response": [response]}


def _traced(client: AIlinkClient | AsyncClient) -> Traffic:
    traffic = Traffic()
    for name, hooks in traffic.hooks(isinstance(client, AsyncClient)).items():
        client._http.event_hooks[name].extend(hooks)
    return traffic


class BulkApprover:
    """A thread deciding every pending approval, a batch at a time, until ``count`` are decided."""

    def __init__(self, gateway: EmulatorGateway, count: int, decision: str = "approved") -> None:
        self.decided: list[str] = []
        self._gateway = gateway
        self._count = count
        self._decision = decision
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        bulk = self._gateway.serves_extensions  # the real gateway decides one approval per call
        while len(self.decided) < self._count:
            pending = self._gateway.pending_approvals()
            if pending and bulk:
                body = {"decisions": [{"id": p["id"], "decision": self._decision} for p in pending[:100]]}
                answer = self._gateway._call("POST", "/api/v1/approvals/decisions", json=body)
                self.decided += [r["id"] for r in answer["results"] if r["updated"]]
            for approval in pending if not bulk else ():
                if self._gateway.decide(approval["id"], self._decision)["updated"]:
                    self.decided.append(approval["id"])
            threading.Event().wait(0.05)

    def join(self) -> None:
        self._thread.join(60)
        assert len(self.decided) == self._count


def _charge(i: int) -> dict[str, Any]:
    return {"amount": 1000 + i, "currency": "usd"}


BOTH_PROFILES = pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)


def _pending_amounts(gateway: EmulatorGateway, count: int) -> dict[int, str]:
    """Once ``count`` approvals are pending (a held call names none to its caller): amount → approval id."""
    for _ in range(400):
        pending = gateway.pending_approvals()
        if len(pending) >= count:
            return {p["request"]["body_json"]["amount"]: p["id"] for p in pending}
        threading.Event().wait(0.05)
    raise AssertionError(f"{len(gateway.pending_approvals())} of {count} approvals became pending")


def _executed_once_each(gateway: EmulatorGateway, count: int) -> None:
    """``count`` charges ran, each once: by idempotency key where the gateway forwards it (the real
    gateway does not; there ``count`` charges for ``count`` distinct answered calls is once each)."""
    stats = gateway.payments_stats()
    assert stats["charges"] == count
    if gateway.serves_extensions:
        assert len(stats["by_idempotency_key"]) == count and set(stats["by_idempotency_key"].values()) == {1}


def _expect_traffic(traffic: Traffic, gateway: EmulatorGateway, count: int) -> None:
    """Per call the request and the result fetch, and the watch's stream opened once, on at most four
    connections; on the real gateway each call alone (held until decided), nothing else."""
    if gateway.serves_extensions:
        assert traffic.requests == Counter({"POST /v1/charges": count, "result": count, "watch": 1})
        assert len(traffic.connections[WAIT_LANE]) <= 4
    else:
        assert traffic.requests == Counter({"POST /v1/charges": count})
        assert set(traffic.connections) == {"calls"}


@BOTH_PROFILES
async def test_hundreds_of_async_waits_share_one_watch(ailink_gateway: EmulatorGateway) -> None:
    count = 200
    token = ailink_gateway.create_token(policies=[APPROVE_CHARGES])
    async with AsyncClient(token, ailink_gateway.url, approval_timeout=120) as client:
        traffic = _traced(client)
        approver = BulkApprover(ailink_gateway, count)
        answers = await asyncio.gather(*(client.post("/v1/charges", json=_charge(i), wait_for_approval=True)
                                         for i in range(count)))
        approver.join()
    assert [a.status_code for a in answers] == [200] * count
    assert sorted(a.json()["amount"] for a in answers) == [1000 + i for i in range(count)]
    _executed_once_each(ailink_gateway, count)
    _expect_traffic(traffic, ailink_gateway, count)


@BOTH_PROFILES
def test_hundreds_of_sync_tool_calls_in_threads_share_one_watch(ailink_gateway: EmulatorGateway) -> None:
    count = 100
    token = ailink_gateway.create_token(policies=[APPROVE_CHARGES])
    with AIlinkClient(token, ailink_gateway.url, approval_timeout=120) as client:
        traffic = _traced(client)
        tool = GatewayTool(ToolAction(name="payments_api", description="payments", methods=("POST",)), client=client)
        approver = BulkApprover(ailink_gateway, count)

        def call(i: int) -> ailink.ToolResult:
            return tool.run({"method": "POST", "path": "/v1/charges", "body": _charge(i)},
                            CallContext(session_id="threads", call_id=f"call-{i}"))

        with ThreadPoolExecutor(count) as pool:
            results = list(pool.map(call, range(count)))
        approver.join()
        watch_threads = [t for t in threading.enumerate() if t.name == "ailink-approval-watch"]
    assert all(r.ok and r.status_code == 200 for r in results), [r.content for r in results if not r.ok][:3]
    assert sorted(r.body["amount"] for r in results) == [1000 + i for i in range(count)]
    _executed_once_each(ailink_gateway, count)
    _expect_traffic(traffic, ailink_gateway, count)
    assert len(watch_threads) == (1 if ailink_gateway.serves_extensions else 0)


@BOTH_PROFILES
async def test_a_cancelled_wait_ends_without_withdrawing_and_the_watch_serves_the_rest(
    ailink_gateway: EmulatorGateway,
) -> None:
    token = ailink_gateway.create_token(policies=[APPROVE_CHARGES])
    async with AsyncClient(token, ailink_gateway.url, approval_timeout=120) as client:
        traffic = _traced(client)
        doomed = asyncio.create_task(client.post("/v1/charges", json=_charge(1), wait_for_approval=True))
        kept = asyncio.create_task(client.post("/v1/charges", json=_charge(2), wait_for_approval=True))
        ids = await asyncio.to_thread(_pending_amounts, ailink_gateway, 2)
        await asyncio.sleep(0.2)  # both waits are parked (on the watch, or held by the real gateway)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert not kept.done()
        pending = {p["id"] for p in ailink_gateway.pending_approvals()}
        assert pending == {ids[1001], ids[1002]}  # not withdrawn
        ailink_gateway.decide(ids[1002], "approved")
        assert (await kept).json()["amount"] == 1002
    assert traffic.requests["status"] == 0  # no withdrawal (nor any status read) of the cancelled one
    assert ailink_gateway.payments_stats()["charges"] == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_the_deadline_withdraws_and_fails_closed(ailink_gateway: EmulatorGateway, kind: str) -> None:
    token = ailink_gateway.create_token(policies=[APPROVE_CHARGES])
    if kind == "async":
        async with AsyncClient(token, ailink_gateway.url) as client:
            traffic = _traced(client)
            with pytest.raises(ailink.ApprovalTimeoutError) as caught:
                await client.post("/v1/charges", json=_charge(1), wait_for_approval=True, approval_timeout=1)
    else:
        with AIlinkClient(token, ailink_gateway.url) as sync_client:
            traffic = _traced(sync_client)
            with pytest.raises(ailink.ApprovalTimeoutError) as caught:
                await asyncio.to_thread(sync_client.post, "/v1/charges", json=_charge(1), wait_for_approval=True,
                                        approval_timeout=1)
    assert not caught.value.ambiguous and "not performed" in str(caught.value)
    rows = ailink_gateway.admin.approvals.list()
    assert [r["status"] for r in rows] == ["cancelled"]
    assert traffic.requests["status"] == 1  # the withdrawal; no status polls while watching
    assert ailink_gateway.payments_stats()["charges"] == 0


async def test_rejection_arrives_through_the_watch(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[APPROVE_CHARGES])

    async with AsyncClient(token, ailink_gateway.url) as client:
        traffic = _traced(client)

        def reject(pending: ailink.PendingApproval) -> None:
            # decided before the wait registers with the watch: the stream's catch-up carries it
            ailink_gateway.decide(pending.approval_id, "rejected", "too large")

        with pytest.raises(ailink.ApprovalRejectedError) as caught:
            await client.post("/v1/charges", json=_charge(1), wait_for_approval=True, on_pending=reject)
    assert caught.value.reason == "too large"
    assert traffic.requests == Counter({"POST /v1/charges": 1, "watch": 1})


@BOTH_PROFILES
async def test_an_approval_that_expires_fails_closed(ailink_gateway: EmulatorGateway) -> None:
    """The gateway's own expiry ends the wait as timed out, not performed: the client's deadline is
    the approval's expiry on the watch; the real gateway answers the held call 408 itself."""
    token = ailink_gateway.create_token(policies=[{**APPROVE_CHARGES, "rules": [{
        **APPROVE_CHARGES["rules"][0], "then": {"action": "require_approval", "timeout": "1s"}}]}])
    async with AsyncClient(token, ailink_gateway.url) as client:
        with pytest.raises(ailink.ApprovalTimeoutError) as caught:
            await client.post("/v1/charges", json=_charge(1), wait_for_approval=True, approval_timeout=30)
    assert not caught.value.ambiguous
    assert [r["status"] for r in ailink_gateway.approvals()] == ["expired"]
    assert ailink_gateway.payments_stats()["charges"] == 0


@pytest.fixture
def gateway_without_watch(ailink_emulator_host: EmulatorHost) -> Iterator[EmulatorGateway]:
    """An emulator with every extension but the approval watch."""
    profile = replace(AILINK, name="no-watch", extensions=("respond-async", "outcome-store"), approvals_watch=False)
    gateway, stop = start_gateway(host=ailink_emulator_host, profile=profile)
    try:
        yield gateway
    finally:
        stop()


async def test_without_the_watch_waits_long_poll_on_their_own_lane(gateway_without_watch: EmulatorGateway) -> None:
    count = 20
    token = gateway_without_watch.create_token(policies=[APPROVE_CHARGES])
    async with AsyncClient(token, gateway_without_watch.url) as client:
        traffic = _traced(client)
        approver = BulkApprover(gateway_without_watch, count)
        answers = await asyncio.gather(*(client.post("/v1/charges", json=_charge(i), wait_for_approval=True)
                                         for i in range(count)))
        approver.join()
    assert [a.status_code for a in answers] == [200] * count
    assert traffic.requests["watch"] == 0 and traffic.requests["status"] >= count
    assert POLL_LANE in traffic.connections and "calls" in traffic.connections
    assert not traffic.connections[POLL_LANE] & traffic.connections["calls"]  # separate connections


class RefusingWatch(httpx.AsyncBaseTransport):
    """A real transport, except that the approval-event stream answers 503 every time."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == WATCH_PATH:
            self.refused += 1
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "no", "type": "x"}})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_watch_that_cannot_open_falls_back_to_long_polls(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[APPROVE_CHARGES])
    transport = RefusingWatch()
    async with AsyncClient(token, ailink_gateway.url, transport=transport) as client:
        traffic = _traced(client)
        approver = BulkApprover(ailink_gateway, 3)
        answers = await asyncio.gather(*(client.post("/v1/charges", json=_charge(i), wait_for_approval=True)
                                         for i in range(3)))
        approver.join()
    assert [a.status_code for a in answers] == [200] * 3
    assert transport.refused == 4  # the first attempt and three more, then the waits fell back
    assert traffic.requests["status"] >= 3


@pytest.mark.parametrize("profile", ["ailink", "real"])
async def test_losing_the_gateway_while_watching_is_outcome_unknown(ailink_emulator_host: EmulatorHost,
                                                                    profile: str) -> None:
    gateway, stop = start_gateway(host=ailink_emulator_host, **gateway_options(profile))
    try:
        token = gateway.create_token(policies=[APPROVE_CHARGES])
        async with AsyncClient(token, gateway.url, retries=0) as client:
            wait = asyncio.create_task(client.post("/v1/charges", json=_charge(1), wait_for_approval=True))
            await asyncio.to_thread(_pending_amounts, gateway, 1)
            await asyncio.sleep(0.2)  # the watch's stream is open (or the call is held)
            await asyncio.to_thread(gateway.running.stop)
            with pytest.raises(ailink.AIlinkError) as caught:
                await wait
    finally:
        stop()
    assert caught.value.ambiguous  # the decision, and so the charge, is unknown to this client
    if profile == "ailink":
        assert "wait_for_approval" in str(caught.value)


async def test_waits_never_starve_calls_and_no_free_connection_is_no_outcome(
    gateway_without_watch: EmulatorGateway,
) -> None:
    """105 long polls on a lane of 100 connections: the 5 without one wait until their deadline and
    end as timed out (withdrawn, not performed), never as an error; a call meanwhile does not queue."""
    count = 105
    token = gateway_without_watch.create_token(policies=[APPROVE_CHARGES])
    async with AsyncClient(token, gateway_without_watch.url, approval_timeout=6) as client:
        traffic = _traced(client)
        waits = [asyncio.create_task(client.post("/v1/charges", json=_charge(i), wait_for_approval=True))
                 for i in range(count)]
        while traffic.requests["status"] < 100:  # the long polls are out
            await asyncio.sleep(0.05)
        answer = await client.get("/v1/customers")  # not gated: a call on the same client
        waits_done = sum(w.done() for w in waits)
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
    assert answer.status_code == 200 and waits_done == 0  # served while every wait was still waiting
    assert all(isinstance(o, ailink.ApprovalTimeoutError) and not o.ambiguous for o in outcomes), {
        type(o).__name__ for o in outcomes}
    rows = gateway_without_watch.admin.approvals.list()
    assert Counter(r["status"] for r in rows) == Counter({"cancelled": count})
    assert gateway_without_watch.payments_stats()["charges"] == 0
