"""Session tracing: context in contextvars, turned into protocol §2 headers at the transport."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ailink._otel import propagation_headers

T = TypeVar("T")

__all__ = [
    "SPAN_PATH_PROPERTY",
    "TraceContext",
    "aiterate_within",
    "current_trace",
    "iterate_within",
    "new_span_id",
    "span_id_from",
    "span_path_properties",
    "trace_context",
    "trace_headers",
]

#: The ``X-Properties`` key holding the ancestors of a request's span, root first, as
#: ``[[span_id, label], ...]``; its last element is the request's parent span. Session views
#: (``ailink sessions show``, the demo) rebuild the run's tree from it.
SPAN_PATH_PROPERTY = "span_path"

_MAX_PROPERTIES_CHARS = 2048
_MAX_SPAN_PATH = 8


def new_span_id() -> str:
    """A random 16-hex W3C span id."""
    return secrets.token_hex(8)


def span_id_from(value: object) -> str:
    """A stable 16-hex span id derived from any identifier (a run id, a span name, ...)."""
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def span_path_properties(path: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``X-Properties`` entries describing a span's ancestry: ``[(span_id, label), ...]``, root first.

    Labels are short ("agent", "tools", "tool:payments_api", "llm:gpt-4o"). Deep paths keep
    their root and the innermost levels (8 in all), so every request of a run shares the root.
    """
    levels = list(path)
    if len(levels) > _MAX_SPAN_PATH:
        levels = [levels[0], *levels[-(_MAX_SPAN_PATH - 1) :]]
    return {SPAN_PATH_PROPERTY: [[span_id, label[:60]] for span_id, label in levels]}


def trace_id_for(session_id: str) -> str:
    """The 32-hex trace id of a session: stable for the whole session."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TraceContext:
    """What every gateway request of the current run should say about where it comes from."""

    session_id: str | None = None
    parent_span_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    trace_id: str | None = None

    def child(self, **changes: Any) -> TraceContext:
        """A copy with ``changes``; ``properties`` are merged into the current ones."""
        props = changes.pop("properties", None)
        merged = {**self.properties, **(props or {})}
        cleaned = {k: v for k, v in changes.items() if v is not None}
        return replace(self, properties=merged, **cleaned)


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("ailink_trace", default=None)


def current_trace() -> TraceContext | None:
    """The trace context of the running code, if any."""
    return _current.get()


def choose_session(explicit: object, *chosen: object, fallbacks: Iterable[object] = ()) -> tuple[str, bool]:
    """A framework call's session id, and whether the caller chose it (then it is stable across
    re-executions and belongs in idempotency keys).

    First non-empty value wins: ``explicit`` (what the caller set through the framework: run
    metadata, a tag), an open :func:`trace` block, ``chosen`` (the framework's own stable ids, such as
    a thread id); else the first of ``fallbacks`` (per-execution ids: a run id, the root of the run
    tree), else a new id; the last two are not chosen.
    """
    outer = current_trace()
    for value in (explicit, outer.session_id if outer is not None else None, *chosen):
        if value not in (None, ""):
            return str(value), True
    fallback = next((str(v) for v in fallbacks if v not in (None, "")), None)
    return fallback or f"sess_{secrets.token_hex(12)}", False


@contextlib.contextmanager
def trace_context(context: TraceContext | None) -> Iterator[TraceContext | None]:
    """Make ``context`` current for the enclosed block (restored afterwards)."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


@contextlib.contextmanager
def trace(
    session_id: str | None = None,
    *,
    properties: Mapping[str, Any] | None = None,
    parent_span_id: str | None = None,
    user_id: str | None = None,
    agent_name: str | None = None,
    name: str | None = None,
) -> Iterator[TraceContext]:
    """Open a (nestable) trace block: requests inside carry its session id and a span under it.

    A nested block keeps the outer session unless given its own, merges properties, and opens
    a new span whose parent is the outer block's span; its ``span_path`` property records the
    enclosing blocks' spans from the outermost one (each labelled by its ``name``, default
    ``"trace"``), so the session view nests them. A single block adds no property.
    """
    outer = _current.get() or TraceContext()
    session = session_id or outer.session_id or f"sess_{secrets.token_hex(12)}"
    span = parent_span_id or new_span_id()
    extra: dict[str, Any] = {}
    if outer.parent_span_id and outer.session_id == session:  # nested: record the outer blocks' spans
        outer_path = outer.properties.get(SPAN_PATH_PROPERTY)
        path = [tuple(level) for level in outer_path] if isinstance(outer_path, list) else []
        if not path:
            path = [(outer.parent_span_id, "trace")]
        extra = span_path_properties([*path, (span, name or "trace")])
    context = outer.child(
        properties={**dict(properties or {}), **extra},
        user_id=user_id,
        agent_name=agent_name,
        parent_span_id=span,
    )
    if context.session_id != session:
        context = replace(context, session_id=session, trace_id=None)
    with trace_context(context) as current:
        assert current is not None
        yield current


_CONTROL = {i: " " for i in (*range(0x20), 0x7F)}


def _ascii(value: str) -> str:
    """``value`` safe for a header: ASCII only (escaped), control characters (CR/LF) as spaces."""
    return value.translate(_CONTROL).encode("ascii", "backslashreplace").decode("ascii")


def header_safe(value: str, limit: int = 255) -> str:
    """``value`` as a header value: ASCII (escaped), no control characters, at most ``limit`` characters."""
    return _ascii(value)[:limit]


def trace_headers(context: TraceContext | None, *, agent_name: str | None = None) -> dict[str, str]:
    """The protocol §2 headers for one HTTP request made under ``context``."""
    headers: dict[str, str] = {"X-Request-Id": f"req_{secrets.token_hex(16)}"}
    name = (context.agent_name if context else None) or agent_name
    if name:
        headers["X-AIlink-Agent-Name"] = headers["X-TrueFlow-Agent-Name"] = _ascii(name)[:255]
    # An active OpenTelemetry span: the request joins the application's trace (its propagators
    # write ``traceparent``); otherwise the session's own trace, a new span per request.
    propagated = propagation_headers()
    headers.update(propagated)
    if context is None:
        return headers
    if context.session_id:
        headers["X-Session-Id"] = _ascii(context.session_id)[:255]
        if "traceparent" not in propagated:
            trace_id = context.trace_id or trace_id_for(context.session_id)
            headers["traceparent"] = f"00-{trace_id}-{new_span_id()}-01"
    if context.parent_span_id:
        headers["X-Parent-Span-Id"] = context.parent_span_id[:32]
    if context.properties:
        encoded = json.dumps(dict(context.properties), separators=(",", ":"), default=str, ensure_ascii=True)
        if len(encoded) <= _MAX_PROPERTIES_CHARS:
            headers["X-Properties"] = encoded
    if context.user_id:
        headers["X-User-Id"] = _ascii(context.user_id)[:255]
    if context.tool_name:
        headers["X-AIlink-Tool-Name"] = headers["X-TrueFlow-Tool-Name"] = _ascii(context.tool_name)[:255]
    return headers


_DONE: Any = object()


def iterate_within(chunks: Iterator[T], context: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[T]:
    """Yield ``chunks``, entering ``context()`` only while the producer runs, never across a ``yield``:
    a framework's run context reaches the requests a stream makes and never leaks into its consumer."""
    try:
        while True:
            with context():
                chunk = next(chunks, _DONE)
            if chunk is _DONE:
                return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


async def aiterate_within(
    chunks: AsyncIterator[T], context: Callable[[], contextlib.AbstractContextManager[Any]]
) -> AsyncIterator[T]:
    """The async twin of :func:`iterate_within`."""
    try:
        while True:
            with context():
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
