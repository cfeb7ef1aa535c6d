"""The approval watch of a client (protocol §4.4, §10.12): one event stream per gateway and token,
shared by every approval wait of the client, instead of one long poll per wait.

A wait (the :class:`~ailink._flow.WatchDecision` step of the one wait state machine in
``_approval``) registers its approval id with the cursor the gateway gave with the pending state,
and gets the approval's status when it settles; the result fetch follows in the wait itself. The
async watcher runs one task per event loop, the sync watcher one thread; both keep the same book
(:class:`_Book`), so the rules are written once:

* the stream starts at the smallest cursor among the waits, resumes from the last cursor it saw
  when a connection drops, and stays open while waits remain (and :data:`LINGER_SECONDS` after);
* settlements seen recently are remembered, so a wait that registers after its decision went by
  still gets it; a wait whose cursor the stream cannot vouch for gets ``RESYNC`` (it reads the
  approval's status once and watches from the cursor that answer gives);
* a stream that cannot be opened again after a few attempts, or that the gateway refuses, answers
  ``UNAVAILABLE`` to every wait: each falls back to the per-approval long poll, whose own rules
  (lost contact → outcome unknown) then apply. New waits fall back at once for
  :data:`COOLDOWN_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import httpx

from ailink import _extensions
from ailink._flow import WAIT_LANE, WatchDecision, WatchSignal, is_event_stream
from ailink._llm import SSEDecoder, SSEEvent
from ailink._logs import logger

if TYPE_CHECKING:
    from ailink._config import ClientConfig

WATCH_PATH = "/v1/approvals/events"
#: The gateway writes at least a comment every 10 s (§10.12): a stream silent for longer is dead.
STREAM_READ_TIMEOUT = 35.0
#: Pauses before each new attempt after a stream ended or failed; then the watch gives up.
RECONNECT_DELAYS = (0.1, 0.5, 2.0)
#: After giving up, new waits use the per-approval long poll at once for this long.
COOLDOWN_SECONDS = 10.0
#: Settlements remembered (a wait registering late still finds its decision).
SETTLED_MEMORY = 20_000
#: The stream stays open this long after the last wait ended (the next wait finds it open).
LINGER_SECONDS = 30.0

#: What a watch answers a wait: the status object, nothing yet, or a signal.
Answer = Union[dict[str, Any], WatchSignal, None]  # noqa: UP007 - a runtime alias must work on Python 3.10


@dataclass(frozen=True)
class _News:
    """What one event meant: ``approval`` (settled: ``approval_id``, ``status``), ``ready`` (the
    stream is live) or ``reset`` (the gateway's sequence went back: it restarted without its history)."""

    kind: str
    approval_id: str = ""
    status: dict[str, Any] = field(default_factory=dict)


class _Refused(Exception):
    """The gateway answered the watch with something other than an event stream, for good."""


@dataclass
class _Book:
    """What a watcher knows; no I/O (both watchers keep one)."""

    #: Every settlement with a larger cursor has been or will be seen (None: no stream yet).
    coverage: int | None = None
    #: Where the next connection resumes (the newest cursor seen, or the one asked for).
    position: int | None = None
    settled: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    unavailable_until: float = 0.0

    def lookup(self, approval_id: str, cursor: int) -> Answer:
        """The answer a wait gets without waiting, if any."""
        known = self.settled.get(approval_id)
        if known is not None:
            return known
        if time.monotonic() < self.unavailable_until:
            return WatchSignal.UNAVAILABLE
        if self.coverage is not None and cursor < self.coverage:
            return WatchSignal.RESYNC
        return None

    def start_from(self, cursors: Iterable[int]) -> int:
        """The cursor a (re)connection asks for: where the last one stopped, else the oldest wait's."""
        if self.position is None:
            self.position = min(cursors, default=0)
            self.coverage = self.position
        return self.position

    def read(self, event: SSEEvent, asked: int) -> _News | None:
        """Take in one event of a stream that asked for cursors after ``asked`` (None: nothing to tell)."""
        if event.event not in ("approval", "ready"):
            return None
        data = json.loads(event.data)
        cursor = data.get("event_cursor") if isinstance(data, dict) else None
        if not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0:
            raise ValueError("an approval watch event without a cursor")
        if event.event == "ready":
            if cursor < asked:
                self.settled.clear()
                self.coverage = self.position = cursor
                return _News("reset")
            self.position = max(self.position or 0, cursor)
            return _News("ready")
        approval_id, status = data.get("approval_id"), data.get("status")
        if not isinstance(approval_id, str) or not isinstance(status, str):
            raise ValueError("an approval watch event without an approval id and status")
        self.position = max(self.position or 0, cursor)
        if status == "pending":
            return None
        self.settled[approval_id] = data
        self.settled.move_to_end(approval_id)
        while len(self.settled) > SETTLED_MEMORY:
            _, forgotten = self.settled.popitem(last=False)
            self.coverage = max(self.coverage or 0, int(forgotten["event_cursor"]))
        return _News("approval", approval_id, data)

    def give_up(self) -> None:
        self.coverage = self.position = None
        self.unavailable_until = time.monotonic() + COOLDOWN_SECONDS


def _stream_request(config: ClientConfig, after: int) -> httpx.Request:
    return config.build_request("GET", WATCH_PATH, params={"after": after}, may_hold=False,
                                read_timeout=STREAM_READ_TIMEOUT, lane=WAIT_LANE)


def _check_answer(response: httpx.Response) -> None:
    _extensions.remember(response)
    if response.status_code == 200 and is_event_stream(response):
        return
    if response.status_code == 429 or response.status_code >= 500:
        raise httpx.RemoteProtocolError(f"approval watch answered HTTP {response.status_code}")
    raise _Refused(f"HTTP {response.status_code}")


_FAILURES = (httpx.TransportError, httpx.DecodingError, ValueError)


class _AsyncWatcher:
    """The watch of one async client, gateway and token, on one event loop."""

    def __init__(self, http: httpx.AsyncClient, config: ClientConfig) -> None:
        self._http = http
        self._config = config
        self._book = _Book()
        self._waiters: dict[str, list[asyncio.Future[Answer]]] = {}
        self._cursors: dict[asyncio.Future[Answer], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None

    async def wait(self, step: WatchDecision) -> Answer:
        known = self._book.lookup(step.approval_id, step.cursor)
        if known is not None:
            return known
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._waiters.setdefault(step.approval_id, []).append(future)
        self._cursors[future] = step.cursor
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._task is None or self._task.done():
            # the stream serves every wait: it must not carry the trace context of the one that started it
            self._task = contextvars.Context().run(loop.create_task, self._run())
        try:
            return await asyncio.wait_for(future, step.seconds)
        except asyncio.TimeoutError:
            return None
        finally:
            self._leave(step.approval_id, future, loop)

    def _leave(self, approval_id: str, future: asyncio.Future[Answer], loop: asyncio.AbstractEventLoop) -> None:
        self._cursors.pop(future, None)
        futures = self._waiters.get(approval_id)
        if futures is not None:
            if future in futures:
                futures.remove(future)
            if not futures:
                del self._waiters[approval_id]
        if not self._waiters and self._task is not None and self._idle is None:
            self._idle = loop.call_later(LINGER_SECONDS, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        self._idle = None
        if not self._waiters and self._task is not None:
            self._task.cancel()

    def _answer_all(self, answer: Answer) -> None:
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(answer)

    def _deliver(self, news: _News | None) -> bool:
        """Hand ``news`` to the waits; True when the stream is live (ready)."""
        if news is None:
            return False
        if news.kind == "approval":
            for future in self._waiters.get(news.approval_id, ()):
                if not future.done():
                    future.set_result(news.status)
            return False
        if news.kind == "reset":
            self._answer_all(WatchSignal.RESYNC)
        return True

    async def _run(self) -> None:
        failures = 0
        try:
            while True:
                asked = self._book.start_from(self._cursors.values())
                try:
                    response = await self._http.send(_stream_request(self._config, asked), stream=True)
                    try:
                        _check_answer(response)
                        decoder = SSEDecoder()
                        async for chunk in response.aiter_bytes():
                            for event in decoder.feed(chunk):
                                if self._deliver(self._book.read(event, asked)):
                                    failures = 0
                    finally:
                        await response.aclose()
                except _FAILURES as exc:
                    logger.debug("approval watch: stream ended (%s)", type(exc).__name__)
                failures += 1
                if failures > len(RECONNECT_DELAYS):
                    raise _Refused(f"{failures} attempts")
                await asyncio.sleep(RECONNECT_DELAYS[failures - 1])
        except _Refused as exc:
            logger.info("approval watch unavailable (%s): waits use the per-approval long poll", exc)
            self._book.give_up()
            self._answer_all(WatchSignal.UNAVAILABLE)
        except asyncio.CancelledError:
            self._answer_all(WatchSignal.UNAVAILABLE)
            raise
        except Exception:  # a bug here must not leave waits hanging
            logger.exception("approval watch failed")
            self._book.give_up()
            self._answer_all(WatchSignal.UNAVAILABLE)

    def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._task is not None:
            self._task.cancel()


@dataclass
class _Slot:
    """One sync wait: its thread sleeps on ``ready`` until the watch thread fills ``answer``."""

    cursor: int
    ready: threading.Event = field(default_factory=threading.Event)
    answer: Answer = None

    def fill(self, answer: Answer) -> None:
        if not self.ready.is_set():
            self.answer = answer
            self.ready.set()


class _SyncWatcher:
    """The watch of one sync client, gateway and token: one background thread reads the stream."""

    def __init__(self, http: httpx.Client, config: ClientConfig) -> None:
        self._http = http
        self._config = config
        self._book = _Book()
        self._lock = threading.Lock()
        self._waiters: dict[str, list[_Slot]] = {}
        self._thread: threading.Thread | None = None
        self._idle_since: float | None = None
        self._closed = False

    def wait(self, step: WatchDecision) -> Answer:
        with self._lock:
            known = self._book.lookup(step.approval_id, step.cursor)
            if known is not None:
                return known
            slot = _Slot(step.cursor)
            self._waiters.setdefault(step.approval_id, []).append(slot)
            self._idle_since = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ailink-approval-watch", daemon=True)
                self._thread.start()
        try:
            return slot.answer if slot.ready.wait(step.seconds) else None
        finally:
            with self._lock:
                slots = self._waiters.get(step.approval_id)
                if slots is not None and slot in slots:
                    slots.remove(slot)
                    if not slots:
                        del self._waiters[step.approval_id]
                if not self._waiters:
                    self._idle_since = time.monotonic()

    def _stop_now(self) -> bool:
        """True when the thread should end (closed, or idle long enough); called with the lock held."""
        idle = self._idle_since is not None and time.monotonic() - self._idle_since > LINGER_SECONDS
        if self._closed or (idle and not self._waiters):
            self._thread = None
            return True
        return False

    def _answer_all(self, answer: Answer) -> None:
        for slots in self._waiters.values():
            for slot in slots:
                slot.fill(answer)

    def _deliver(self, news: _News | None) -> bool:
        """Hand ``news`` to the waits (lock held); True when the stream is live (ready)."""
        if news is None:
            return False
        if news.kind == "approval":
            for slot in self._waiters.get(news.approval_id, ()):
                slot.fill(news.status)
            return False
        if news.kind == "reset":
            self._answer_all(WatchSignal.RESYNC)
        return True

    def _run(self) -> None:
        failures = 0
        try:
            while True:
                with self._lock:
                    if self._stop_now():
                        return
                    asked = self._book.start_from(s.cursor for slots in self._waiters.values() for s in slots)
                try:
                    response = self._http.send(_stream_request(self._config, asked), stream=True)
                    try:
                        _check_answer(response)
                        decoder = SSEDecoder()
                        for chunk in response.iter_bytes():
                            with self._lock:
                                for event in decoder.feed(chunk):
                                    if self._deliver(self._book.read(event, asked)):
                                        failures = 0
                                if self._stop_now():
                                    return
                    finally:
                        response.close()
                except _FAILURES as exc:
                    logger.debug("approval watch: stream ended (%s)", type(exc).__name__)
                failures += 1
                if failures > len(RECONNECT_DELAYS):
                    raise _Refused(f"{failures} attempts")
                time.sleep(RECONNECT_DELAYS[failures - 1])
        except _Refused as exc:
            logger.info("approval watch unavailable (%s): waits use the per-approval long poll", exc)
            self._give_up()
        except Exception:  # a bug here, or the client closed under the stream: waits must not hang
            if not self._closed:
                logger.exception("approval watch failed")
            self._give_up()

    def _give_up(self) -> None:
        with self._lock:
            self._book.give_up()
            self._answer_all(WatchSignal.UNAVAILABLE)
            self._thread = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._answer_all(WatchSignal.UNAVAILABLE)


# One watcher per (HTTP client[, event loop], gateway, token); they go with their client and loop.
_WatcherKey = tuple[str, str]
_sync_watchers: weakref.WeakKeyDictionary[httpx.Client, dict[_WatcherKey, _SyncWatcher]] = (
    weakref.WeakKeyDictionary())
_async_watchers: weakref.WeakKeyDictionary[
    httpx.AsyncClient, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_WatcherKey, _AsyncWatcher]]
] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _key(config: ClientConfig) -> _WatcherKey:
    return (config.gateway_url, config.api_key or "")


def watch_sync(http: httpx.Client, step: WatchDecision) -> Answer:
    """Perform a :class:`WatchDecision` step with the watcher of ``http`` (blocking the calling thread)."""
    with _registry_lock:
        watchers = _sync_watchers.setdefault(http, {})
        watcher = watchers.get(_key(step.config))
        if watcher is None:
            watcher = watchers[_key(step.config)] = _SyncWatcher(http, step.config)
    return watcher.wait(step)


async def watch_async(http: httpx.AsyncClient, step: WatchDecision) -> Answer:
    """Perform a :class:`WatchDecision` step with the watcher of ``http`` on the running event loop."""
    by_loop = _async_watchers.get(http)
    if by_loop is None:
        by_loop = _async_watchers[http] = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    watchers = by_loop.get(loop)
    if watchers is None:
        watchers = by_loop[loop] = {}
    watcher = watchers.get(_key(step.config))
    if watcher is None:
        watcher = watchers[_key(step.config)] = _AsyncWatcher(http, step.config)
    return await watcher.wait(step)


def close_watchers(http: httpx.Client | httpx.AsyncClient) -> None:
    """Stop the watchers of ``http`` (its client is closing); their waits fall back."""
    if isinstance(http, httpx.AsyncClient):
        for watchers in list((_async_watchers.pop(http, None) or {}).values()):
            for watcher in watchers.values():
                watcher.close()
        return
    with _registry_lock:
        sync_watchers = _sync_watchers.pop(http, None) or {}
    for sync_watcher in sync_watchers.values():
        sync_watcher.close()
