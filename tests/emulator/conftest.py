"""Shared helpers for the emulator tests: a tiny slow/streaming upstream and request helpers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from ailink.emulator import EmulatorHost
from ailink.testing import EmulatorGateway, start_gateway

from .fault_upstream import FaultUpstream


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: list[str]

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/sse"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for i in range(3):
                data = f"data: {{\"i\": {i}, \"t\": {time.time()}}}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                time.sleep(0.3)
            self.wfile.write(b"0\r\n\r\n")
            return
        delay = 2.0 if self.path.startswith("/slow") else 0.0
        if self.path.startswith("/pause"):
            delay = 0.6
        time.sleep(delay)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def slow_upstream() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server: /slow (2 s), /pause (0.6 s), /sse (3 events 0.3 s apart), else fast."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.hits  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fault_upstream() -> Iterator[FaultUpstream]:
    """A counting upstream that misbehaves on command (see ``fault_upstream.py``)."""
    upstream = FaultUpstream()
    try:
        yield upstream
    finally:
        upstream.close()


@pytest.fixture
def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fast_timeout_gateway(ailink_emulator_host: EmulatorHost) -> Iterator[EmulatorGateway]:
    gateway, stop = start_gateway(host=ailink_emulator_host, upstream_timeout=0.5)
    try:
        yield gateway
    finally:
        stop()


@dataclass
class RawAnswer:
    status: int
    head: bytes
    body: bytes


def send_raw(url: str, method: str, target: bytes, *, headers: bytes = b"", body: bytes = b"") -> RawAnswer:
    """One request sent byte for byte over a socket (httpx would normalise the path first)."""
    host, port = url.rsplit("/", 1)[1].split(":")
    head = method.encode() + b" " + target + b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n" + headers
    if body:
        head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + b"\r\n" + body)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    reply = b"".join(chunks)
    status_line = reply.split(b"\r\n", 1)[0].split(b" ")
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    head_part, _, body_part = reply.partition(b"\r\n\r\n")
    return RawAnswer(status, head_part, body_part)


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def client(gw: EmulatorGateway, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=gw.url, timeout=timeout)


def admin(gw: EmulatorGateway) -> httpx.Client:
    return httpx.Client(base_url=gw.url, timeout=30.0, headers={"X-Admin-Key": gw.admin_key})


APPROVE_BIG_CHARGES: dict[str, Any] = {
    "name": "charges-over-1000",
    "rules": [{"when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                                {"field": "request.path", "op": "eq", "value": "/v1/charges"},
                                {"field": "request.body.amount", "op": "gt", "value": 1000}]},
               "then": {"action": "require_approval", "timeout": "10m"}}],
}


def approval_policy(timeout: str = "10m") -> dict[str, Any]:
    return {**APPROVE_BIG_CHARGES, "rules": [{**APPROVE_BIG_CHARGES["rules"][0],
                                              "then": {"action": "require_approval", "timeout": timeout}}]}


@pytest.fixture
def make_upstream() -> Iterator[Any]:
    """A factory of counting loopback upstreams (``counting_upstream.py``), all closed after the test."""
    from .counting_upstream import CountingUpstream

    made: list[CountingUpstream] = []

    def make(name: str, **options: Any) -> CountingUpstream:
        upstream = CountingUpstream(name, **options)
        made.append(upstream)
        return upstream

    try:
        yield make
    finally:
        for upstream in made:
            upstream.close()
