"""``AIlinkTool``: a gateway-proxied API as a CrewAI tool (importing this module imports crewai)."""

from __future__ import annotations

from typing import Any

from crewai.events import crewai_event_bus
from crewai.execution import get_execution_uuid
from crewai.tools import BaseTool, ToolFailure
from crewai.types.callback import SerializableCallable
from pydantic import ConfigDict, Field, model_validator

from ailink import GatewayTool, PendingApproval, ToolOutcome, ToolResult
from crewai_ailink._context import StepInfo, call_context, current_step, ensure_hooks
from crewai_ailink._events import AIlinkApprovalPendingEvent, AIlinkApprovalResolvedEvent

__all__ = ["AIlinkTool", "AIlinkToolOutput", "cache_successes_only"]

_RETRYABLE = (ToolOutcome.TIMED_OUT,)


def cache_successes_only(_args: Any = None, result: Any = None) -> bool:
    """CrewAI ``cache_function``: only executed calls may be cached, never a failure or a wait."""
    return not isinstance(result, ToolFailure)


class AIlinkToolOutput(str):
    """The text the agent sees for an executed call; ``.artifact`` is the core's
    ``ToolResult.artifact`` (status, status code, approval id, idempotency key, body, ...) for
    programs, e.g. an ``after_tool_call`` hook reading ``context.raw_tool_result``."""

    artifact: dict[str, Any]

    def __new__(cls, content: str, artifact: dict[str, Any] | None = None) -> AIlinkToolOutput:
        output = super().__new__(cls, content)
        output.artifact = dict(artifact or {})
        return output


def to_crewai_result(result: ToolResult) -> AIlinkToolOutput | ToolFailure:
    """The executed call's text, or a :class:`ToolFailure` the crew's ``tool_failure_policy`` handles.

    Codes: ``policy_denied``, ``approval_rejected``, ``approval_timeout``, ``invalid_arguments``,
    ``approval_pending``, ``outcome_unknown`` (the action may have happened: never retryable) and
    ``request_failed`` (an error answer, or the gateway unreachable/refusing). ``details``
    holds ``status`` (the core's outcome), ``approval_id``, ``policy``, ``reason``,
    ``status_code``, ``idempotency_key`` and ``request_id``.
    """
    if result.outcome is ToolOutcome.OK:
        return AIlinkToolOutput(result.content, result.artifact)
    status = result.status_code
    retryable = result.outcome in _RETRYABLE or (
        result.outcome is ToolOutcome.ERROR and status is not None and (status == 429 or status >= 500)
    )
    return ToolFailure(
        message=result.content,
        code=result.error_code,
        retryable=retryable,
        details={
            "status": result.outcome.value,
            "approval_id": result.approval_id,
            "policy": result.policy,
            "reason": result.reason,
            "status_code": status,
            "idempotency_key": result.idempotency_key,
            "request_id": result.request_id,
        },
    )


class _ApprovalReporter:
    """Emits the pending event when a wait starts and the resolved event when it ends."""

    def __init__(self, source: Any, tool_name: str, step: StepInfo, session_id: str | None) -> None:
        self.source = source
        self.tool_name = tool_name
        self.step = step
        self.session_id = session_id
        self.approval_id: str | None = None

    def _common(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool_name,
            "session_id": self.session_id,
            "task_id": self.step.task_id,
            "task_name": self.step.task_name,
            "agent_role": self.step.agent_role,
            "agent_id": self.step.agent_id,
        }

    def on_pending(self, pending: PendingApproval) -> None:
        self.approval_id = pending.approval_id
        info = pending.to_dict()
        crewai_event_bus.emit(
            self.source,
            AIlinkApprovalPendingEvent(
                approval_id=pending.approval_id,
                policy=pending.policy,
                expires_at=info["expires_at"],
                summary=info["summary"],
                **self._common(),
            ),
        )

    def resolved(self, result: ToolResult | None) -> None:
        if self.approval_id is None:
            return
        crewai_event_bus.emit(
            self.source,
            AIlinkApprovalResolvedEvent(
                approval_id=self.approval_id,
                outcome=result.outcome.value if result is not None else "error",
                status_code=result.status_code if result is not None else None,
                **self._common(),
            ),
        )


class AIlinkTool(BaseTool):
    """A CrewAI tool whose calls go through the AIlink gateway (wraps :class:`ailink.GatewayTool`).

    Agents call the blocking :meth:`_run` (also under ``akickoff``); :meth:`_arun` serves direct
    ``await tool.arun(...)`` callers. Both use the core's single flow: validation, idempotency
    key, headers, approval wait. Every outcome but success comes back as a
    :class:`crewai.tools.ToolFailure` (gateway and network failures included); the tool never
    raises for them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    gateway: GatewayTool = Field(exclude=True, repr=False, description="The wrapped core tool.")
    cache_function: SerializableCallable = Field(
        default=cache_successes_only,
        description="Only successful results are cached; failures and approval waits never are.",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_gateway(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("gateway"), GatewayTool):
            action = data["gateway"].action
            data = {
                "name": action.name,
                "description": action.description,
                "args_schema": action.args_model,
                **data,
            }
        return data

    def model_post_init(self, __context: Any) -> None:
        super().model_post_init(__context)
        ensure_hooks()

    def _validate_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # The core validates (and explains invalid arguments to the model as a ToolFailure),
        # so CrewAI's own check, which would raise, is skipped.
        return dict(kwargs)

    def _start(self) -> tuple[Any, _ApprovalReporter]:
        step = current_step(self.name)
        context = call_context(step)
        return context, _ApprovalReporter(self, self.gateway.action.name, step, get_execution_uuid())

    def _run(self, *args: Any, **kwargs: Any) -> AIlinkToolOutput | ToolFailure:
        """Execute the call and wait for an approval if the gateway asks for one (blocking).

        The arguments are keywords; a single positional value (a JSON text, or anything else a
        caller passes) is handed to the core as is, which refuses what is not an object.
        """
        context, reporter = self._start()
        result: ToolResult | None = None
        try:
            result = self.gateway.run(_arguments(args, kwargs), context, on_pending=reporter.on_pending)
        finally:
            reporter.resolved(result)
        return to_crewai_result(result)

    async def _arun(self, *args: Any, **kwargs: Any) -> AIlinkToolOutput | ToolFailure:
        """The asyncio twin of :meth:`_run`."""
        context, reporter = self._start()
        result: ToolResult | None = None
        try:
            result = await self.gateway.arun(_arguments(args, kwargs), context, on_pending=reporter.on_pending)
        finally:
            reporter.resolved(result)
        return to_crewai_result(result)


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The raw arguments of one call: the keywords, or the positional value(s) when given."""
    if not args:
        return kwargs
    return args[0] if len(args) == 1 and not kwargs else [*args, kwargs]
