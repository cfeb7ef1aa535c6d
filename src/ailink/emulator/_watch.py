"""The approval watch [ext] (protocol §4.4, §10.12): one event stream carries the settlements of
every approval of the calling token, so a client with thousands of waits needs one connection.

``GET /v1/approvals/events?after=<cursor>`` (virtual-token auth; ``Last-Event-ID`` when ``after`` is
absent) answers ``text/event-stream``:

* one ``event: approval`` per approval of this token settled after ``after`` (approved, rejected,
  expired, cancelled), oldest first; its ``id`` is the settlement's cursor and its data the status
  object of ``GET /v1/approvals/{id}`` with that cursor as ``event_cursor``;
* then ``event: ready`` with ``{"event_cursor": N}``: everything up to N has been sent (live from here);
* then every later settlement as it happens, and a ``: keep-alive`` comment when idle.

Settlements are numbered by the store (``approvals.settled_seq``); the 202 answer and the status
object carry ``event_cursor``, the newest number when they were written, so a client knows where
its watch must start. Settlements reach open streams through a queue per stream: nothing polls the
database per wait.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

if TYPE_CHECKING:
    from ._app import Emulator

#: A comment line is sent after this many idle seconds, so either side notices a dead connection.
HEARTBEAT_SECONDS = 10.0
#: Catch-up rows read per query.
CATCH_UP_PAGE = 1000
#: Settlements a stream may fall behind by before it is closed (the client resumes from its cursor).
QUEUE_LIMIT = 100_000
#: Events written in one chunk when many settle at once (bulk decisions).
BATCH = 500
_MAX_CURSOR_DIGITS = 18
_CLOSE: dict[str, Any] = {}


class ApprovalWatch:
    """The open approval-event streams, by token, and the endpoint serving them."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._streams: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._closing = False

    @property
    def open_streams(self) -> int:
        return sum(len(queues) for queues in self._streams.values())

    def settled(self, row: dict[str, Any]) -> None:
        """Hand a settled approval to the streams of its token (never blocks)."""
        queues = self._streams.get(row["token_ref"])
        if not queues:
            return
        for queue in list(queues):
            if queue.qsize() >= QUEUE_LIMIT:
                queues.discard(queue)  # a reader this far behind resumes from its cursor instead
                queue.put_nowait(_CLOSE)
            else:
                queue.put_nowait(row)

    def close_all(self) -> None:
        """End every stream and refuse new ones (503): the server is stopping, and it would wait for
        open answers to finish first."""
        self._closing = True
        for queues in self._streams.values():
            for queue in queues:
                queue.put_nowait(_CLOSE)
        self._streams.clear()

    def _event(self, row: dict[str, Any]) -> bytes:
        data = {**self.emu.approval_status(row), "event_cursor": row["settled_seq"]}
        return f"id: {row['settled_seq']}\nevent: approval\ndata: {json.dumps(data)}\n\n".encode()

    async def endpoint(self, request: Request) -> Response:
        from ._app import GatewayError, new_request_id

        rid = request.state.request_id = new_request_id()
        token = self.emu.auth_token(request)
        if self._closing:
            raise GatewayError(503, "shutting_down", "The gateway is stopping", headers={"retry-after": "1"})
        raw = request.query_params.get("after") or request.headers.get("last-event-id") or "0"
        if not raw.isdigit() or len(raw) > _MAX_CURSOR_DIGITS:
            raise GatewayError(422, "validation_error", "after must be an event cursor (a non-negative integer)")
        token_ref = token["ref"]

        async def events() -> AsyncIterator[bytes]:
            # Registered and caught up in one step of the event loop: every settlement is either in the
            # catch-up (cursor <= current) or in the queue (cursor > current), never in both or neither.
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self._streams.setdefault(token_ref, set()).add(queue)
            current = self.emu.store.settled_seq
            try:
                after = int(raw)
                while after < current:
                    rows = [r for r in self.emu.store.settled_since(token_ref, after, CATCH_UP_PAGE)
                            if r["settled_seq"] <= current]
                    if not rows:
                        break
                    yield b"".join(self._event(r) for r in rows)
                    after = rows[-1]["settled_seq"]
                yield f"event: ready\ndata: {json.dumps({'event_cursor': current})}\n\n".encode()
                while True:
                    try:
                        row = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    batch = [row]
                    while len(batch) < BATCH and not queue.empty():
                        batch.append(queue.get_nowait())
                    chunk = b"".join(self._event(r) for r in batch if r is not _CLOSE)
                    if chunk:
                        yield chunk
                    if any(r is _CLOSE for r in batch):
                        return
            finally:
                queues = self._streams.get(token_ref)
                if queues is not None:
                    queues.discard(queue)
                    if not queues:
                        self._streams.pop(token_ref, None)

        return StreamingResponse(events(), media_type="text/event-stream", headers={
            "cache-control": "no-store", "x-accel-buffering": "no", "x-request-id": rid,
        })


__all__ = ["HEARTBEAT_SECONDS", "ApprovalWatch"]
