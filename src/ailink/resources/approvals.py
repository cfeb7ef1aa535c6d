"""Human approvals: list the requests waiting for a decision, approve or reject them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ailink._models import ApprovalDecision, ApprovalRequest
from ailink.resources._base import AsyncResource, Call, SyncResource, async_method, body, many, one, seg, sync_method

__all__ = ["ApprovalsResource", "AsyncApprovalsResource"]

_DECISIONS = {"approved": "approved", "approve": "approved", "rejected": "rejected", "reject": "rejected"}


def _list(project_id: str | None = None, *, status: str | None = None) -> Call[list[ApprovalRequest]]:
    """Approvals, newest first; ``status="pending"`` for those awaiting a decision, or a comma list
    (``"approved,rejected"``). Filtered here too: the real gateway ignores the parameter and lists
    every status."""
    read = many(ApprovalRequest)
    wanted = {s.strip() for s in status.split(",") if s.strip()} if status else set()

    def parse(data: Any) -> list[ApprovalRequest]:
        return [a for a in read(data) if not wanted or a.status in wanted]

    return Call("GET", "/api/v1/approvals", parse, params=body(project_id=project_id, status=status))


def _get(approval_id: str) -> Call[ApprovalRequest]:
    """One approval ([ext]: the real gateway has no such endpoint and answers 404; use :meth:`list`)."""
    return Call("GET", f"/api/v1/approvals/{seg(approval_id)}", one(ApprovalRequest))


def _decide(approval_id: str, action: str, reason: str | None = None, *, reviewed_by: str | None = None,
            channel: str | None = None) -> Call[ApprovalDecision]:
    """Decide: ``action`` is ``"approved"``/``"approve"`` or ``"rejected"``/``"reject"``.

    ``reviewed_by`` names the person deciding and ``channel`` how (``"api"``, ``"cli"``, ``"sdk"``);
    the emulator records both with the decision (audit, sessions, webhooks). ``updated`` is False
    when the approval was no longer pending.
    """
    decision = _DECISIONS.get(str(action).lower())
    if decision is None:
        raise ValueError("action must be 'approved' (or 'approve') or 'rejected' (or 'reject')")
    return Call("POST", f"/api/v1/approvals/{seg(approval_id)}/decision", one(ApprovalDecision),
                json=body(decision=decision, reason=reason, reviewed_by=reviewed_by, channel=channel))


def _decide_many(decisions: Iterable[Mapping[str, Any]], *, reviewed_by: str | None = None,
                 channel: str | None = None) -> Call[list[ApprovalDecision]]:
    """Decide many approvals in one call [ext] (``POST /api/v1/approvals/decisions``, up to 10,000):
    ``decisions`` are ``{"id": ..., "decision": "approved"|"rejected", "reason"?: ...}``. The gateway
    checks every item before applying any; one answer per item, in order (an unknown id has
    ``status`` None and ``get("error")`` ``"approval_not_found"``). The real gateway has no such endpoint
    (:class:`~ailink.NotFoundError`): decide one at a time there."""
    items = []
    for item in decisions:
        decision = _DECISIONS.get(str(item.get("decision", "")).lower())
        if decision is None or not item.get("id"):
            raise ValueError("each decision needs an id and a decision: 'approved' or 'rejected'")
        items.append(body(id=item["id"], decision=decision, reason=item.get("reason")))
    return Call("POST", "/api/v1/approvals/decisions", many(ApprovalDecision),
                json=body(decisions=items, reviewed_by=reviewed_by, channel=channel))


def _approve(approval_id: str, reason: str | None = None, *, reviewed_by: str | None = None,
             channel: str | None = None) -> Call[ApprovalDecision]:
    """Approve: the gateway then sends the request upstream once."""
    return _decide(approval_id, "approved", reason, reviewed_by=reviewed_by, channel=channel)


def _reject(approval_id: str, reason: str | None = None, *, reviewed_by: str | None = None,
            channel: str | None = None) -> Call[ApprovalDecision]:
    """Reject: the request is never sent."""
    return _decide(approval_id, "rejected", reason, reviewed_by=reviewed_by, channel=channel)


class ApprovalsResource(SyncResource):
    """``client.approvals``."""

    list = sync_method(_list)
    get = sync_method(_get)
    decide = sync_method(_decide)
    decide_many = sync_method(_decide_many)
    approve = sync_method(_approve)
    reject = sync_method(_reject)


class AsyncApprovalsResource(AsyncResource):
    """``client.approvals`` of an :class:`~ailink.AsyncClient`."""

    list = async_method(_list)
    get = async_method(_get)
    decide = async_method(_decide)
    decide_many = async_method(_decide_many)
    approve = async_method(_approve)
    reject = async_method(_reject)
