"""A callback handler that gives every run of a LangChain invocation its AIlink session and span."""

from __future__ import annotations

import threading
from collections.abc import Mapping
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

    # -- starts --------------------------------------------------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chain (graph, node, runnable) run."""
        self._start(run_id, parent_run_id, metadata, kwargs.get("name"))

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chat model run."""
        self._start(run_id, parent_run_id, metadata, _run_name(serialized, kwargs), "llm")

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record an LLM run."""
        self._start(run_id, parent_run_id, metadata, _run_name(serialized, kwargs), "llm")

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a tool run."""
        self._start(run_id, parent_run_id, metadata, _run_name(serialized, kwargs), "tool")

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a retriever run."""
        self._start(run_id, parent_run_id, metadata, _run_name(serialized, kwargs), "retriever")

    # -- ends ----------------------------------------------------------------------------------
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a finished chain run."""
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a failed (or interrupted) chain run."""
        self._end(run_id)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a finished model run."""
        self._end(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a failed model run."""
        self._end(run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a finished tool run."""
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a failed (or interrupted) tool run."""
        self._end(run_id)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a finished retriever run."""
        self._end(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a failed retriever run."""
        self._end(run_id)
