"""A gateway-proxied API as a Pydantic AI ``Tool`` over ``ailink.adapters.GatewayTool``.

Translation only: the ``RunContext`` → :class:`~ailink.adapters.CallContext`, approvals → spans of
the run's tracer and, with ``on_approval="defer"``, Pydantic AI's deferred approvals
(``ApprovalRequired`` → ``DeferredToolRequests``, resumed with ``DeferredToolResults``), the core's
result → a ``ToolReturn`` or a failed tool return. A ``ToolDenied`` never calls the tool again, so
:func:`deny` withdraws the gateway approval and gives the ``ToolDenied`` together.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import Any, Literal

from pydantic_ai import ApprovalRequired, DeferredToolRequests, RunContext, Tool, ToolApproved, ToolDenied, ToolReturn
from pydantic_ai.agent import AbstractAgent
from pydantic_ai.exceptions import ToolFailedError
from pydantic_ai.messages import ToolReturnPart
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset
from pydantic_core import SchemaValidator, core_schema
from typing_extensions import Unpack

from ailink.adapters import (
    ApprovalPending,
    ApprovalResolved,
    CallContext,
    GatewayTool,
    GatewayToolOptions,
    OpenAPIToolsOptions,
    PauseRequest,
    ToolDriver,
    ToolResult,
    gateway_tool,
    gateway_tools,
)
from pydantic_ai_ailink._context import call_context

__all__ = [
    "APPROVAL_METADATA_TYPE",
    "APPROVAL_PENDING_SPAN",
    "APPROVAL_RESOLVED_SPAN",
    "PydanticAIDriver",
    "deny",
    "pydantic_ai_tool",
    "pydantic_ai_tools",
]

#: Name of the span (on the run's tracer) started when a call starts waiting for a human.
APPROVAL_PENDING_SPAN = ApprovalPending.name
#: Name of the span started when that approval has ended (approved, rejected, timed out).
APPROVAL_RESOLVED_SPAN = ApprovalResolved.name

#: ``type`` of the metadata an AIlink call's ``ApprovalRequired`` carries (``DeferredToolRequests.metadata``).
APPROVAL_METADATA_TYPE = "ailink.approval"

OnApproval = Literal["wait", "defer"]

#: What Pydantic AI checks before calling the tool: a JSON object (the core validates the rest);
#: anything else (``null``, a list, a number) gets Pydantic AI's retry prompt, not an error in the run.
_JSON_OBJECT = SchemaValidator(core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema()))


def _attributes(data: dict[str, Any]) -> dict[str, str | bool | int | float]:
    """OpenTelemetry attributes (``ailink.<field>``) of an event's fields."""
    return {f"ailink.{key}": value if isinstance(value, (str, bool, int, float)) else json.dumps(value)
            for key, value in data.items() if value is not None}


class PydanticAIDriver(ToolDriver):
    """Approvals the Pydantic AI way: spans on the run's tracer (seen when the agent is instrumented,
    e.g. with Logfire); with ``approvals="pause"``, ``ApprovalRequired`` on the first run, and a
    re-send when the run's ``DeferredToolResults`` approved the call (``ctx.tool_call_approved``)."""

    still_pending = "wait"

    def __init__(self, ctx: RunContext[Any], approvals: Literal["wait", "pause"]) -> None:
        self.ctx = ctx
        self.approvals = approvals

    def emit(self, event: ApprovalPending | ApprovalResolved) -> None:
        self.ctx.tracer.start_span(event.name, attributes=_attributes(event.to_dict())).end()

    def pause(self, request: PauseRequest) -> Any:
        if not self.ctx.tool_call_approved:
            metadata = {"type": APPROVAL_METADATA_TYPE, "session_id": call_context(self.ctx).session_id}
            raise ApprovalRequired(metadata={**metadata, **request.to_dict()})
        return True

    def resumed(self, approval_id: str) -> bool:
        return self.ctx.tool_call_approved


def _returned(ctx: RunContext[Any], result: ToolResult) -> ToolReturn[Any]:
    """The model reads ``content``; the run's message history keeps the artifact as ``metadata``,
    on a failed tool return (``outcome="failed"``) for every outcome but success."""
    if result.ok:
        return ToolReturn(return_value=result.content, metadata=result.artifact)
    raise ToolFailedError(ToolReturnPart(tool_name=ctx.tool_name or "", content=result.content,
                                         tool_call_id=ctx.tool_call_id or "", metadata=result.artifact,
                                         outcome="failed"))


# The gateway tool behind each tool function this module made (how deny() finds a paused call's tool).
_gateways: weakref.WeakKeyDictionary[Callable[..., Any], GatewayTool] = weakref.WeakKeyDictionary()


def _gateway_of(agent: AbstractAgent[Any, Any], name: str) -> GatewayTool | None:
    """The AIlink gateway tool named ``name`` among the agent's toolsets."""
    found: list[GatewayTool] = []

    def visit(toolset: AbstractToolset[Any]) -> None:
        if isinstance(toolset, FunctionToolset):
            found.extend(g for t in toolset.tools.values()
                         if (g := _gateways.get(t.function)) is not None and g.action.name == name)

    for toolset in agent.toolsets:
        toolset.apply(visit)
    return found[0] if found else None


async def deny(agent: AbstractAgent[Any, Any], requests: DeferredToolRequests, tool_call_id: str,
               message: str | None = None) -> ToolDenied | ToolApproved:
    """THE way to reject a deferred call: ``results.approvals[tool_call_id] = await deny(agent, requests,
    tool_call_id, "...")``. For an AIlink call it first withdraws the gateway approval (``cancelled``: a
    reviewer who approves it later changes nothing); ``ToolDenied`` alone never calls the tool again, so
    the approval would stay pending in the gateway's inbox and run if a reviewer approved it.

    ``agent`` is the agent whose run paused (its toolsets hold the tool). The call is re-sent with the
    idempotency key it was sent with (from ``requests.metadata``), re-attaches to its approval, and the
    approval is withdrawn. Returns ``ToolDenied`` with the text the model reads (rejected, not performed,
    ``message``), or ``ToolApproved()`` if a reviewer approved it first: the action has run, and the
    resumed run reads its stored result. Another tool's call: ``ToolDenied(message)``.

    Raises ``ValueError`` when ``tool_call_id`` is not among ``requests.approvals`` or the agent has no
    AIlink tool for it, and :class:`ailink.ApprovalPendingError` if the approval could not be withdrawn
    (the gateway unreachable): deny it again before resuming the run.
    """
    call = next((c for c in requests.approvals if c.tool_call_id == tool_call_id), None)
    if call is None:
        raise ValueError(f"no call with id {tool_call_id!r} awaits approval in these requests")
    metadata = requests.metadata.get(tool_call_id) or {}
    if metadata.get("type") != APPROVAL_METADATA_TYPE:
        return ToolDenied(message) if message else ToolDenied()
    gateway = _gateway_of(agent, str(metadata.get("tool")))
    if gateway is None:
        raise ValueError(f"the agent has no AIlink tool {metadata.get('tool')!r} to withdraw approval "
                         f"{metadata.get('approval_id')!r} with")
    context = CallContext(session_id=metadata.get("session_id"), call_id=tool_call_id,
                          idempotency_key=metadata.get("idempotency_key"), tool_call_id=tool_call_id)
    result = await gateway.areject(call.args_as_dict(), context, message)
    return ToolApproved() if result.ok else ToolDenied(result.content)


def pydantic_ai_tool(*, on_approval: OnApproval = "wait", **options: Unpack[GatewayToolOptions]) -> Tool[Any]:
    """An API behind the AIlink gateway as a Pydantic AI ``Tool``.

    ``options`` are :class:`ailink.adapters.GatewayToolOptions`. The model fills in ``method``,
    ``path``, ``query`` and ``body``; the core validates them. Success is a ``ToolReturn`` (the
    artifact in ``metadata``); every other outcome a failed tool return the model reads.

    ``on_approval="wait"`` (default): a call that needs a human waits for the decision in the tool.
    ``on_approval="defer"``: the call raises ``ApprovalRequired`` (the agent's ``output_type`` must
    include ``DeferredToolRequests``; its ``metadata[tool_call_id]`` holds the approval id); once the
    reviewer decided, run again with the message history and ``DeferredToolResults(approvals={id:
    True})``: the tool re-sends with the same idempotency key and returns what the gateway decided.
    To reject the call yourself, ``approvals={id: await deny(agent, requests, id, "...")}`` (a bare
    ``ToolDenied`` would leave the gateway approval pending).
    """
    _check_on_approval(on_approval)
    return _tool(gateway_tool(**options), on_approval)


def pydantic_ai_tools(*, on_approval: OnApproval = "wait", **options: Unpack[OpenAPIToolsOptions]) -> list[Tool[Any]]:
    """One Pydantic AI ``Tool`` per operation of an OpenAPI document (needs ``ailink-sdk[openapi]``).

    ``options`` are :class:`ailink.adapters.OpenAPIToolsOptions` (``openapi``, ``token``, filters,
    ``policies``/``admin``, ...). Each tool's parameters are the operation's JSON Schema (checked again
    by the core before anything is sent), its description says when the token's policies ask a human
    first, and its ``metadata["ailink"]`` holds the same facts. Approvals, returns and idempotency
    are those of :func:`pydantic_ai_tool` (``on_approval="defer"`` defers to the application).
    """
    _check_on_approval(on_approval)
    return [_tool(gateway, on_approval) for gateway in gateway_tools(**options)]


def _check_on_approval(on_approval: str) -> None:
    if on_approval not in ("wait", "defer"):
        raise ValueError("on_approval must be 'wait' or 'defer'")


def _tool(gateway: GatewayTool, on_approval: OnApproval) -> Tool[Any]:
    approvals: Literal["wait", "pause"] = "pause" if on_approval == "defer" else "wait"

    async def call(ctx: RunContext[Any], /, **arguments: Any) -> ToolReturn[Any]:  # an argument may be named ctx
        result = await gateway.arun(arguments, call_context(ctx), PydanticAIDriver(ctx, approvals))
        return _returned(ctx, result)

    _gateways[call] = gateway
    fields = gateway.tool_fields(json_schema=True)
    tool = Tool.from_schema(call, name=fields["name"], description=fields["description"],
                            json_schema=fields["args_schema"], takes_ctx=True)
    tool.function_schema.validator = _JSON_OBJECT  # ``from_schema`` accepts any JSON value
    tool.metadata = {"ailink": gateway.tool_metadata()}
    return tool
