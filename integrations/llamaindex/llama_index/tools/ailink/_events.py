"""Events the AIlink tools emit: workflow stream events, HITL events and instrumentation events."""

from __future__ import annotations

from typing import Any

from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.workflow import Event, HumanResponseEvent, InputRequiredEvent
from llama_index_instrumentation import get_dispatcher
from pydantic import Field

__all__ = [
    "AIlinkApprovalPending",
    "AIlinkApprovalPendingEvent",
    "AIlinkApprovalRequired",
    "AIlinkApprovalResolvedEvent",
    "AIlinkApprovalResponse",
    "dispatcher",
]

dispatcher = get_dispatcher("llama_index.tools.ailink")


class AIlinkApprovalPending(Event):
    """Written to the workflow stream when a tool call starts waiting for a human decision
    (``on_approval="wait"``): informational, the tool keeps waiting by itself."""

    tool_name: str
    approval_id: str
    summary: dict[str, Any] = Field(default_factory=dict)
    policy: str | None = None
    expires_at: str | None = None
    message: str = ""


class AIlinkApprovalRequired(InputRequiredEvent):
    """Written to the workflow stream when a tool call pauses the workflow until a human
    decides (``on_approval="event"``). Answer with :class:`AIlinkApprovalResponse` carrying
    the same ``approval_id`` (``handler.ctx.send_event(...)``) once the approval is decided."""

    tool_name: str
    approval_id: str
    summary: dict[str, Any] = Field(default_factory=dict)
    policy: str | None = None
    expires_at: str | None = None
    message: str = ""


class AIlinkApprovalResponse(HumanResponseEvent):
    """Resumes a workflow paused on :class:`AIlinkApprovalRequired`.

    By default the decision is the gateway's (its inbox, CLI or admin API): this event tells the paused
    tool to look again. The tool re-sends its request with the same idempotency key and returns what
    the gateway holds: the stored result, the rejection or the timeout (and waits, within its approval
    timeout, if the approval is in fact still pending).

    ``reject=True`` rejects the call here: the tool withdraws the approval at the gateway (``cancelled``:
    no reviewer can approve it any more) and the model reads that it was rejected, with ``note`` as the
    reason. If a reviewer approved it first, the action has run and the model reads its result.
    """

    approval_id: str
    note: str | None = None
    reject: bool = False


class AIlinkApprovalPendingEvent(BaseEvent):
    """Instrumentation event: a tool call is waiting for approval ``approval_id``."""

    tool_name: str
    approval_id: str
    summary: dict[str, Any] = Field(default_factory=dict)
    policy: str | None = None
    expires_at: str | None = None

    @classmethod
    def class_name(cls) -> str:
        return "AIlinkApprovalPendingEvent"


class AIlinkApprovalResolvedEvent(BaseEvent):
    """Instrumentation event: the approval a tool call waited for is settled.

    ``outcome`` is the tool outcome (``ok``, ``rejected``, ``timed_out``, ...).
    """

    tool_name: str
    approval_id: str
    outcome: str
    status_code: int | None = None

    @classmethod
    def class_name(cls) -> str:
        return "AIlinkApprovalResolvedEvent"
