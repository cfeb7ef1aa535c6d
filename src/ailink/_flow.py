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
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, Union

import httpx

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Send ``request``; the flow receives the ``httpx.Response`` or gets the transport error thrown in."""

    request: httpx.Request
    stream: bool = False


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (cancellable: Ctrl-C or task cancellation ends the flow promptly)."""

    seconds: float


@dataclass(frozen=True)
class Notify:
    """Call a user hook with ``payload``; an awaitable result is awaited by the async driver."""

    hook: Callable[[Any], Any]
    payload: Any


Step = Union[Send, Sleep, Notify]  # noqa: UP007 - a runtime alias must work on Python 3.10
Flow = Generator[Step, Any, T]


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
            else:
                try:
                    response = client.send(step.request, stream=step.stream)
                    if step.stream and response.status_code >= 300:
                        response.read()
                        response.close()
                except httpx.TransportError as exc:
                    step = flow.throw(exc)
                    continue
                step = flow.send(response)
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
            else:
                try:
                    response = await client.send(step.request, stream=step.stream)
                    if step.stream and response.status_code >= 300:
                        await response.aread()
                        await response.aclose()
                except httpx.TransportError as exc:
                    step = flow.throw(exc)
                    continue
                step = flow.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


def monotonic() -> float:
    """The clock flows use (replaceable in tests)."""
    return time.monotonic()
