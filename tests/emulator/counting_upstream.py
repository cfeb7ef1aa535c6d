"""A loopback upstream for routing tests: counts every request, answers as told, can be slowed or held.

It does NOT deduplicate: every request that reaches it is an execution. ``status`` and ``delay`` may
be changed between requests; ``hold()`` makes requests wait until ``release()``; ``refuse()`` stops
listening (connections are refused) and ``listen()`` listens again on the same port. Every answer
is JSON: ``{"served_by": name, "path", "model", "n"}`` plus an OpenAI-style ``usage`` for chat paths
(``usage_tokens`` prompt and completion tokens each), so metering prices it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def model(self) -> str | None:
        try:
            doc = json.loads(self.body or b"null")
        except ValueError:
            return None
        return doc.get("model") if isinstance(doc, dict) else None


class CountingUpstream:
    def __init__(self, name: str, *, status: int = 200, delay: float = 0.0, usage_tokens: int = 0) -> None:
        self.name = name
        self.status = status
        self.delay = delay
        self.usage_tokens = usage_tokens
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"upstream-{name}", daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._gate: asyncio.Event | None = None
        self.port = 0
        self._call(self._listen(0))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, *, key: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self.seen if key is None or s.key == key)

    def hold(self) -> None:
        self._call(self._set_gate(False))

    def release(self) -> None:
        self._call(self._set_gate(True))

    def refuse(self) -> None:
        self._call(self._stop())

    def listen(self) -> None:
        self._call(self._listen(self.port))

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _set_gate(self, open_: bool) -> None:
        if self._gate is None:
            self._gate = asyncio.Event()
        if open_:
            self._gate.set()
        else:
            self._gate = asyncio.Event()

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _shutdown(self) -> None:
        if self._gate is not None:
            self._gate.set()
        await self._stop()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                seen = Seen(method, target.split("?", 1)[0], headers, body)
                with self._lock:
                    self.seen.append(seen)
                    n = len(self.seen)
                if self._gate is not None:
                    await self._gate.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                payload: dict[str, Any] = {"served_by": self.name, "path": seen.path, "model": seen.model, "n": n}
                if self.usage_tokens and seen.path.endswith("/chat/completions") and self.status < 300:
                    payload["usage"] = {"prompt_tokens": self.usage_tokens, "completion_tokens": self.usage_tokens,
                                        "total_tokens": 2 * self.usage_tokens}
                data = json.dumps(payload).encode()
                writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-type: application/json\r\n"
                             f"content-length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError,
                asyncio.CancelledError):  # cancelled: the server is shutting down
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()
