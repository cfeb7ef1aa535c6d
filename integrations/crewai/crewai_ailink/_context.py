"""Which kickoff, task, agent and crew a tool or LLM call runs under.

CrewAI passes nothing but the arguments to a tool, so the toolkit registers a global
``before_tool_call`` hook that copies the agent role, task and crew of the call into a
ContextVar. The hook runs inline, in the tool's own thread and context, right before the
tool, so the tool reads exactly its own call's values (no shared mutable state); an
``after_tool_call`` hook clears it again. Importing this module imports crewai.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass
from typing import Any

from crewai.context import get_current_task_id
from crewai.execution import get_execution_uuid
from crewai.hooks import (
    ToolCallHookContext,
    get_after_tool_call_hooks,
    get_before_tool_call_hooks,
    register_after_tool_call_hook,
    register_before_tool_call_hook,
)
from crewai.utilities.string_utils import sanitize_tool_name

from ailink.adapters import CallContext, TraceContext, new_span_id, span_id_from, span_path_properties
from crewai_ailink._api import chosen_session_id

FRAMEWORK = "crewai"


@dataclass(frozen=True)
class StepInfo:
    """The agent, task and crew of one tool call, as the hook saw them."""

    tool_name: str
    task_id: str | None = None
    task_name: str | None = None
    agent_role: str | None = None
    agent_id: str | None = None
    crew_name: str | None = None

    def properties(self) -> dict[str, Any]:
        """The ``X-Properties`` entries of this step (empty values left out)."""
        values = {
            "agent_role": self.agent_role,
            "task": self.task_name,
            "task_id": self.task_id,
            "crew": self.crew_name,
        }
        return {k: v for k, v in values.items() if v}


_step: contextvars.ContextVar[StepInfo | None] = contextvars.ContextVar("crewai_ailink_step", default=None)
_register_lock = threading.Lock()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _task_name(task: Any) -> str | None:
    if task is None:
        return None
    return _text(getattr(task, "name", None) or getattr(task, "description", None))


def before_tool_call(context: ToolCallHookContext) -> None:
    """Remember the agent, task and crew of the call about to run (for the tool to read)."""
    task, agent, crew = context.task, context.agent, context.crew
    _step.set(
        StepInfo(
            tool_name=context.tool_name,
            task_id=_text(getattr(task, "id", None)),
            task_name=_task_name(task),
            agent_role=_text(getattr(agent, "role", None)),
            agent_id=_text(getattr(agent, "id", None)),
            crew_name=_text(getattr(crew, "name", None)),
        )
    )


def after_tool_call(context: ToolCallHookContext) -> None:
    """Forget the step of the call that just ran (keeps the tool result)."""
    _step.set(None)


def ensure_hooks() -> None:
    """Register the two global hooks once (again if something cleared CrewAI's hook lists)."""
    with _register_lock:
        if before_tool_call not in get_before_tool_call_hooks():
            register_before_tool_call_hook(before_tool_call)
        if after_tool_call not in get_after_tool_call_hooks():
            register_after_tool_call_hook(after_tool_call)


def current_step(tool_name: str) -> StepInfo:
    """The step of the running call of ``tool_name``; without the hook, what CrewAI's context says."""
    step = _step.get()
    if step is not None and step.tool_name == sanitize_tool_name(tool_name):
        return step
    return StepInfo(tool_name=sanitize_tool_name(tool_name), task_id=_text(get_current_task_id()))


def _span_path(session: str | None, task_id: str | None, task_label: str, leaf: tuple[str, str]) -> dict[str, Any]:
    """``span_path`` properties: kickoff → task → this call (a tool call or an LLM call)."""
    path: list[tuple[str, str]] = []
    if session:
        path.append((span_id_from(session), "crew kickoff"))
    if task_id:
        path.append((span_id_from(task_id), task_label))
    return span_path_properties([*path, leaf])


def call_context(step: StepInfo) -> CallContext:
    """The core's view of one tool call: session = the CrewAI execution id, call id = the task id.

    Each call gets its own span under its task's span, so the gateway can draw
    kickoff → task → tool call → request. An execution id CrewAI minted for this kickoff
    (no :func:`ailink_session` around it) changes when the crew is kicked off again, so the
    idempotency key then rests on the task id alone: re-running the same ``Crew`` re-attaches
    to the actions its tasks already performed instead of repeating them.
    """
    session = get_execution_uuid()
    minted = session is not None and session != chosen_session_id()
    span = new_span_id()
    task_label = "task" + (f": {step.task_name[:40]}" if step.task_name else "")
    if step.agent_role:
        task_label += f" ({step.agent_role})"
    properties: dict[str, Any] = {
        "framework": FRAMEWORK,
        **step.properties(),
        **_span_path(session, step.task_id, task_label, (span, f"tool:{step.tool_name}")),
    }
    return CallContext(
        session_id=session,
        call_id=step.task_id,
        parent_span_id=span,
        properties=properties,
        stable_session=not (minted and step.task_id is not None),
    )


def llm_trace_context() -> TraceContext | None:
    """The trace context of an LLM request made inside a kickoff (``None`` outside one)."""
    session = get_execution_uuid()
    task_id = _text(get_current_task_id())
    if session is None and task_id is None:
        return None
    span = new_span_id()
    properties: dict[str, Any] = {"framework": FRAMEWORK, **_span_path(session, task_id, "task", (span, "llm"))}
    if task_id:
        properties["task_id"] = task_id
    return TraceContext(session_id=session, parent_span_id=span, properties=properties)
