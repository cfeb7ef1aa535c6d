"""Where a LlamaIndex run is: its AIlink session id and span, read from LlamaIndex's own context.

Shared by ``llama_index.tools.ailink`` and ``llama_index.llms.ailink`` (the LLM package imports
it from here: the tools package never imports openai, so the dependency points this way).

Session id, first match wins:

1. ``with ailink_session(...)`` (an ``instrument_tags`` block, so it reaches every step, span and
   event of the runs started inside it);
2. an open ``ailink.trace(...)`` block;
3. the workflow run id (the ``llamaindex.run_id`` tag of a ``Workflow``/``FunctionAgent`` run);
4. the root span of the current LlamaIndex call tree (one query, one ``chat``);
5. a new id.

The first two are caller-chosen; the others are per-execution fallbacks (a resumed workflow
gets a new run id). Span ids come from LlamaIndex's active span (``Class.method-<uuid>``)
through ``ailink.adapters.span_id_from`` (16 hex), so the gateway can rebuild the tree of one run.
The tool-call id of an agent's tool call (``ToolCall.tool_id``) is read from the bound
arguments of the workflow step that runs it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator, Mapping
from inspect import BoundArguments
from typing import Any

from llama_index.core.agent.workflow.workflow_events import ToolCall
from llama_index_instrumentation import get_dispatcher
from llama_index_instrumentation.dispatcher import active_instrument_tags, instrument_tags
from llama_index_instrumentation.span import BaseSpan, active_span_id
from llama_index_instrumentation.span_handlers import BaseSpanHandler

from ailink.adapters import CallContext, TraceContext, choose_session, span_id_from, span_path_properties

__all__ = [
    "RUN_ID_TAG",
    "SESSION_TAG",
    "ailink_session",
    "call_context",
    "current_session_id",
    "trace_context",
    "track_root_spans",
]

#: The instrument tag ``ailink_session`` sets.
SESSION_TAG = "ailink.session_id"
USER_TAG = "ailink.user_id"
PROPERTIES_TAG = "ailink.properties"
#: The tag LlamaIndex workflows set for the whole run (stable across ``wait_for_event`` replays).
RUN_ID_TAG = "llamaindex.run_id"


@contextlib.contextmanager
def ailink_session(
    session_id: str | None = None,
    *,
    user_id: str | None = None,
    properties: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """Run LlamaIndex code under one AIlink session; yields the session id.

    Implemented with LlamaIndex ``instrument_tags``: every query, agent run, LLM call and tool
    call started inside the block (including workflow steps running in other tasks) sends
    ``X-Session-Id: <session_id>``, and tool idempotency keys are scoped to it. A new id is
    generated when none is given.
    """
    session = session_id or f"sess_{secrets.token_hex(12)}"
    tags: dict[str, Any] = {**active_instrument_tags.get(), SESSION_TAG: session}
    if user_id is not None:
        tags[USER_TAG] = user_id
    if properties:
        tags[PROPERTIES_TAG] = {**tags.get(PROPERTIES_TAG, {}), **properties}
    with instrument_tags(tags):
        yield session


class _Span(BaseSpan):
    """An open span, with the agent tool call its step runs (``(tool name, tool id)``), if any."""

    tool_call: tuple[str, str] | None = None


def _tool_call_of(bound_args: BoundArguments) -> tuple[str, str] | None:
    for value in bound_args.arguments.values():
        if isinstance(value, ToolCall) and value.tool_id:
            return value.tool_name, value.tool_id
    return None


class _RootSpanTracker(BaseSpanHandler[_Span]):
    """Remembers the parent of every open LlamaIndex span, so the root of the current one is known,
    and the agent tool call a span's workflow step handles.

    LlamaIndex has no API for the root span of a call tree, nor does it pass a tool its call id;
    this handler is added once to the root dispatcher and keeps nothing after a span closes.
    """

    @classmethod
    def class_name(cls) -> str:
        return "AIlinkRootSpanTracker"

    def new_span(
        self,
        id_: str,
        bound_args: BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> _Span | None:
        return _Span(id_=id_, parent_id=parent_span_id, tool_call=_tool_call_of(bound_args))

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> _Span | None:
        return self.open_spans.get(id_)

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> _Span | None:
        return self.open_spans.get(id_)

    def ancestry(self, span_id: str) -> list[str]:
        """The open ancestors of ``span_id``, outermost first, ending with ``span_id`` itself."""
        with self.lock:
            chain = [span_id]
            while True:
                span = self.open_spans.get(chain[-1])
                parent = span.parent_id if span is not None else None
                if parent is None or parent in chain:
                    return chain[::-1]
                chain.append(parent)

    def root_of(self, span_id: str) -> str:
        """The outermost open ancestor of ``span_id`` (itself when it has none)."""
        return self.ancestry(span_id)[0]

    def tool_call_id(self, span_id: str, tool_name: str) -> str | None:
        """The id of the innermost agent tool call of ``tool_name`` that ``span_id`` runs under."""
        for span in reversed(self.ancestry(span_id)):
            found = self.open_spans.get(span)
            if found is not None and found.tool_call is not None and found.tool_call[0] == tool_name:
                return found.tool_call[1]
        return None


_tracker: _RootSpanTracker | None = None
_tracker_lock = threading.Lock()


def track_root_spans() -> None:
    """Add the root-span tracker to LlamaIndex's root dispatcher (once per process)."""
    global _tracker
    with _tracker_lock:
        if _tracker is None:
            tracker = _RootSpanTracker(open_spans={}, completed_spans=[], dropped_spans=[], current_span_ids={})
            get_dispatcher().add_span_handler(tracker)
            _tracker = tracker


def _root_span(span_id: str) -> str:
    return _tracker.root_of(span_id) if _tracker is not None else span_id


def _session() -> tuple[str, bool]:
    """The session id of the running code and whether the caller chose it (see the module docstring)."""
    tags = active_instrument_tags.get()
    span = active_span_id.get()
    return choose_session(tags.get(SESSION_TAG), fallbacks=(tags.get(RUN_ID_TAG), _root_span(span) if span else None))


def current_session_id() -> str:
    """The AIlink session id of the running LlamaIndex code (see the module docstring for the order)."""
    return _session()[0]


def _properties(tags: Mapping[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"framework": "llamaindex", **_span_path()}
    run_id = tags.get(RUN_ID_TAG)
    if isinstance(run_id, str) and run_id:
        properties["run_id"] = run_id
    extra = tags.get(PROPERTIES_TAG)
    if isinstance(extra, Mapping):
        properties.update(extra)
    return properties


def _span_path() -> dict[str, Any]:
    """``span_path`` properties: the LlamaIndex spans from the root down to the active one."""
    span = active_span_id.get()
    if not span:
        return {}
    chain = _tracker.ancestry(span) if _tracker is not None else [span]
    return span_path_properties([(span_id_from(s), s.partition("-")[0]) for s in chain])


def _parent_span_id() -> str | None:
    span = active_span_id.get()
    return span_id_from(span) if span else None


def _user_id(tags: Mapping[str, Any]) -> str | None:
    user = tags.get(USER_TAG)
    return user if isinstance(user, str) and user else None


def trace_context() -> TraceContext:
    """The trace context of the running LlamaIndex code: the ``context_provider`` of the LLM's
    HTTP clients, consulted for every request made outside an ``ailink.trace`` block."""
    tags = active_instrument_tags.get()
    return TraceContext(
        session_id=current_session_id(),
        parent_span_id=_parent_span_id(),
        properties=_properties(tags),
        user_id=_user_id(tags),
    )


def call_context(tool_name: str) -> CallContext:
    """The ``CallContext`` of a call of tool ``tool_name`` made by the running LlamaIndex code.

    ``call_id`` is the agent's tool-call id when an agent workflow step runs the call (none for
    direct calls). The core derives the idempotency key from (session, call id, tool name,
    canonical arguments); a fallback session (workflow run id, root span) is left out when
    there is a call id, so a step re-run in a resumed workflow (a new run id) re-attaches to
    what the same tool call already did. Without a call id the key is scoped to the session:
    stable when a workflow step replays after ``wait_for_event``, shared by identical actions
    within one session.
    """
    tags = active_instrument_tags.get()
    session, chosen = _session()
    span = active_span_id.get()
    call_id = _tracker.tool_call_id(span, tool_name) if span and _tracker is not None else None
    return CallContext(
        session_id=session,
        parent_span_id=_parent_span_id(),
        call_id=call_id,
        tool_call_id=call_id,
        properties=_properties(tags),
        user_id=_user_id(tags),
        stable_session=chosen or call_id is None,
    )
