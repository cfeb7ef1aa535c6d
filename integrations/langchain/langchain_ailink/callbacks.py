"""A callback handler that gives every run of a LangChain invocation its AIlink session and span."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from ailink.adapters import span_id_from

__all__ = ["SESSION_METADATA_KEY", "AIlinkCallbackHandler", "RunInfo"]

#: Metadata key a caller sets (``config={"metadata": {...}}``) to choose the session id.
SESSION_METADATA_KEY = "ailink_session_id"


def _run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> str | None:
    """The run's name: the callback's ``name``, else the serialized name or class."""
    if kwargs.get("name"):
        return str(kwargs["name"])
    serialized = serialized or {}
    ident = serialized.get("id")
    name = serialized.get("name") or (ident[-1] if isinstance(ident, list) and ident else None)
    return str(name) if name else None


def _on_start(kind: str) -> Callable[..., None]:
    """The ``on_<kind>_start`` callback of :class:`AIlinkCallbackHandler` (``""``: a chain, named by LangChain)."""

    def on_start(
        handler: AIlinkCallbackHandler,
        serialized: dict[str, Any] | None,
        run_input: Any,  # inputs / messages / prompts / input_str / query: unused
        /,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs) if kind else kwargs.get("name")
        handler._start(run_id, parent_run_id, metadata, name, kind)

    on_start.__doc__ = f"Record a {kind or 'chain'} run: its session, span and span path."
    return on_start


@dataclass(frozen=True)
class RunInfo:
    """What the handler knows about one live run."""

    run_id: UUID
    parent_run_id: UUID | None
    session_id: str
    span_id: str
    span_path: tuple[tuple[str, str], ...]
    """``(span id, label)`` from the root run down to this run (the last one is this run's)."""
    name: str | None = None
    session_chosen: bool = True
    """False when ``session_id`` is the root run id (a per-invocation fallback), not caller-chosen."""


class AIlinkCallbackHandler(BaseCallbackHandler):
    """Tracks the session and span of every live run, keyed by run id (thread-safe).

    Pass it in ``config={"callbacks": [AIlinkCallbackHandler()]}``: every AIlink tool and
    ``ChatAIlink`` call of the invocation then shares one session (metadata
    ``ailink_session_id`` → LangGraph ``thread_id`` → the root run id) and sends the path of
    span ids from the root run to itself, so the gateway can rebuild the run tree. One instance
    may serve concurrent invocations; entries are dropped when their run ends.
    """

    run_inline: bool = True
    raise_error: bool = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._runs: dict[UUID, RunInfo] = {}

    def __repr__(self) -> str:
        return f"AIlinkCallbackHandler(live_runs={len(self._runs)})"

    # -- queries -----------------------------------------------------------------------------
    def run_info(self, run_id: UUID) -> RunInfo | None:
        """The live run ``run_id``, if this handler saw it start."""
        with self._lock:
            return self._runs.get(run_id)

    def session_id(self, run_id: UUID) -> str | None:
        """The session of the live run ``run_id``."""
        info = self.run_info(run_id)
        return info.session_id if info is not None else None

    # -- bookkeeping -------------------------------------------------------------------------
    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        name: str | None,
        kind: str = "",
    ) -> None:
        metadata = metadata or {}
        span = span_id_from(run_id)
        label = f"{kind}:{name}" if kind and name else (name or kind or "run")
        with self._lock:
            parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
            explicit = metadata.get(SESSION_METADATA_KEY) or metadata.get("thread_id")
            if explicit:
                session, chosen = str(explicit), True
            elif parent is not None:
                session, chosen = parent.session_id, parent.session_chosen
            else:
                session, chosen = str(run_id), False  # this run is the root of what the handler sees
            path = (*parent.span_path, (span, label)) if parent is not None else ((span, label),)
            self._runs[run_id] = RunInfo(run_id, parent_run_id, session, span, path, name, chosen)

    def _end(self, run_id: UUID) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    # -- LangChain's callbacks: runs of every kind start and end the same way -------------------
    on_chain_start = _on_start("")
    on_chat_model_start = on_llm_start = _on_start("llm")
    on_tool_start = _on_start("tool")
    on_retriever_start = _on_start("retriever")

    def _on_end(self, *args: Any, run_id: UUID, **kwargs: Any) -> None:
        """Forget a run that finished, failed or was interrupted."""
        self._end(run_id)

    on_chain_end = on_chain_error = on_llm_end = on_llm_error = _on_end
    on_tool_end = on_tool_error = on_retriever_end = on_retriever_error = _on_end
