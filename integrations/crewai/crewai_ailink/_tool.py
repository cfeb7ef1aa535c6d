"""``AIlinkTool``: a gateway-proxied API as a CrewAI tool (importing this module imports crewai).

Translation only: the CrewAI step → :class:`~ailink.adapters.CallContext`, approvals → events on
``crewai_event_bus`` (:class:`CrewAIDriver`; CrewAI cannot pause a tool, so the call waits), the
core's result → the tool's text or a :class:`~crewai.tools.ToolFailure`.
"""

from __future__ import annotations

from typing import Any

from crewai.events import crewai_event_bus
from crewai.events.event_listener import event_listener
from crewai.execution import get_execution_uuid
from crewai.tools import BaseTool, EnvVar, ToolFailure
from crewai.types.callback import SerializableCallable
from pydantic import ConfigDict, Field, model_validator

from ailink.adapters import (
    ApprovalPending,
    ApprovalResolved,
    CallContext,
    GatewayTool,
    ToolDriver,
    ToolResult,
    call_arguments,
)
from crewai_ailink._context import StepInfo, call_context, current_step, ensure_hooks
from crewai_ailink._events import AIlinkApprovalPendingEvent, AIlinkApprovalResolvedEvent

__all__ = ["AIlinkTool", "AIlinkToolOutput", "CrewAIDriver", "cache_successes_only", "gateway_env_vars"]


def gateway_env_vars() -> list[EnvVar]:
    """The environment variables the tool reads when it is not given ``token=`` / ``gateway_url=``."""
    return [
        EnvVar(name="AILINK_API_KEY", required=False,
               description="The AIlink virtual token (ailink_v1_...) of the tool's calls, unless token= is given."),
        EnvVar(name="AILINK_GATEWAY_URL", required=False,
               description="The AIlink gateway's URL, unless gateway_url= is given (default: a local gateway)."),
    ]


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
    if result.ok:
        return AIlinkToolOutput(result.content, result.artifact)
    return ToolFailure(
        message=result.content,
        code=result.error_code,
        retryable=result.retryable,
        details={
            "status": result.outcome.value,
            "approval_id": result.approval_id,
            "policy": result.policy,
            "reason": result.reason,
            "status_code": result.status_code,
            "idempotency_key": result.idempotency_key,
            "request_id": result.request_id,
        },
    )


class CrewAIDriver(ToolDriver):
    """Approval events on ``crewai_event_bus``, naming the agent, task and session of the call."""

    def __init__(self, source: Any, step: StepInfo, session_id: str | None) -> None:
        self.source = source
        self.common: dict[str, Any] = {"session_id": session_id, "task_id": step.task_id, "task_name": step.task_name,
                       "agent_role": step.agent_role, "agent_id": step.agent_id}

    def emit(self, event: ApprovalPending | ApprovalResolved) -> None:
        data = event.to_dict()
        if isinstance(event, ApprovalPending):
            crewai_event_bus.emit(self.source, AIlinkApprovalPendingEvent(
                tool_name=event.tool, approval_id=event.approval_id, policy=data["policy"],
                expires_at=data["expires_at"], summary=data["summary"], **self.common))
        else:
            crewai_event_bus.emit(self.source, AIlinkApprovalResolvedEvent(
                tool_name=event.tool, approval_id=event.approval_id, outcome=data["status"],
                status_code=data["status_code"], **self.common))
        _show_in_verbose_output(event)


def _show_in_verbose_output(event: ApprovalPending | ApprovalResolved) -> None:
    """A panel in a verbose crew's console, between CrewAI's own tool panels: the approval id and how to
    decide it while the tool waits, then the outcome (nothing unless the crew is ``verbose``)."""
    formatter = event_listener.formatter
    if not formatter.verbose:
        return
    if isinstance(event, ApprovalPending):
        summary = event.pending.summary
        request = f"{summary.get('method', '')} {summary.get('path', '')}".strip() or "-"
        content = formatter.create_status_content(
            "Waiting for a human decision", event.tool, "yellow", Approval=event.approval_id, Request=request,
            Policy=event.pending.policy or "-", Decide=event.how_to_decide())
        formatter.print_panel(content, "AIlink approval pending", "yellow")
    else:
        ok = event.result.ok
        content = formatter.create_status_content(
            "Approval ended", event.tool, "green" if ok else "red", Approval=event.approval_id,
            Outcome=event.result.outcome.value)
        formatter.print_panel(content, "AIlink approval resolved", "green" if ok else "red")


class AIlinkTool(BaseTool):
    """A CrewAI tool whose calls go through the AIlink gateway (wraps :class:`ailink.adapters.GatewayTool`).

    Agents call the blocking :meth:`_run` (also under ``akickoff``); :meth:`_arun` serves direct
    ``await tool.arun(...)`` callers. Both use the core's single flow: validation, idempotency
    key, headers, approval wait. Every outcome but success comes back as a
    :class:`crewai.tools.ToolFailure` (gateway and network failures included); the tool never
    raises for them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    gateway: GatewayTool = Field(exclude=True, repr=False, description="The wrapped core tool.")
    env_vars: list[EnvVar] = Field(default_factory=gateway_env_vars,
                                   description="The environment variables the tool reads (CrewAI's tool metadata).")
    cache_function: SerializableCallable = Field(
        default=cache_successes_only,
        description="Only successful results are cached; failures and approval waits never are.",
    )
    ailink_metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="The core's facts about the tool (for a generated tool: its operation and how the "
                    "token's policies gate it, known before any call).",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_gateway(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("gateway"), GatewayTool):
            gateway = data["gateway"]
            data = {**gateway.tool_fields(), "ailink_metadata": gateway.tool_metadata(), **data}
        return data

    def model_post_init(self, __context: Any) -> None:
        super().model_post_init(__context)
        ensure_hooks()

    def _validate_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # The core validates (and explains invalid arguments to the model as a ToolFailure),
        # so CrewAI's own check, which would raise, is skipped.
        return dict(kwargs)

    def _translate(self) -> tuple[CallContext, CrewAIDriver]:
        step = current_step(self.name)
        return call_context(step), CrewAIDriver(self, step, get_execution_uuid())

    def _run(self, *args: Any, **kwargs: Any) -> AIlinkToolOutput | ToolFailure:
        """Execute the call and wait for an approval if the gateway asks for one (blocking).

        The arguments are keywords; a single positional value (a JSON text, or anything else a
        caller passes) is handed to the core as is, which refuses what is not an object.
        """
        context, driver = self._translate()
        return to_crewai_result(self.gateway.run(call_arguments(args, kwargs), context, driver))

    async def _arun(self, *args: Any, **kwargs: Any) -> AIlinkToolOutput | ToolFailure:
        """The asyncio twin of :meth:`_run`."""
        context, driver = self._translate()
        return to_crewai_result(await self.gateway.arun(call_arguments(args, kwargs), context, driver))
