"""LangChain run context → AIlink session, span ids and properties (shared by tools and ChatAIlink)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ailink.adapters import TraceContext, current_trace, span_id_from, span_path_properties
from langchain_ailink.callbacks import SESSION_METADATA_KEY, AIlinkCallbackHandler

#: Metadata key for the end user the run acts for (sent as ``X-User-Id``).
USER_METADATA_KEY = "ailink_user_id"
_LANGGRAPH_KEYS = ("langgraph_node", "langgraph_step")


@dataclass(frozen=True)
class RunScope:
    """Where one LangChain run sits: its session, its span and what the gateway should record."""

    session_id: str
    span_id: str
    parent_span_id: str | None
    user_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    session_chosen: bool = True
    """False when ``session_id`` is a per-invocation fallback (the root run id or a new id)."""

    def trace_context(self) -> TraceContext:
        """The trace context requests made by this run are sent under (parent span = this run)."""
        return TraceContext(
            session_id=self.session_id,
            parent_span_id=self.span_id,
            properties=dict(self.properties),
            user_id=self.user_id,
        )


def find_handler(handlers: Iterable[Any]) -> AIlinkCallbackHandler | None:
    """The first :class:`AIlinkCallbackHandler` among a callback manager's handlers."""
    return next((h for h in handlers if isinstance(h, AIlinkCallbackHandler)), None)


def resolve_scope(
    *,
    run_id: UUID,
    parent_run_id: UUID | None,
    metadata: Mapping[str, Any] | None,
    handlers: Iterable[Any] = (),
    configurable: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    parent_known: bool = True,
) -> RunScope:
    """The scope of run ``run_id``.

    Session, first match wins: metadata ``ailink_session_id`` → an open ``ailink.trace()``
    block → LangGraph ``thread_id`` → the root run id (known to an :class:`AIlinkCallbackHandler`
    of the run, or the run itself when it has no parent) → a new id; the last two are
    per-invocation fallbacks (``session_chosen=False``). ``parent_known=False`` says
    ``parent_run_id`` is unknown rather than absent.
    """
    metadata = metadata or {}
    configurable = configurable or {}
    handler = find_handler(handlers)
    info = handler.run_info(run_id) if handler is not None else None
    outer = current_trace()
    thread_id = configurable.get("thread_id") or metadata.get("thread_id")
    chosen = (
        _text(metadata.get(SESSION_METADATA_KEY))
        or (outer.session_id if outer is not None else None)
        or _text(thread_id)
        or (info.session_id if info is not None and info.session_chosen else None)
    )
    session = (
        chosen
        or (info.session_id if info is not None else None)
        or (str(run_id) if parent_run_id is None and parent_known else None)
        or str(uuid.uuid4())
    )
    span = span_id_from(run_id)
    parent_span = span_id_from(parent_run_id) if parent_run_id is not None else None
    properties: dict[str, Any] = {"framework": "langchain", "run_span": span}
    if parent_span is not None:
        properties["parent_run_span"] = parent_span
    if info is not None:
        properties.update(span_path_properties(info.span_path))
    for key in _LANGGRAPH_KEYS:
        if metadata.get(key) is not None:
            properties[key] = metadata[key]
    properties.update({k: v for k, v in (extra or {}).items() if v is not None})
    return RunScope(
        session_id=session,
        span_id=span,
        parent_span_id=parent_span,
        user_id=_text(metadata.get(USER_METADATA_KEY)),
        properties=properties,
        session_chosen=chosen is not None,
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
