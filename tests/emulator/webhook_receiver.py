"""A loopback HTTP server that receives webhook deliveries, answering as a test scripts it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> str:
        return self.headers.get("x-ailink-event") or self.headers.get("x-trueflow-event", "")


@dataclass
class WebhookReceiver:
    """Records every POST. ``statuses`` are answered in order (then 200); while ``gate`` is clear,
    answers are held (the sender is kept waiting)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Delivery] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, status))
                    receiver._arrived.notify_all()
                receiver.gate.wait(30)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, *, event: str | None = None, timeout: float = 15.0) -> list[Delivery]:
        """The deliveries (of ``event``) once at least ``count`` arrived; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                got = [d for d in self.received if event is None or d.event == event]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} deliveries of {event or 'any event'}, got "
                                         f"{[d.event for d in self.received]}")
                self._arrived.wait(left)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
