"""A gateway-proxied API as an Agents SDK ``FunctionTool`` over ``ailink.adapters.GatewayTool``.

Translation only: the SDK's tool call → :class:`~ailink.adapters.CallContext` (the tool-call id, the
trace's session and spans), approvals → custom spans in the SDK's trace and, with
``on_approval="interrupt"``, the run's native interruption (``needs_approval``), the core's result →
the tool's output text. The SDK's own ``state.reject(item)`` never calls the tool again, so
:func:`reject` rejects in the run state and withdraws the gateway approval together.
"""

from __future__ import annotations

import contextvars
import warnings
from typing import Any, Literal

from agents import FunctionTool, RunContextWrapper, RunState, ToolApprovalItem
from agents.tool_context import ToolContext
from agents.tracing import custom_span
from typing_extensions import Unpack

from agents_ailink._context import call_context, paused_call_context
from ailink.adapters import (
    ApprovalPending,
    ApprovalResolved,
    GatewayTool,
    GatewayToolOptions,
    OpenAPIToolsOptions,
    PauseRequest,
    ToolDriver,
    ToolResult,
    gateway_tool,
    gateway_tools,
)

__all__ = ["APPROVAL_PENDING_SPAN", "APPROVAL_RESOLVED_SPAN", "AIlinkToolOutput", "AgentsDriver", "openai_agents_tool",
           "openai_agents_tools", "reject"]

#: Name of the custom span (in the run's trace) opened when a call starts waiting for a human.
APPROVAL_PENDING_SPAN = ApprovalPending.name
#: Name of the custom span opened when that approval has ended (approved, rejected, timed out).
APPROVAL_RESOLVED_SPAN = ApprovalResolved.name

OnApproval = Literal["wait", "interrupt"]


class _Interrupted(Exception):
    """Raised by the driver at the pause point of the first run: the SDK then interrupts the run."""


class AIlinkToolOutput(str):
    """The text the model reads; ``.artifact`` holds the core's ``ToolResult.artifact`` and
    ``.is_error`` says whether the call failed (``ToolCallOutputItem.output`` of the run)."""

    artifact: dict[str, Any]
    is_error: bool

    def __new__(cls, content: str, artifact: dict[str, Any] | None = None, is_error: bool = False) -> AIlinkToolOutput:
        output = super().__new__(cls, content)
        output.artifact, output.is_error = dict(artifact or {}), is_error
        return output

    @classmethod
    def of(cls, result: ToolResult) -> AIlinkToolOutput:
        return cls(result.content, result.artifact, result.is_error)


class AgentsDriver(ToolDriver):
    """Approvals the Agents SDK way: custom spans in the run's trace; with ``approvals="pause"``, the
    first run's pause interrupts the run and a run resumed after ``RunState.approve`` re-sends."""

    still_pending = "wait"

    def __init__(self, approvals: Literal["wait", "pause"], *, first_run: bool) -> None:
        self.approvals = approvals
        self.first_run = first_run

    def emit(self, event: ApprovalPending | ApprovalResolved) -> None:
        with custom_span(event.name, data=event.to_dict()):
            pass

    def pause(self, request: PauseRequest) -> Any:
        if self.first_run:
            raise _Interrupted(request.approval_id)
        return True  # resumed (the run state approved this call): re-send with the same key


# The result of a call that ``needs_approval`` already sent and that needs no approval, for the
# SDK's invocation of the tool right after it (same task, so a context variable carries it).
_settled: contextvars.ContextVar[tuple[str, ToolResult] | None] = contextvars.ContextVar(
    "agents_ailink_settled", default=None)


class _GatewayFunction:
    """The ``on_invoke_tool`` and ``needs_approval`` of one gateway tool."""

    def __init__(self, gateway: GatewayTool, on_approval: OnApproval) -> None:
        self.gateway = gateway
        self.name = gateway.action.name
        self.tool: FunctionTool | None = None
        self.interrupt = on_approval == "interrupt"

    async def needs_approval(self, run: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
        """First evaluation of a call: send it; a pending approval interrupts the run (True)."""
        if run.get_approval_status(self.name, call_id) is not None:
            return True  # decided in the run state: approved → the SDK invokes the tool, which re-sends
        if self.tool is not None and self.tool.tool_input_guardrails:
            warnings.warn(f"AIlink tool {self.name!r}: on_approval='interrupt' sends the call before tool input "
                          "guardrails run; with guardrails the call waits for approvals instead",
                          RuntimeWarning, stacklevel=2)
            return False
        try:
            result = await self.gateway.arun(params, call_context(self.name, call_id, None),
                                             AgentsDriver("pause", first_run=True))
        except _Interrupted:
            return True
        _settled.set((call_id, result))
        return False

    async def invoke(self, context: ToolContext[Any], arguments: str) -> AIlinkToolOutput:
        settled = _settled.get()
        if settled is not None and settled[0] == context.tool_call_id:
            _settled.set(None)
            return AIlinkToolOutput.of(settled[1])
        agent = context.agent.name if context.agent is not None else None
        driver = AgentsDriver("pause" if self.interrupt else "wait", first_run=False)
        result = await self.gateway.arun(arguments, call_context(self.name, context.tool_call_id, agent), driver)
        return AIlinkToolOutput.of(result)


def _gateway_function(item: ToolApprovalItem) -> _GatewayFunction | None:
    """The AIlink tool an interruption is about (None for any other tool)."""
    tools = item.agent.tools if item.agent is not None else []
    for tool in tools:
        function = getattr(getattr(tool, "on_invoke_tool", None), "__self__", None)
        if isinstance(function, _GatewayFunction) and function.name == item.tool_name:
            return function
    return None


def _raw_field(raw: Any, name: str) -> Any:
    return raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)


async def reject(state: RunState[Any, Any], item: ToolApprovalItem, *, message: str | None = None) -> ToolResult | None:
    """THE way to reject an interruption of a run: ``state.reject(item)`` plus, for an AIlink tool, the
    withdrawal of its gateway approval (``cancelled``: a reviewer who approves it later changes nothing).

    The SDK's ``state.reject`` alone never calls the tool again, so the approval would stay pending in
    the gateway's inbox and run if a reviewer approved it. Call this where the run is resumed (on the
    ``RunState`` it resumes from, with its ``ailink.trace`` block if it uses one): the call is re-sent
    with the idempotency key it was sent with, re-attaches to its approval, and the approval is
    withdrawn. The model then reads that the call was rejected and not performed, with ``message``
    (an :class:`AIlinkToolOutput` in the run's ``ToolCallOutputItem``).

    Returns the core's result: REJECTED (or TIMED_OUT: it expired first); OK if a reviewer approved it
    first: the action has run, so the call is approved in the run state instead and the resumed run
    reads its stored result. For another tool's interruption: ``state.reject(item)``, returns None.
    Raises :class:`ailink.ApprovalPendingError` if the approval could not be withdrawn (the gateway
    unreachable): nothing is decided in the run state, so the run would stop on the call again.
    """
    function = _gateway_function(item)
    call_id = _raw_field(item.raw_item, "call_id")
    if function is None or not isinstance(call_id, str):
        state.reject(item, rejection_message=message)
        return None
    context = paused_call_context(function.name, call_id, getattr(state, "_trace_state", None))
    result = await function.gateway.areject(_raw_field(item.raw_item, "arguments"), context, message)
    if result.ok:
        state.approve(item)
    else:
        state.reject(item, rejection_message=AIlinkToolOutput.of(result))
    return result


def openai_agents_tool(*, on_approval: OnApproval = "wait", **options: Unpack[GatewayToolOptions]) -> FunctionTool:
    """An API behind the AIlink gateway as an Agents SDK ``FunctionTool``.

    ``options`` are :class:`ailink.adapters.GatewayToolOptions`. The model fills in ``method``,
    ``path``, ``query`` and ``body``; every outcome comes back as text the model reads (the tool never
    raises for a gateway or network failure), an :class:`AIlinkToolOutput` carrying the details.

    ``on_approval="wait"`` (default): a call that needs a human waits for the decision in the tool.
    ``on_approval="interrupt"``: the run stops with the call in ``result.interruptions``; once the
    reviewer decided, ``state.approve(item)`` and run again (from ``result.to_state()``, or a
    ``RunState`` restored from JSON in another process): the tool re-sends with the same idempotency
    key and returns what the gateway decided, so the action runs at most once. To reject the call
    yourself, ``await reject(state, item)`` (not ``state.reject``: it would leave the approval pending).
    """
    _check_on_approval(on_approval)
    return _function_tool(gateway_tool(**options), on_approval)


def openai_agents_tools(
    *, on_approval: OnApproval = "wait", **options: Unpack[OpenAPIToolsOptions]
) -> list[FunctionTool]:
    """One Agents SDK ``FunctionTool`` per operation of an OpenAPI document (needs ``ailink-sdk[openapi]``).

    ``options`` are :class:`ailink.adapters.OpenAPIToolsOptions` (``openapi``, ``token``, filters,
    ``policies``/``admin``, ...). Each tool's ``params_json_schema`` is the operation's JSON Schema
    (checked again by the core before anything is sent) and its description says when the token's
    policies ask a human first. Approvals, outputs and idempotency are those of
    :func:`openai_agents_tool` (``on_approval="interrupt"`` interrupts the run).
    """
    _check_on_approval(on_approval)
    return [_function_tool(gateway, on_approval) for gateway in gateway_tools(**options)]


def _check_on_approval(on_approval: str) -> None:
    if on_approval not in ("wait", "interrupt"):
        raise ValueError("on_approval must be 'wait' or 'interrupt'")


def _function_tool(gateway: GatewayTool, on_approval: OnApproval) -> FunctionTool:
    function = _GatewayFunction(gateway, on_approval)
    fields = gateway.tool_fields(json_schema=True)
    tool = FunctionTool(
        name=fields["name"],
        description=fields["description"],
        params_json_schema=fields["args_schema"],
        on_invoke_tool=function.invoke,
        strict_json_schema=False,  # free-form objects (``body``, ``query``, an operation's open schemas)
        needs_approval=function.needs_approval if on_approval == "interrupt" else False,
    )
    function.tool = tool
    return tool
