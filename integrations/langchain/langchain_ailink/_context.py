"""LangChain run context → AIlink session, span ids and properties (shared by tools and ChatAIlink)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from ailink.adapters import CallContext, choose_session, span_id_from, span_path_properties
from langchain_ailink.callbacks import SESSION_METADATA_KEY, AIlinkCallbackHandler

#: Metadata key for the end user the run acts for (sent as ``X-User-Id``).
USER_METADATA_KEY = "ailink_user_id"
_LANGGRAPH_KEYS = ("langgraph_node", "langgraph_step")


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
) -> CallContext:
    """The context of run ``run_id``: its session, its span (the parent of its requests), properties.

    Session (``ailink.adapters.choose_session``): metadata ``ailink_session_id`` → an open
    ``ailink.trace()`` block → LangGraph ``thread_id`` → the root run id (known to an
    :class:`AIlinkCallbackHandler` of the run, or the run itself when it has no parent) → a new id;
    the last two are per-invocation fallbacks (``stable_session=False``). ``parent_known=False``
    says ``parent_run_id`` is unknown rather than absent.
    """
    metadata = metadata or {}
    configurable = configurable or {}
    handler = find_handler(handlers)
    info = handler.run_info(run_id) if handler is not None else None
    session, chosen = choose_session(
        metadata.get(SESSION_METADATA_KEY),
        configurable.get("thread_id") or metadata.get("thread_id"),
        info.session_id if info is not None and info.session_chosen else None,
        fallbacks=(info.session_id if info is not None else None,
                   run_id if parent_run_id is None and parent_known else None),
    )
    span = span_id_from(run_id)
    properties: dict[str, Any] = {"framework": "langchain", "run_span": span}
    if parent_run_id is not None:
        properties["parent_run_span"] = span_id_from(parent_run_id)
    if info is not None:
        properties.update(span_path_properties(info.span_path))
    properties.update({key: metadata[key] for key in _LANGGRAPH_KEYS if metadata.get(key) is not None})
    properties.update({k: v for k, v in (extra or {}).items() if v is not None})
    user = metadata.get(USER_METADATA_KEY)
    return CallContext(session_id=session, parent_span_id=span, properties=properties,
                       user_id=str(user) if user not in (None, "") else None, stable_session=chosen)
