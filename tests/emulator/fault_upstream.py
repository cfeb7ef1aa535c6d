"""A loopback upstream that counts every request it receives and misbehaves on command.

It does NOT deduplicate by idempotency key: every request that reaches it is an execution, so a
test can count exactly how often an action happened. The request path picks the behaviour:

* ``/ok...``: 200 JSON; ``/status/<code>``: that status with a JSON body;
* ``/lookalike-401``: a 401 whose body looks like a gateway error (``token_not_found``);
* ``/flaky/<n>/...``: 503 for the first ``n`` requests to that path, then 200;
* ``/hang...``: reads the request and never answers (until the server closes);
* ``/reset...``: the head and part of the body, then a TCP reset;
* ``/close...``: closes the connection without answering;
* ``/sse``: a complete event stream; ``/sse-cut``: two events, then a reset;
  ``/sse-slow``: forty events 0.2 s apart.

``refuse()`` stops listening (connections are refused) and ``listen()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hit:
    method: str
    target: str
    key: str | None
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class FaultUpstream:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-upstream", daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._released: asyncio.Event | None = None
        self._per_path: Counter[str] = Counter()
        self.port = 0
        self._call(self._listen(0))

    # ------------------------------------------------------------------ control (from the test thread)
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, path: str | None = None, key: str | None = None) -> int:
        with self._lock:
            return sum(1 for h in self.hits if (path is None or h.path == path) and (key is None or h.key == key))

    def refuse(self) -> None:
        """Stop listening: new connections are refused until :meth:`listen`."""
        self._call(self._stop_listening())

    def listen(self) -> None:
        self._call(self._listen(self.port))

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ------------------------------------------------------------------ server (on its own loop)
    async def _listen(self, port: int) -> None:
        if self._released is None:
            self._released = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _shutdown(self) -> None:
        assert self._released is not None
        self._released.set()
        await self._stop_listening()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            hit = Hit(method, target, headers.get("idempotency-key"), body)
            with self._lock:
                self.hits.append(hit)
                self._per_path[hit.path] += 1
                seen = self._per_path[hit.path]
            await self._behave(hit, seen, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()

    async def _behave(self, hit: Hit, seen: int, writer: asyncio.StreamWriter) -> None:
        path = hit.path
        parts = path.strip("/").split("/")
        if path.startswith("/hang"):
            assert self._released is not None
            await self._released.wait()
        elif path.startswith("/reset"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"par")
            await writer.drain()
            _reset(writer)
        elif path.startswith("/close"):
            writer.close()
        elif path == "/lookalike-401":
            _answer(writer, 401, {"error": {"code": "token_not_found", "type": "authentication_error",
                                            "message": "Invalid API key", "request_id": "req_" + "0" * 32}})
        elif path.startswith("/status/"):
            _answer(writer, int(parts[1]), {"error": {"message": "upstream says no", "type": "upstream"}})
        elif path.startswith("/flaky/"):
            if seen <= int(parts[1]):
                _answer(writer, 503, {"error": {"message": "try later", "type": "unavailable"}})
            else:
                _answer(writer, 200, {"ok": True, "attempt": seen})
        elif path.startswith("/sse"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                         b"connection: close\r\n\r\n")
            events = 40 if path == "/sse-slow" else 3
            for i in range(events):
                data = f"data: {{\"i\": {i}}}\n\n".encode()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                if path == "/sse-cut" and i == 1:
                    _reset(writer)
                    return
                if path == "/sse-slow":
                    await asyncio.sleep(0.2)
            writer.write(b"0\r\n\r\n")
        else:
            _answer(writer, 200, {"ok": True, "path": path, "method": hit.method,
                                  "body": hit.body.decode("utf-8", "replace")})
        if not writer.transport.is_closing():
            await writer.drain()


def _answer(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                 f"connection: close\r\n\r\n".encode() + body)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
