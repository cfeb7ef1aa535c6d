"""OpenTelemetry, when the application uses it (extra ``otel``): trace propagation and tool spans.

Nothing here imports OpenTelemetry on its own. An application that traces has imported
``opentelemetry.trace`` (to configure a provider or open a span) before any gateway call; until
then there is no span to join and no provider to emit to, so every function here is a no-op that
costs one dictionary lookup.

* :func:`propagation_headers`: the W3C trace context (and whatever else the application's
  propagators write) of the active span, for the gateway requests made under it, so the
  gateway's session joins the caller's trace.
* :func:`tool_span`: one ``execute_tool {name}`` span per tool call, following the OpenTelemetry
  GenAI semantic conventions (``gen_ai.operation.name``, ``gen_ai.tool.name``,
  ``gen_ai.tool.call.id`` = the framework's tool-call id, ``gen_ai.conversation.id`` = the
  session), with approval events and an ``await_approval {name}`` child span per wait.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailink._approval import PendingApproval
    from ailink._tools.result import ToolResult

__all__ = ["ApprovalWaitSpan", "ToolSpan", "propagation_headers", "tool_span"]

#: The instrumentation scope of every span this toolkit emits.
TRACER_NAME = "ailink"
#: The GenAI semantic conventions version the span attributes follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

# Span events and attributes of our own (the GenAI conventions have no approval concept).
APPROVAL_REQUESTED_EVENT = "ailink.approval.requested"
APPROVAL_DECIDED_EVENT = "ailink.approval.decided"
APPROVAL_PAUSED_EVENT = "ailink.approval.paused"


def _trace_api() -> ModuleType | None:
    """``opentelemetry.trace`` if the application imported it; never imports it."""
    return sys.modules.get("opentelemetry.trace")


def propagation_headers() -> dict[str, str]:
    """The headers carrying the active span's trace context (``traceparent``, ``tracestate``, ...),
    written by the application's propagators; empty when no valid span is active."""
    trace = _trace_api()
    if trace is None:
        return {}
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:  # propagators without W3C trace context: still join the trace
        carrier["traceparent"] = (
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"
        )
    return carrier


def _decision(result: ToolResult) -> str:
    """How an approval ended, as a span attribute: approved, rejected, timed_out, outcome_unknown, ..."""
    return "approved" if result.ok else result.outcome.value


class ToolSpan:
    """The span of one tool call; every method is a no-op when OpenTelemetry is not in use."""

    def __init__(self, trace: ModuleType | None = None, span: Any = None, tool: str = "") -> None:
        self._trace = trace
        self._span = span
        self._tool = tool
        self._waiting_since: float | None = None
        self._waiting_id: str | None = None
        self._pausing: str | None = None

    @property
    def recording(self) -> bool:
        return self._span is not None and bool(self._span.is_recording())

    def approval_requested(self, pending: PendingApproval) -> None:
        """The gateway parked the call for a human: an event with the approval's id, policy and expiry."""
        if not self.recording:
            return
        if self._waiting_id != pending.approval_id:
            self._waiting_id, self._waiting_since = pending.approval_id, time.monotonic()
        attributes = {"ailink.approval.id": pending.approval_id}
        if pending.policy:
            attributes["ailink.approval.policy"] = pending.policy
        if pending.expires_at is not None:
            attributes["ailink.approval.expires_at"] = pending.expires_at.isoformat()
        self._span.add_event(APPROVAL_REQUESTED_EVENT, attributes)

    def pausing_for(self, approval_id: str | None) -> None:
        """The call asks its framework to pause the run for ``approval_id`` (LangGraph ``interrupt()``);
        None once the framework answered instead (a replayed run, or one that cannot pause)."""
        self._pausing = approval_id

    def interrupted(self) -> None:
        """The call was stopped from outside: a framework pause (see :meth:`pausing_for`) or a
        cancellation. Not an error: the span says which."""
        if not self.recording:
            return
        if self._pausing is not None:
            self._span.add_event(APPROVAL_PAUSED_EVENT, {"ailink.approval.id": self._pausing})
        self._span.set_attribute("ailink.tool.outcome", "paused" if self._pausing is not None else "interrupted")

    def approval_decided(self, approval_id: str, result: ToolResult) -> None:
        """The approval ended: an event with its id, the decision and the wait (when this call saw it start)."""
        if not self.recording:
            return
        attributes: dict[str, Any] = {"ailink.approval.id": approval_id, "ailink.approval.decision": _decision(result)}
        if self._waiting_since is not None and self._waiting_id == approval_id:
            attributes["ailink.approval.wait.duration"] = round(time.monotonic() - self._waiting_since, 6)
        self._span.add_event(APPROVAL_DECIDED_EVENT, attributes)

    def describe_call(self, method: str, idempotency_key: str | None) -> None:
        """Add what the validated arguments say: the HTTP method and the idempotency key."""
        if self.recording:
            self._span.set_attribute("http.request.method", method)
            if idempotency_key:
                self._span.set_attribute("ailink.idempotency_key", idempotency_key)

    @contextlib.contextmanager
    def waiting(self, pending: PendingApproval) -> Iterator[ApprovalWaitSpan]:
        """An ``await_approval {tool}`` child span around one wait for a decision (its long polls
        are sent under it)."""
        if not self.recording or self._trace is None:
            yield ApprovalWaitSpan()
            return
        tracer = self._trace.get_tracer(TRACER_NAME, _version(), schema_url=SCHEMA_URL)
        attributes = {"ailink.approval.id": pending.approval_id, "gen_ai.tool.name": self._tool}
        span = tracer.start_span(f"await_approval {self._tool}", attributes=attributes)
        with _activated(self._trace, span) as active:
            yield ApprovalWaitSpan(active)

    def finish(self, result: ToolResult) -> None:
        """Record how the call ended (on an approval wait span: the decision)."""
        if not self.recording:
            return
        span = self._span
        attributes: dict[str, Any] = {"ailink.tool.outcome": result.outcome.value}
        if result.status_code is not None:
            attributes["http.response.status_code"] = result.status_code
        if result.request_id:
            attributes["ailink.request_id"] = result.request_id
        if result.approval_id:
            attributes["ailink.approval.id"] = result.approval_id
            attributes["ailink.approval.decision"] = _decision(result)
        if result.policy:
            attributes["ailink.policy"] = result.policy
        span.set_attributes(attributes)
        if result.is_error and result.error_code is not None:
            span.set_attribute("error.type", result.error_code)
            if self._trace is not None:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, result.error_code))


class ApprovalWaitSpan:
    """The span of one wait for a human decision (a no-op without OpenTelemetry)."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def decided(self, result: ToolResult) -> None:
        """Record the decision the wait ended with."""
        if self._span is not None and self._span.is_recording():
            self._span.set_attribute("ailink.approval.decision", _decision(result))


def _version() -> str:
    from ailink._version import __version__

    return __version__


@contextlib.contextmanager
def _activated(trace: ModuleType, span: Any) -> Iterator[Any]:
    """Make ``span`` current for the block and end it afterwards. A generator closed at a pause
    (``GeneratorExit``) ends it without an error; an exception is recorded on it."""
    from opentelemetry import context

    token = context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except GeneratorExit:
        raise
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
        span.set_attribute("error.type", type(exc).__qualname__)
        raise
    finally:
        context.detach(token)
        span.end()


@contextlib.contextmanager
def tool_span(
    tool: str,
    *,
    description: str | None = None,
    call_id: str | None = None,
    session_id: str | None = None,
) -> Iterator[ToolSpan]:
    """An ``execute_tool {tool}`` span (GenAI semantic conventions), current for the block, so the
    call's gateway requests carry it as their parent. A no-op without OpenTelemetry."""
    trace = _trace_api()
    if trace is None:
        yield ToolSpan()
        return
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.type": "function",
    }
    optional = {
        "gen_ai.tool.description": description,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.conversation.id": session_id,
    }
    attributes.update({name: value for name, value in optional.items() if value})
    tracer = trace.get_tracer(TRACER_NAME, _version(), schema_url=SCHEMA_URL)
    span = tracer.start_span(f"execute_tool {tool}", kind=trace.SpanKind.INTERNAL, attributes=attributes)
    with _activated(trace, span) as active:
        current = ToolSpan(trace, active, tool)
        try:
            yield current
        except GeneratorExit:
            current.interrupted()
            raise

