"""Sans-I/O flows and their two drivers.

A flow is a generator that yields *steps* (send this request, sleep this long, call this hook)
and receives their results. All decisions (retries, approval waits, outcome mapping) live in
flows, written once; :func:`run_sync` and :func:`run_async` only perform the steps, as httpx
does for its auth flows.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar, Union

import httpx

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Send ``request``; the flow receives the ``httpx.Response`` or gets the transport error thrown in.

    With ``stream``, an event-stream answer (200 ``text/event-stream``) is handed over with its
    body unread (the caller reads and closes it); every other answer is read whole, as without.
    """

    request: httpx.Request
    stream: bool = False


def is_event_stream(response: httpx.Response) -> bool:
    """True for a successful server-sent-events answer (``200 text/event-stream``)."""
    return response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream")


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (cancellable: Ctrl-C or task cancellation ends the flow promptly)."""

    seconds: float


@dataclass(frozen=True)
class Notify:
    """Call a user hook with ``payload``; an awaitable result is awaited by the async driver."""

    hook: Callable[[Any], Any]
    payload: Any


@dataclass(frozen=True)
class WatchDecision:
    """Wait up to ``seconds`` for approval ``approval_id`` to leave ``pending``, through the approval
    watcher the client shares among all its waits (protocol §4.4). ``cursor`` is the ``event_cursor``
    the gateway gave with the pending state; ``config`` (a ``ClientConfig``) says which gateway and token.

    The flow receives the approval's status object when it settled, ``None`` when it is still pending
    after ``seconds``, or a :class:`WatchSignal`.
    """

    config: Any
    approval_id: str
    cursor: int
    seconds: float


class WatchSignal(Enum):
    """What a :class:`WatchDecision` step answers instead of a status."""

    #: The client has no watch for this gateway now: wait with the per-approval long poll instead.
    UNAVAILABLE = "unavailable"
    #: The watch cannot vouch for this cursor (it started later, or the gateway's sequence restarted):
    #: read the approval's status once and watch from the cursor that answer gives.
    RESYNC = "resync"


Step = Union[Send, Sleep, Notify, WatchDecision]  # noqa: UP007 - a runtime alias must work on Python 3.10
#: What a driver throws into a flow when a request failed: the network, or an undecodable answer.
SEND_FAILURES = (httpx.TransportError, httpx.DecodingError)
Flow = Generator[Step, Any, T]


#: Request extension: seconds the whole answer body may take once its headers arrived.
BODY_TIMEOUT_EXTENSION = "ailink_body_timeout"
#: Request extension naming the connection pool ("lane") a request is sent on. Approval waits have
#: lanes of their own, so proxied and LLM calls never queue behind them (nor they behind calls).
LANE_EXTENSION = "ailink_lane"
#: Approval status peeks, result fetches, withdrawals and the approval watch's stream.
WAIT_LANE = "wait"
#: Per-approval long polls, on gateways without the approval watch.
POLL_LANE = "poll"


def _body_seconds(request: httpx.Request) -> float | None:
    """How long the body may take after the headers (a held request waits for its headers, not
    for its body): the client's timeout, else the request's read timeout."""
    value = request.extensions.get(BODY_TIMEOUT_EXTENSION)
    if value is None:
        timeout = request.extensions.get("timeout")
        value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


class _Deadline:
    """Ends the reading of a body that arrives too slowly: per-read timeouts alone let a peer
    trickle a byte at a time forever."""

    def __init__(self, request: httpx.Request, seconds: float) -> None:
        self.request = request
        self.at = monotonic() + seconds
        self.seconds = seconds

    def check(self) -> None:
        if monotonic() > self.at:
            raise httpx.ReadTimeout(f"the answer took longer than {self.seconds:g} s", request=self.request)


class _SyncDeadlineStream(httpx.SyncByteStream):
    def __init__(self, stream: Any, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._deadline.check()
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _AsyncDeadlineStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._deadline.check()
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


def send_sync(client: httpx.Client, step: Send) -> httpx.Response:
    """Send one request; a buffered answer's body is read whole within the body deadline."""
    request = step.request
    response = client.send(request, stream=True)
    seconds = _body_seconds(request)
    deadline = _Deadline(request, seconds) if seconds is not None else None
    try:
        if not (step.stream and is_event_stream(response)):
            if deadline is not None:
                response.stream = _SyncDeadlineStream(response.stream, deadline)
            response.read()
            response.close()
    except BaseException:
        response.close()
        raise
    return response


async def send_async(client: httpx.AsyncClient, step: Send) -> httpx.Response:
    """The async twin of :func:`send_sync`."""
    request = step.request
    response = await client.send(request, stream=True)
    seconds = _body_seconds(request)
    deadline = _Deadline(request, seconds) if seconds is not None else None
    try:
        if not (step.stream and is_event_stream(response)):
            if deadline is not None:
                response.stream = _AsyncDeadlineStream(response.stream, deadline)
            await response.aread()
            await response.aclose()
    except BaseException:
        await response.aclose()
        raise
    return response


def run_sync(flow: Flow[T], client: httpx.Client) -> T:
    """Drive ``flow`` with blocking I/O."""
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                time.sleep(max(0.0, step.seconds))
                step = flow.send(None)
            elif isinstance(step, Notify):
                step = flow.send(step.hook(step.payload))
            elif isinstance(step, WatchDecision):
                from ailink._watch import watch_sync

                step = flow.send(watch_sync(client, step))
            else:
                try:
                    response = send_sync(client, step)
                except SEND_FAILURES as exc:
                    step = flow.throw(exc)
                    continue
                step = flow.send(response)
                del response  # not kept while the flow waits (a client may hold thousands of waits)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


async def run_async(flow: Flow[T], client: httpx.AsyncClient) -> T:
    """Drive ``flow`` with asyncio I/O."""
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                await asyncio.sleep(max(0.0, step.seconds))
                step = flow.send(None)
            elif isinstance(step, Notify):
                result = step.hook(step.payload)
                if inspect.isawaitable(result):
                    result = await result
                step = flow.send(result)
            elif isinstance(step, WatchDecision):
                from ailink._watch import watch_async

                step = flow.send(await watch_async(client, step))
            else:
                try:
                    response = await send_async(client, step)
                except SEND_FAILURES as exc:
                    step = flow.throw(exc)
                    continue
                step = flow.send(response)
                del response  # not kept while the flow waits (a client may hold thousands of waits)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


def monotonic() -> float:
    """The clock flows use (replaceable in tests)."""
    return time.monotonic()
