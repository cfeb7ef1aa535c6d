"""Where an Agents SDK run is, read from the SDK's own tracing: its session, its spans.

Session id, first match wins (:func:`ailink.adapters.choose_session`): an open ``ailink.trace(...)``
block, the trace's ``group_id`` (``RunConfig(group_id=...)``: a conversation or thread), the trace
id (kept by a ``RunState``, so a resumed run keeps it); with tracing disabled, a new id. Spans: the
run's trace is the root, then the agent span, then the SDK span of the request (a function span for
a tool call, a generation span for a model call).
"""

from __future__ import annotations

from typing import Any

from agents.tracing import Trace, get_current_span, get_current_trace
from agents.tracing.traces import TraceState

from ailink.adapters import CallContext, TraceContext, choose_session, new_span_id, span_id_from, span_path_properties

FRAMEWORK = "openai-agents"
_NO_OP = "no-op"  # the ids of the SDK's spans and traces when tracing is disabled


def _real(value: str | None) -> str | None:
    return value if value and value != _NO_OP else None


def _session(trace: Trace | TraceState | None) -> tuple[str, bool, str | None]:
    """The session of a run with this trace (and whether it is stable), and the trace's real id."""
    trace_id = _real(trace.trace_id) if trace is not None else None
    session, stable = choose_session(None, getattr(trace, "group_id", None), trace_id)
    return session, stable, trace_id


def _scope(leaf: str) -> tuple[str, bool, str, dict[str, Any]]:
    """The session (and whether it is stable), the span of the request and its properties."""
    trace, span = get_current_trace(), get_current_span()
    session, stable, trace_id = _session(trace)
    span_id = _real(span.span_id) if span is not None else None
    parent_id = _real(span.parent_id) if span is not None else None
    request_span = span_id_from(span_id) if span_id else new_span_id()
    path = [(span_id_from(trace_id or session), f"agents run: {trace.name}" if trace_id and trace else "agents run")]
    if parent_id:
        path.append((span_id_from(parent_id), "agent"))
    properties: dict[str, Any] = {"framework": FRAMEWORK, **span_path_properties([*path, (request_span, leaf)])}
    if trace_id:
        properties["trace_id"] = trace_id
    return session, stable, request_span, properties


def call_context(tool_name: str, call_id: str, agent_name: str | None) -> CallContext:
    """The core's view of one tool call: the model's tool-call id (kept in a ``RunState``) as call id."""
    session, stable, span, properties = _scope(f"tool:{tool_name}")
    if agent_name:
        properties["agent"] = agent_name
    return CallContext(session_id=session, parent_span_id=span, call_id=call_id, properties=properties,
                       stable_session=stable)


def paused_call_context(tool_name: str, call_id: str, trace: TraceState | None) -> CallContext:
    """The core's view of a paused call from outside its run, e.g. to reject it: the session its resumed
    run has (from the trace a ``RunState`` keeps), so the call's idempotency key is the one it was sent with."""
    session, stable, trace_id = _session(trace)
    span = new_span_id()
    path = [(span_id_from(trace_id or session), "agents run"), (span, f"reject:{tool_name}")]
    return CallContext(session_id=session, parent_span_id=span, call_id=call_id, stable_session=stable,
                       properties={"framework": FRAMEWORK, **span_path_properties(path)})


def trace_context() -> TraceContext | None:
    """The trace context of a model request made by the running agent (``None`` outside a run)."""
    if get_current_trace() is None:
        return None
    session, _, span, properties = _scope("llm")
    return TraceContext(session_id=session, parent_span_id=span, properties=properties)
