"""Approval events on ``crewai_event_bus``.

Subscribe like any CrewAI event::

    from crewai.events import crewai_event_bus
    from crewai_ailink import AIlinkApprovalPendingEvent

    @crewai_event_bus.on(AIlinkApprovalPendingEvent)
    def notify(source, event):
        print("waiting for", event.approval_id, "requested by", event.agent_role)

Handlers run on CrewAI's handler threads, after the tool has started waiting: they can
notify a reviewer but cannot change the tool call.
"""

from __future__ import annotations

from typing import Any

from crewai.events.base_events import BaseEvent


class AIlinkApprovalPendingEvent(BaseEvent):
    """A gateway call of an AIlink tool is waiting for a human decision.

    ``task_id``, ``task_name``, ``agent_role`` and ``agent_id`` (base fields) name the step.
    """

    type: str = "ailink_approval_pending"
    approval_id: str
    tool_name: str
    session_id: str | None = None
    policy: str | None = None
    expires_at: str | None = None
    summary: dict[str, Any] | None = None


class AIlinkApprovalResolvedEvent(BaseEvent):
    """The wait for an approval ended.

    ``outcome`` is the tool call's outcome (``ok`` when approved and executed, ``rejected``,
    ``timed_out``, ...; ``outcome_unknown`` when contact with the gateway was lost while waiting).
    """

    type: str = "ailink_approval_resolved"
    approval_id: str
    tool_name: str
    outcome: str
    session_id: str | None = None
    status_code: int | None = None
