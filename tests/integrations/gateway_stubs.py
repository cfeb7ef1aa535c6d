"""Loopback stand-ins for a broken gateway, and a proxy that counts what reaches the real emulator.

Nothing here mocks a framework: the tools under test make real HTTP requests over 127.0.0.1.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import threading
from typing import Any

#: A gateway error body for a token the gateway does not know (protocol §3).
UNKNOWN_TOKEN = json.dumps({"error": {"code": "token_not_found", "message": "Token not found or revoked",
                                      "type": "authentication_error", "request_id": "req_stub"}}).encode()


def http_answer(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    head = (f"HTTP/1.1 {status} Stub\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


#: Answers a client cannot read as HTTP, or reads as a gateway answer that makes no sense.
GARBAGE = {
    "not_http": b"\x00\xff\xfe garbage that is not HTTP at all \x1b[31m\r\n\r\n",
    "broken_pending": http_answer(202, b'{"status": "pending_approval", "approval_id": 42}'),
    "truncated": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":",
}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _read_request_head(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(5)
    try:
        while b"\r\n\r\n" not in data and len(data) < 1_000_000:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class StubGateway:
    """A loopback server answering every connection with the same raw bytes; counts connections."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.connections = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with stub._lock:
                    stub.connections += 1
                _read_request_head(self.request)
                try:
                    self.request.sendall(stub.answer)
                except OSError:
                    pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CountingProxy:
    """A TCP proxy on loopback in front of ``target_url``, counting the bytes clients send through it."""

    def __init__(self, target_url: str) -> None:
        host, _, port = target_url.removeprefix("http://").partition(":")
        target = (host, int(port.rstrip("/")))
        self.bytes_received = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                with socket.create_connection(target, timeout=30) as upstream:
                    proxy._pump(client, upstream)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        while True:
            readable, _, _ = select.select(list(peers), [], [], 30)
            if not readable:
                return
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if sock is client:
                    with self._lock:
                        self.bytes_received += len(data)
                peers[sock].sendall(data)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def describe(value: Any, limit: int = 120) -> str:
    """A short printable description of a (possibly huge or deeply nested) hostile value."""
    try:
        text = repr(value)
    except RecursionError:
        deepest, stack = 0, [(value, 0)]
        while stack:
            item, depth = stack.pop()
            deepest = max(deepest, depth)
            if isinstance(item, dict):
                stack.extend((child, depth + 1) for child in item.values())
        return f"<{type(value).__name__} nested {deepest} levels deep>"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"
