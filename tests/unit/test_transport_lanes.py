"""Connection lanes of the clients' transport: requests queue for a slot before the pool, honour
their pool timeout (``None``: as long as it takes), give the slot back when the answer is closed,
and a lane of many connections is split into pools of a few."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from ailink import _transport
from ailink._config import ClientConfig
from ailink._flow import LANE_EXTENSION, POLL_LANE, WAIT_LANE
from ailink._transport import TracingTransport

from .helpers import GATEWAY, TOKEN


def _request(pool: float | None, lane: str | None = None) -> httpx.Request:
    request = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY).build_request("GET", "/v1/x", may_hold=False,
                                                                             lane=lane, pool_timeout=pool)
    if pool is None:
        request.extensions["timeout"]["pool"] = None
    return request


class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body read from the network, as a real pool answers (a mock's ready-made body is read and
    closed before anyone sees it)."""

    def __iter__(self) -> Any:
        yield b"{}"

    async def __aiter__(self) -> Any:
        yield b"{}"


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=_Body())


def _one_slot_gate(asynchronous: bool) -> Any:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    gate = (_transport._AsyncGatedTransport if asynchronous else _transport._GatedTransport)(limits, True)
    gate._pools = [httpx.MockTransport(_answer)]
    return gate


def test_sync_gate_waits_for_a_slot_or_times_out() -> None:
    gate = _one_slot_gate(asynchronous=False)
    held = gate.handle_request(_request(1.0))  # its answer stays open: the slot stays taken
    with pytest.raises(httpx.PoolTimeout):
        gate.handle_request(_request(0.05))
    waited: list[httpx.Response] = []
    waiter = threading.Thread(target=lambda: waited.append(gate.handle_request(_request(None))))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not waited  # no pool timeout: it waits, it does not fail
    held.close()
    waiter.join(5)
    assert len(waited) == 1 and waited[0].status_code == 200
    waited[0].close()
    waited[0].close()  # closing twice gives the slot back once
    assert gate._slots._value == 1


async def test_async_gate_waits_for_a_slot_or_times_out() -> None:
    gate = _one_slot_gate(asynchronous=True)
    held = await gate.handle_async_request(_request(1.0))
    with pytest.raises(httpx.PoolTimeout):
        await gate.handle_async_request(_request(0.05))
    waiting = asyncio.ensure_future(gate.handle_async_request(_request(None)))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await held.aclose()
    answer = await asyncio.wait_for(waiting, 5)
    await answer.aclose()
    await answer.aclose()
    assert gate._slots._value == 1


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    gate = _one_slot_gate(asynchronous=True)
    held = await gate.handle_async_request(_request(1.0))
    waiting = asyncio.ensure_future(gate.handle_async_request(_request(None)))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await held.aclose()
    assert gate._slots._value == 1


def test_a_failed_send_gives_the_slot_back() -> None:
    gate = _one_slot_gate(asynchronous=False)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gate._pools = [httpx.MockTransport(refuse)]
    for _ in range(3):
        with pytest.raises(httpx.ConnectError):
            gate.handle_request(_request(0.05))
    assert gate._slots._value == 1


def test_lanes_of_many_connections_are_split_into_small_pools() -> None:
    shards = _transport._Shards(httpx.Limits(max_connections=100))
    assert (shards.count, shards.limits.max_connections, shards.limit) == (20, 5, 100)
    taken = [shards.take() for _ in range(100)]
    assert sorted(taken.count(i) for i in range(20)) == [5] * 20  # never more than a pool holds
    shards.give_back(3)
    assert shards.take() == 3
    small = _transport._Shards(httpx.Limits(max_connections=4))
    assert (small.count, small.limits.max_connections) == (1, 4)
    assert [small.take() for _ in range(2)] == [0, 0]  # a quiet client reuses the same pool


def test_the_transport_keeps_one_gate_per_lane() -> None:
    transport = TracingTransport()
    calls = transport._sync_transport(None)
    waits = transport._sync_transport(WAIT_LANE)
    polls = transport._sync_transport(POLL_LANE)
    assert len({id(calls), id(waits), id(polls)}) == 3
    assert transport._sync_transport(WAIT_LANE) is waits
    assert waits._shards.limit == 4 and calls._shards.limit == 100 and polls._shards.limit == 100
    assert _transport.lane_of(_request(1.0, WAIT_LANE)) == WAIT_LANE
    unknown = _request(1.0)
    unknown.extensions[LANE_EXTENSION] = "express"
    assert _transport.lane_of(unknown) is None  # unknown lanes go with the calls
    transport.close()


def test_a_given_transport_serves_every_lane() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions.get(LANE_EXTENSION))
        return httpx.Response(200)

    transport = TracingTransport(sync_transport=httpx.MockTransport(handler))
    for lane in (None, WAIT_LANE, POLL_LANE):
        transport.handle_request(_request(1.0, lane)).close()
    assert seen == [None, WAIT_LANE, POLL_LANE] and transport._sync_lanes == {}


def test_the_waits_lane_has_no_pool_timeout_by_default() -> None:
    config = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, timeout=7)
    assert config.build_request("GET", "/v1/x", lane=WAIT_LANE).extensions["timeout"]["pool"] is None
    assert config.build_request("GET", "/v1/x").extensions["timeout"]["pool"] == 7
    assert config.build_request("GET", "/v1/x", lane=POLL_LANE, pool_timeout=1.0).extensions["timeout"]["pool"] == 1.0


def test_one_tls_context_per_process() -> None:
    assert _transport.ssl_context() is _transport.ssl_context()
    assert _transport.ssl_context(False) is not _transport.ssl_context(True)
