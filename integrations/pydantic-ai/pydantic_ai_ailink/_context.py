"""Where a Pydantic AI run is: its session and spans, read from the run's ``RunContext``.

Session id, first match wins (:func:`ailink.adapters.choose_session`): an open ``ailink.trace(...)``
block, the run's ``conversation_id`` (``agent.run(..., conversation_id=...)``, else carried by the
message history, so a resumed run keeps it), the run id. Spans: the run is the root; under it one
span per model request (run step) and one per tool call.
"""

from __future__ import annotations

from typing import Any

from pydantic_ai import RunContext

# The run a model request belongs to (what Pydantic AI's own durable-execution models read).
from pydantic_ai._run_context import get_current_run_context

from ailink.adapters import CallContext, TraceContext, choose_session, span_id_from, span_path_properties

FRAMEWORK = "pydantic-ai"


def _scope(ctx: RunContext[Any], leaf: str, label: str) -> tuple[str, bool, str, dict[str, Any]]:
    """The session (and whether it is stable), the span of the request and its properties."""
    session, stable = choose_session(None, getattr(ctx, "conversation_id", None), fallbacks=(ctx.run_id,))
    run = ctx.run_id or session
    span = span_id_from(f"{run}/{leaf}")
    properties: dict[str, Any] = {"framework": FRAMEWORK,
                                  **span_path_properties([(span_id_from(run), "agent run"), (span, label)])}
    if ctx.run_id:
        properties["run_id"] = ctx.run_id
    return session, stable, span, properties


def call_context(ctx: RunContext[Any]) -> CallContext:
    """The core's view of one tool call: the model's tool-call id (kept in the message history) as call id."""
    session, stable, span, properties = _scope(ctx, f"tool/{ctx.tool_call_id}", f"tool:{ctx.tool_name}")
    return CallContext(session_id=session, parent_span_id=span, call_id=ctx.tool_call_id, properties=properties,
                       stable_session=stable)


def trace_context() -> TraceContext | None:
    """The trace context of a model request of the running agent (``None`` outside a run)."""
    ctx = get_current_run_context()
    if ctx is None:
        return None
    session, _, span, properties = _scope(ctx, f"step/{ctx.run_step}", "llm")
    return TraceContext(session_id=session, parent_span_id=span, properties=properties)
