"""One tool call, approval lifecycle included, as a sans-I/O flow (written once for every framework).

Besides sending and sleeping, the flow yields the few steps where a framework must act, as
:class:`~ailink._flow.Notify` steps calling the adapter's :class:`ToolDriver`:

* :class:`ApprovalPending`: the action waits for a human (the adapter emits its framework's event);
* :class:`PauseRequest`: pause here (LangGraph ``interrupt()``, LlamaIndex ``ctx.wait_for_event``);
  the driver raises its framework's control-flow exception on the first run and returns the
  resume value on the replayed run (a :class:`Rejection` when the application rejected the call
  in the framework: the flow then withdraws the approval), or answers :data:`CANNOT_PAUSE`;
* :class:`ApprovalResolved`: the approval this call announced or paused for has ended.

Replaying frameworks re-run the whole tool after a pause: the re-sent request carries the same
idempotency key, so the gateway re-attaches it to the same approval and the action runs once.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx

from ailink._approval import (
    PendingApproval,
    await_decision,
    claim,
    decide_hint,
    is_pending_response,
    send_proxied,
    withdraw,
)
from ailink._config import ClientConfig
from ailink._errors import AIlinkError, json_or_none
from ailink._flow import Flow, Notify
from ailink._otel import ToolSpan
from ailink._retry import idempotency_key_of
from ailink._tools.action import ParsedCall, ToolAction
from ailink._tools.result import (
    ToolOutcome,
    ToolResult,
    error_result,
    not_withdrawn_result,
    ok_result,
    pending_result,
    withdrawn_result,
)

#: What a call that must wait for a human does: wait inside the call, pause the framework, or
#: return the PENDING result at once (calling again with the same context re-attaches).
ApprovalHandling = Literal["wait", "pause", "return"]


class _CannotPause:
    def __repr__(self) -> str:
        return "CANNOT_PAUSE"


#: What :meth:`ToolDriver.pause` answers when its framework cannot pause here: the call waits instead.
CANNOT_PAUSE: Any = _CannotPause()


@dataclass(frozen=True)
class ApprovalPending:
    """Event: the call's action waits for a human decision (emitted once per pause point)."""

    #: The name a framework's event or span carries (``ailink.approval.pending``).
    name: ClassVar[str] = "ailink.approval.pending"

    tool: str
    pending: PendingApproval
    idempotency_key: str | None

    @property
    def approval_id(self) -> str:
        return self.pending.approval_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields for a framework event: tool, approval id, expiry, policy, summary, key, message."""
        return {
            "tool": self.tool,
            **self.pending.to_dict(),
            "idempotency_key": self.idempotency_key or self.pending.idempotency_key,
            "message": self.pending.describe(),
        }

    def how_to_decide(self) -> str:
        """How a reviewer decides it: the CLI commands, and the inbox page when the gateway names one."""
        return decide_hint(self.approval_id, self.pending.review_url)


@dataclass(frozen=True)
class PauseRequest:
    """Step: pause the run until a human decides ``approval_id``.

    ``pending`` is None when a replayed run collects the resume value of an earlier pause whose
    approval is already decided; ``message`` is the text a model (or a person) reads.
    """

    tool: str
    approval_id: str
    idempotency_key: str | None
    message: str
    pending: PendingApproval | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields for an interrupt payload or a waiter event."""
        details = self.pending.to_dict() if self.pending is not None else {"approval_id": self.approval_id}
        return {"tool": self.tool, **details, "idempotency_key": self.idempotency_key, "message": self.message}


@dataclass(frozen=True)
class Rejection:
    """A resume value meaning "rejected in the framework" (LangGraph ``{"type": "reject"}``, a LlamaIndex
    response with ``reject=True``, ...). Returned by :meth:`ToolDriver.pause`, it makes the flow withdraw
    the call's approval at the gateway (``cancelled``: no reviewer can approve it any more) and end the
    call REJECTED, with ``reason`` in the text the model reads. If the gateway had decided first, the
    call ends with that decision (approved: performed, the stored result)."""

    reason: str | None = None


@dataclass(frozen=True)
class ApprovalResolved:
    """Event: the approval a call announced or paused for has ended (``result`` says how)."""

    #: The name a framework's event or span carries (``ailink.approval.resolved``).
    name: ClassVar[str] = "ailink.approval.resolved"

    tool: str
    approval_id: str
    result: ToolResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields for a framework event: tool, approval id, status, status code, key, request id."""
        return {
            "tool": self.tool,
            "approval_id": self.approval_id,
            "status": self.result.outcome.value,
            "status_code": self.result.status_code,
            "idempotency_key": self.result.idempotency_key,
            "request_id": self.result.request_id,
        }


class ToolDriver:
    """What a framework adapter contributes to a tool call; the core does everything else.

    Subclass it and override what the framework supports. Each method may return an awaitable,
    which the async runner awaits (so ``async def`` methods work under ``arun``).

    * ``approvals``: what a pending approval does (:data:`ApprovalHandling`); ``"pause"`` calls
      :meth:`pause`.
    * ``still_pending``: after a resume, if the gateway still says pending: ``"pause"`` again
      (LangGraph) or ``"wait"`` in the call (LlamaIndex).
    """

    approvals: ApprovalHandling = "wait"
    still_pending: Literal["pause", "wait"] = "wait"

    def emit(self, event: ApprovalPending | ApprovalResolved) -> Awaitable[None] | None:
        """Publish ``event`` the framework's way (event bus, stream, callbacks). Default: nothing."""
        return None

    def pause(self, request: PauseRequest) -> Any:
        """Pause the run: raise the framework's control-flow exception on the first run, return the
        resume value on the replayed run (a :class:`Rejection` if the application rejected the call);
        or return :data:`CANNOT_PAUSE` (the call then waits)."""
        return CANNOT_PAUSE

    def resumed(self, approval_id: str) -> bool | Awaitable[bool]:
        """True when an earlier run of this call paused on ``approval_id`` and this run replays it
        (frameworks that keep per-step state, e.g. a LlamaIndex ``Context``). Default: False, so a
        replay announces the approval again."""
        return False


def _request(config: ClientConfig, action: ToolAction, call: ParsedCall, key: str | None,
             approval_timeout: float) -> httpx.Request:
    return config.build_request(
        call.method,
        call.full_path,
        params=call.query,
        json=call.body,
        idempotency_key=key,
        headers={"X-AIlink-Tool-Name": action.name},
        approval_timeout=approval_timeout,
    )


def _outcome(action: ToolAction, call: ParsedCall, request: httpx.Request,
             answer: Flow[httpx.Response]) -> Flow[ToolResult]:
    """Map whatever ``answer`` ends with to a :class:`ToolResult` (never raises a gateway error)."""
    key = idempotency_key_of(request)
    try:
        response = yield from answer
        if is_pending_response(response):
            return pending_result(call, key, PendingApproval.from_response(response))
    except AIlinkError as error:
        return error_result(action, call, key, claim(error, request))
    return ok_result(action, call, key, response)


def _withdrawn(config: ClientConfig, action: ToolAction, call: ParsedCall, request: httpx.Request,
               approval_id: str, reason: str | None, approval_timeout: float) -> Flow[ToolResult]:
    """The application rejected the call: withdraw its approval (``DELETE /v1/approvals/{id}``). Withdrawn →
    REJECTED; decided first → what the gateway decided (the re-sent request replays it); the withdrawal
    failed → outcome unknown (a reviewer may still approve it)."""
    key = idempotency_key_of(request)
    try:
        response = yield from withdraw(config, approval_id)
    except AIlinkError as error:
        return not_withdrawn_result(action, call, key, approval_id, error)
    body = json_or_none(response.content)
    if isinstance(body, dict) and body.get("status") == "cancelled":
        return withdrawn_result(call, key, approval_id, reason)
    again = _request(config, action, call, key, approval_timeout)
    return (yield from _outcome(action, call, again, send_proxied(config, again)))


def tool_flow(
    config: ClientConfig,
    action: ToolAction,
    call: ParsedCall,
    key: str | None,
    driver: ToolDriver,
    *,
    approval_timeout: float,
    span: ToolSpan | None = None,
) -> Flow[ToolResult]:
    """Send one validated call and carry it through its approval, if the gateway asks for one.

    Every outcome the gateway or the network can produce is returned, never raised (an ambiguous
    one as :attr:`ToolOutcome.UNKNOWN`, naming the key to re-send with); only the driver's own
    control-flow exceptions (a framework pausing) leave the flow. ``span`` (the call's
    OpenTelemetry span, if any) gets the approval events and a child span per wait.
    """
    span = span or ToolSpan()
    request = _request(config, action, call, key, approval_timeout)
    result = yield from _outcome(action, call, request, send_proxied(config, request))
    approval_id = result.approval_id
    if approval_id is None:
        return result
    pausing = driver.approvals == "pause"
    replayed = pausing and bool((yield Notify(driver.resumed, approval_id)))
    announced = replayed
    if replayed and result.outcome is not ToolOutcome.PENDING:  # decided meanwhile: end the earlier pause
        yield Notify(driver.pause, PauseRequest(action.name, approval_id, result.idempotency_key, result.content))
    while result.outcome is ToolOutcome.PENDING and result.pending is not None:
        if not replayed:
            span.approval_requested(result.pending)
            yield Notify(driver.emit, ApprovalPending(action.name, result.pending, result.idempotency_key))
        announced = True
        if driver.approvals == "return":
            return result
        resume = CANNOT_PAUSE
        if pausing:
            pause = PauseRequest(action.name, result.pending.approval_id, result.idempotency_key,
                                 result.content, result.pending)
            span.pausing_for(pause.approval_id)
            resume = yield Notify(driver.pause, pause)
            span.pausing_for(None)
        if isinstance(resume, Rejection):
            result = yield from _withdrawn(config, action, call, request, result.pending.approval_id, resume.reason,
                                           approval_timeout)
            break
        if resume is not CANNOT_PAUSE:  # resumed: re-send, the gateway re-attaches by key
            replayed = False
            request = _request(config, action, call, key, approval_timeout)
            result = yield from _outcome(action, call, request, send_proxied(config, request))
            if result.outcome is not ToolOutcome.PENDING or driver.still_pending == "pause":
                continue
        if result.pending is not None:
            with span.waiting(result.pending) as waited:
                wait = await_decision(config, request, result.pending, approval_timeout=approval_timeout)
                result = yield from _outcome(action, call, request, wait)
                waited.decided(result)
        break
    if announced or pausing:
        span.approval_decided(result.approval_id or approval_id, result)
        yield Notify(driver.emit, ApprovalResolved(action.name, result.approval_id or approval_id, result))
    return result
