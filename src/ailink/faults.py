"""Seeded fault injection on loopback HTTP/1.1: a fault proxy and an upstream that counts executions.

The toolkit promises that an agent's action happens once, or visibly not at all. These two
servers measure that promise under network faults:

* :class:`FaultProxy` forwards to a target URL and, per request, applies a fault drawn from a
  seeded schedule (:class:`FaultSchedule`): the choice is reproducible from the seed and the
  order in which requests arrive. It records what it did for every request
  (:class:`FaultRecord`). Put it on either hop: ``client → proxy → gateway`` (give the client
  ``proxy.url`` as the gateway URL) or ``gateway → proxy → upstream`` (a token's
  ``upstream_url``; the emulator accepts loopback upstreams).
* :class:`CountingUpstream` executes every request it receives (it does *not* deduplicate by
  idempotency key) and counts executions per logical call reference, the ``"ref"`` field of
  the JSON body (or the ``ref`` query parameter).

Faults (:data:`FAULTS`):

=====================  =================================================================
``pass``               forward and relay the answer as it arrives (streams included)
``refuse``             close the connection without forwarding (a fault *before* forwarding)
``drop_response``      forward, read the whole answer, close the connection without answering
``reset_mid_response`` forward, send the status line and part of the body, then reset (RST)
``bad_gateway``        forward, discard the answer, answer 502 with an intermediary's HTML page
``unavailable``        forward, discard the answer, answer 503 with an intermediary's HTML page
``delay``              wait (up to ``max_delay`` seconds), then forward like ``pass``
``trickle``            forward, then send the answer a few bytes at a time
=====================  =================================================================

Both servers run on 127.0.0.1 in a background thread with their own asyncio event loop, use
only the standard library, speak keep-alive HTTP/1.1 with ``Content-Length`` or chunked bodies,
and are context managers::

    with CountingUpstream() as upstream, FaultProxy(upstream.url, seed=7) as proxy:
        httpx.post(proxy.url + "/v1/charges", json={"ref": "c1"})
        upstream.executions("c1"), proxy.records[0].fault
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "DEFAULT_WEIGHTS",
    "FAULTS",
    "FORWARDING_FAULTS",
    "CountingUpstream",
    "Execution",
    "Fault",
    "FaultProxy",
    "FaultRecord",
    "FaultSchedule",
]

#: Every fault a :class:`FaultProxy` can apply.
FAULTS = (
    "pass",
    "refuse",
    "drop_response",
    "reset_mid_response",
    "bad_gateway",
    "unavailable",
    "delay",
    "trickle",
)
#: Faults applied after the request was forwarded: the target may have executed it.
FORWARDING_FAULTS = frozenset(FAULTS) - {"refuse"}
#: The default mix: one request in two passes untouched.
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "pass": 7.0,
    "refuse": 1.0,
    "drop_response": 1.0,
    "reset_mid_response": 1.0,
    "bad_gateway": 1.0,
    "unavailable": 1.0,
    "delay": 1.0,
    "trickle": 1.0,
}

_MAX_HEAD_BYTES = 64 * 1024
_READ_SIZE = 64 * 1024
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 502: "Bad Gateway",
            503: "Service Unavailable"}
_INTERMEDIARY_PAGES = {
    502: b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    b"</center><hr><center>fault-proxy</center></body></html>\r\n",
    503: b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
    b"<h1>503 Service Temporarily Unavailable</h1></center><hr><center>fault-proxy</center></body></html>\r\n",
}

_Self = TypeVar("_Self", bound="_LoopServer")


# ---------------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Fault:
    """One drawn fault: its name and parameters (``delay`` seconds before forwarding for
    ``delay``; ``cut``, the share of the body sent before a ``reset_mid_response``)."""

    name: str
    delay: float = 0.0
    cut: float = 0.5


class FaultSchedule:
    """The seeded sequence of faults: the n-th call of :meth:`next` depends only on the seed,
    the weights and ``max_delay``."""

    def __init__(
        self, seed: int | str = 0, weights: Mapping[str, float] | None = None, *, max_delay: float = 0.2
    ) -> None:
        chosen = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = sorted(set(chosen) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
        if any(w < 0 for w in chosen.values()) or sum(chosen.values()) <= 0:
            raise ValueError("fault weights must be >= 0 and not all zero")
        if max_delay < 0:
            raise ValueError("max_delay must be >= 0")
        self.seed = seed
        self.weights: dict[str, float] = {name: float(chosen[name]) for name in FAULTS if chosen.get(name)}
        self.max_delay = max_delay
        self._rng = random.Random(seed)
        self._names = list(self.weights)
        self._cumulative = list(self.weights.values())

    def __repr__(self) -> str:
        return f"FaultSchedule(seed={self.seed!r}, weights={self.weights!r})"

    def next(self) -> Fault:
        """The fault for the next request (three draws per request, whatever the fault)."""
        name = self._rng.choices(self._names, self._cumulative)[0]
        delay = self._rng.uniform(0.0, self.max_delay)
        cut = self._rng.random()
        return Fault(name, delay if name == "delay" else 0.0, cut)


@dataclass(frozen=True)
class FaultRecord:
    """What the proxy did with one request (``index`` = arrival order since the last reseed).

    ``forwarded`` is True once the request was written to the target; ``upstream_status`` is
    the target's status when an answer head arrived; ``scheduled`` is False for requests the
    ``applies_to`` filter passed through without a draw.
    """

    index: int
    method: str
    path: str
    fault: str
    forwarded: bool = False
    upstream_status: int | None = None
    scheduled: bool = True


# ---------------------------------------------------------------------------------- HTTP/1.1


class _BadMessage(Exception):
    """The peer sent something that is not HTTP/1.1 this module understands."""


@dataclass(frozen=True)
class _Head:
    start: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def has_token(self, name: str, token: str) -> bool:
        value = self.get(name)
        return value is not None and token in (t.strip().lower() for t in value.split(","))

    def encode(self, *, drop: frozenset[str] = frozenset(), extra: tuple[tuple[str, str], ...] = ()) -> bytes:
        lines = [self.start]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in drop]
        lines += [f"{k}: {v}" for k, v in extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    """The next message head, or None at a clean end of the connection."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise _BadMessage("connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise _BadMessage("message head too large") from None
    lines = raw.decode("latin-1").lstrip("\r\n").split("\r\n")[:-2]
    if not lines or not lines[0]:
        raise _BadMessage("empty start line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise _BadMessage("malformed header line")
        headers.append((name, value.strip()))
    return _Head(lines[0], headers)


def _request_line(head: _Head) -> tuple[str, str, str]:
    parts = head.start.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadMessage("malformed request line")
    return parts[0].upper(), parts[1], parts[2]


def _status_of(head: _Head) -> int:
    parts = head.start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _BadMessage("malformed status line")
    return int(parts[1])


def _framing(head: _Head, *, response_to: str | None = None) -> tuple[str, int]:
    """How the body of ``head`` is delimited: ("none" | "length" | "chunked" | "close", length)."""
    if response_to is not None:
        status = _status_of(head)
        if response_to == "HEAD" or status < 200 or status in (204, 304):
            return "none", 0
    if head.has_token("transfer-encoding", "chunked"):
        return "chunked", 0
    length = head.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise _BadMessage("malformed Content-Length")
        return "length", int(length)
    return ("close", 0) if response_to is not None else ("none", 0)


async def _body_pieces(reader: asyncio.StreamReader, kind: str, length: int) -> AsyncIterator[tuple[bytes, bytes]]:
    """The body as it arrives: (raw bytes as framed on the wire, decoded data) pairs."""
    if kind == "length":
        remaining = length
        while remaining:
            piece = await reader.read(min(_READ_SIZE, remaining))
            if not piece:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(piece)
            yield piece, piece
    elif kind == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadMessage("malformed chunk size") from None
            if size == 0:
                tail = b""
                while True:  # optional trailers, then the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    tail += trailer
                    if trailer == b"\r\n":
                        break
                yield line + tail, b""
                return
            chunk = await reader.readexactly(size + 2)
            yield line + chunk, chunk[:-2]
    elif kind == "close":
        while piece := await reader.read(_READ_SIZE):
            yield piece, piece


async def _read_body(reader: asyncio.StreamReader, kind: str, length: int) -> bytes:
    return b"".join([data async for _, data in _body_pieces(reader, kind, length)])


def _simple_response(status: int, body: bytes, content_type: str, *, close: bool = False,
                     extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
    if close:
        headers.append(("Connection", "close"))
    return _Head(f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", headers).encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or cut-off peer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ---------------------------------------------------------------------------------- servers


class _LoopServer:
    """An asyncio TCP server on loopback, run by a background thread with its own event loop."""

    _thread_name = "loop-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (available once started)."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not running: call start() or use it as a context manager")
        return self._url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self: _Self) -> _Self:
        """Start serving (idempotent); returns self."""
        if self.running:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=self._thread_name, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), loop)
        try:
            port = future.result(10)
        except BaseException:
            self.stop()
            raise
        self._url = f"http://{self._host}:{port}"
        return self

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, self._host, self._port, limit=_MAX_HEAD_BYTES)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, _BadMessage, OSError):
            pass
        except asyncio.CancelledError:  # shutting down: end quietly (asyncio would log a cancelled handler)
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read requests off one keep-alive connection and hand each to :meth:`_respond`."""
        while True:
            try:
                head = await _read_head(reader)
                if head is None:
                    return
                method, target, version = _request_line(head)
                kind, length = _framing(head)
                body = await _read_body(reader, kind, length)
            except _BadMessage as exc:
                writer.write(_simple_response(400, str(exc).encode(), "text/plain", close=True))
                await writer.drain()
                return
            close = version == "HTTP/1.0" or head.has_token("connection", "close")
            keep_open = await self._respond(method, target, head, body, close, writer)
            if close or not keep_open:
                return

    async def _respond(self, method: str, target: str, head: _Head, body: bytes, close: bool,
                       writer: asyncio.StreamWriter) -> bool:
        """Answer one request (``close``: the client asked to close); False ends the connection."""
        raise NotImplementedError

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and end the background thread (open connections are cut)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._server = None

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._url!r})"


class FaultProxy(_LoopServer):
    """A seeded fault-injecting HTTP/1.1 proxy on loopback, forwarding to ``target``.

    ``seed`` and ``weights`` (fault name → weight, default :data:`DEFAULT_WEIGHTS`) make the
    :class:`FaultSchedule`; ``applies_to(method, path)`` limits faults to some requests (the
    others pass without a draw). ``max_delay`` bounds the ``delay`` fault; ``trickle_bytes``
    and ``trickle_interval`` pace the ``trickle`` fault. Each request is forwarded on a fresh
    connection to the target, so the proxy itself never re-sends anything.
    """

    _thread_name = "fault-proxy"

    def __init__(
        self,
        target: str,
        *,
        seed: int | str = 0,
        weights: Mapping[str, float] | None = None,
        applies_to: Callable[[str, str], bool] | None = None,
        max_delay: float = 0.2,
        trickle_bytes: int = 16,
        trickle_interval: float = 0.002,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("target must be an http:// URL")
        if trickle_bytes < 1 or trickle_interval < 0:
            raise ValueError("trickle_bytes must be >= 1 and trickle_interval >= 0")
        self.target = target.rstrip("/")
        self._target_host = parts.hostname
        self._target_port = parts.port or 80
        self._target_netloc = parts.netloc
        self._target_base = parts.path.rstrip("/")
        self.applies_to = applies_to
        self.trickle_bytes = trickle_bytes
        self.trickle_interval = trickle_interval
        self._lock = threading.Lock()
        self._schedule = FaultSchedule(seed, weights, max_delay=max_delay)
        self._records: list[FaultRecord] = []

    def __repr__(self) -> str:
        return f"FaultProxy(url={self._url!r}, target={self.target!r}, schedule={self._schedule!r})"

    # -- schedule and records --------------------------------------------------------------
    @property
    def schedule(self) -> FaultSchedule:
        return self._schedule

    def reseed(self, seed: int | str, weights: Mapping[str, float] | None = None, *,
               max_delay: float | None = None) -> None:
        """Start a new schedule (and a new record list) from ``seed``; ``weights`` default to
        the current ones."""
        schedule = FaultSchedule(
            seed,
            self._schedule.weights if weights is None else weights,
            max_delay=self._schedule.max_delay if max_delay is None else max_delay,
        )
        with self._lock:
            self._schedule = schedule
            self._records = []

    @property
    def records(self) -> list[FaultRecord]:
        """What the proxy did for each request since the last reseed, in arrival order."""
        with self._lock:
            return list(self._records)

    def fault_counts(self) -> Counter[str]:
        """How many requests got each fault (scheduled requests only)."""
        return Counter(r.fault for r in self.records if r.scheduled)

    def _draw(self, method: str, path: str) -> tuple[int, Fault, list[FaultRecord]]:
        with self._lock:
            scheduled = self.applies_to is None or self.applies_to(method, path)
            fault = self._schedule.next() if scheduled else Fault("pass")
            records = self._records
            records.append(FaultRecord(len(records), method, path, fault.name, scheduled=scheduled))
            return len(records) - 1, fault, records

    def _update(self, records: list[FaultRecord], index: int, **changes: Any) -> None:
        with self._lock:
            records[index] = replace(records[index], **changes)

    # -- serving ---------------------------------------------------------------------------
    def _upstream_request(self, method: str, target: str, head: _Head, body: bytes) -> bytes:
        if "://" in target:  # absolute form
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        drop = _HOP_BY_HOP | {"host", "content-length", "transfer-encoding"}
        extra: list[tuple[str, str]] = [("Host", self._target_netloc), ("Connection", "close")]
        if body or method in ("POST", "PUT", "PATCH"):
            extra.append(("Content-Length", str(len(body))))
        start = f"{method} {self._target_base}{target} HTTP/1.1"
        return _Head(start, head.headers).encode(drop=frozenset(drop), extra=tuple(extra)) + body

    async def _respond(self, method: str, target: str, head: _Head, body: bytes, close: bool,
                       writer: asyncio.StreamWriter) -> bool:
        """Forward one request and answer it per the drawn fault."""
        path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
        index, fault, records = self._draw(method, path)
        if fault.name == "refuse":
            _reset(writer)
            return False
        if fault.delay:
            await asyncio.sleep(fault.delay)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self._target_host, self._target_port, limit=_MAX_HEAD_BYTES
            )
        except OSError:
            writer.write(_simple_response(502, _INTERMEDIARY_PAGES[502], "text/html", close=close))
            await writer.drain()
            return True
        try:
            return await self._relay(method, target, head, body, fault, close, writer, up_reader, up_writer,
                                     lambda **changes: self._update(records, index, **changes))
        finally:
            up_writer.transport.abort()

    async def _relay(self, method: str, target: str, head: _Head, body: bytes, fault: Fault, close: bool,
                     writer: asyncio.StreamWriter, up_reader: asyncio.StreamReader,
                     up_writer: asyncio.StreamWriter, note: Callable[..., None]) -> bool:
        up_writer.write(self._upstream_request(method, target, head, body))
        await up_writer.drain()
        note(forwarded=True)
        try:
            answer = await _read_head(up_reader)
            if answer is None:
                raise _BadMessage("the target closed without answering")
            status = _status_of(answer)
            kind, length = _framing(answer, response_to=method)
        except (_BadMessage, ConnectionError, asyncio.IncompleteReadError, OSError):
            writer.write(_simple_response(502, _INTERMEDIARY_PAGES[502], "text/html", close=close))
            await writer.drain()
            return True
        note(upstream_status=status)
        close = close or kind == "close"
        head_bytes = answer.encode(drop=_HOP_BY_HOP, extra=(("Connection", "close"),) if close else ())
        pieces = _body_pieces(up_reader, kind, length)

        if fault.name in ("pass", "delay", "trickle"):
            paced = fault.name == "trickle"
            try:
                await self._send(writer, head_bytes, paced)
                async for raw, _ in pieces:
                    await self._send(writer, raw, paced)
            except (_BadMessage, asyncio.IncompleteReadError, OSError):
                _reset(writer)  # the target broke off mid-answer: so does the proxy
                return False
            return not close

        try:
            raw_body = b"".join([raw async for raw, _ in pieces])
        except (_BadMessage, asyncio.IncompleteReadError, OSError):
            raw_body = b""
        if fault.name == "drop_response":
            writer.close()
            return False
        if fault.name == "reset_mid_response":
            if raw_body:
                sent = head_bytes + raw_body[: min(len(raw_body) - 1, int(len(raw_body) * fault.cut))]
            else:  # no body to cut: stop after the status line
                sent = head_bytes[: head_bytes.index(b"\r\n") + 2]
            writer.write(sent)
            await writer.drain()
            _reset(writer)
            return False
        status = 502 if fault.name == "bad_gateway" else 503
        writer.write(_simple_response(status, _INTERMEDIARY_PAGES[status], "text/html", close=close))
        await writer.drain()
        return not close

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, paced: bool) -> None:
        if writer.is_closing():
            raise ConnectionResetError("the client went away")
        if not paced:
            writer.write(data)
            await writer.drain()
            return
        for start in range(0, len(data), self.trickle_bytes):
            if writer.is_closing():
                raise ConnectionResetError("the client went away")
            writer.write(data[start : start + self.trickle_bytes])
            await writer.drain()
            await asyncio.sleep(self.trickle_interval)


# ---------------------------------------------------------------------------------- upstream


@dataclass(frozen=True)
class Execution:
    """One request a :class:`CountingUpstream` executed."""

    index: int
    method: str
    path: str
    ref: str | None
    idempotency_key: str | None


_KEY_HEADERS = ("idempotency-key", "x-ailink-idempotency-key", "x-trueflow-idempotency-key")


class CountingUpstream(_LoopServer):
    """A loopback HTTP API that executes every request it receives and counts executions per
    logical call reference (``"ref"`` in the JSON body, else the ``ref`` query parameter).

    It never deduplicates: an action sent twice runs twice, which is what the soak measures.
    Answers are JSON: ``201 {"id", "ref", "execution", ...}`` for POST, ``200`` otherwise; a
    path ending in ``/stream`` answers a chunked ``text/event-stream`` of three events. A body
    field ``"upstream_delay"`` (seconds) holds the answer after counting the execution.
    """

    _thread_name = "counting-upstream"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._log: list[Execution] = []
        self._counts: Counter[str] = Counter()

    # -- what was executed -----------------------------------------------------------------
    def executions(self, ref: str) -> int:
        """How many times the call ``ref`` was executed."""
        with self._lock:
            return self._counts[ref]

    def counts(self) -> dict[str, int]:
        """Executions per ref."""
        with self._lock:
            return dict(self._counts)

    def duplicates(self) -> dict[str, int]:
        """The refs executed more than once, with their counts."""
        return {ref: n for ref, n in self.counts().items() if n > 1}

    @property
    def log(self) -> list[Execution]:
        """Every execution, in order."""
        with self._lock:
            return list(self._log)

    def keys_for(self, ref: str) -> list[str | None]:
        """The idempotency key each execution of ``ref`` carried."""
        return [e.idempotency_key for e in self.log if e.ref == ref]

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()

    # -- serving ---------------------------------------------------------------------------
    def _execute(self, method: str, target: str, head: _Head, body: bytes) -> tuple[dict[str, Any], float]:
        """Count the execution; returns the JSON answer and the requested answer delay."""
        parts = urlsplit(target)
        doc: Any = None
        if body:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                doc = json.loads(body)
        fields = doc if isinstance(doc, dict) else {}
        ref = fields.get("ref")
        if not isinstance(ref, str):
            ref = next(iter(parse_qs(parts.query).get("ref", [])), None)
        key = next((v for name in _KEY_HEADERS if (v := head.get(name)) is not None), None)
        with self._lock:
            execution = Execution(len(self._log), method, parts.path, ref, key)
            self._log.append(execution)
            if ref is not None:
                self._counts[ref] += 1
            count = self._counts[ref] if ref is not None else 0
        answer = {"id": f"obj_{execution.index:06d}", "ref": ref, "method": method, "path": parts.path,
                  "execution": count}
        if "amount" in fields:
            answer["amount"] = fields["amount"]
        delay = fields.get("upstream_delay")
        return answer, float(delay) if isinstance(delay, (int, float)) and delay > 0 else 0.0

    async def _respond(self, method: str, target: str, head: _Head, body: bytes, close: bool,
                       writer: asyncio.StreamWriter) -> bool:
        answer, delay = self._execute(method, target, head, body)
        if delay:
            await asyncio.sleep(delay)
        if urlsplit(target).path.endswith("/stream"):
            await self._stream(writer, answer)
            return True
        status = 201 if method == "POST" else 200
        writer.write(_simple_response(status, json.dumps(answer).encode(), "application/json", close=close))
        await writer.drain()
        return True

    @staticmethod
    async def _stream(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
        head = _Head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked"),
                                         ("Cache-Control", "no-cache")])
        writer.write(head.encode())
        for i in range(3):
            event = f"data: {json.dumps({**answer, 'event': i})}\n\n".encode()
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
