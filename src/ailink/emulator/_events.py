"""The emulator's events: one publish point that feeds reviewers' live views and webhook deliveries.

Events (``EVENTS``): ``approval.requested``, ``approval.decided``, ``approval.expired``,
``policy.denied``. Each is an envelope ``{id, event_type, timestamp, token_id (masked), token_name,
project_id, details}`` (the real gateway's webhook body, with the token masked: it is a secret).
:meth:`EventHub.publish` never blocks and never fails the request that caused it: live subscribers
(the inbox's server-sent events) get a notification on a bounded queue, webhook targets a delivery
in the background (``_webhooks``). An expiry timer expires pending approvals at their deadline, so
``approval.expired`` is sent on time even when nobody polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from ailink._secrets import mask

from ._review import decide_commands, preview, request_view, review_url

if TYPE_CHECKING:
    from ._app import Emulator

logger = logging.getLogger("ailink.emulator")

EVENTS = ("approval.requested", "approval.decided", "approval.expired", "policy.denied")
#: How many notifications a live subscriber may fall behind before older ones are dropped.
QUEUE_SIZE = 256
#: The expiry timer sleeps at most this long between checks (it is woken by new approvals).
MAX_SLEEP = 30.0


def _iso(ts: float | None) -> str | None:
    from ._app import iso

    return iso(ts)


class EventHub:
    """Publishes the emulator's events to live subscribers and to webhook targets."""

    def __init__(self, emu: Emulator) -> None:
        from ._webhooks import WebhookDispatcher

        self.emu = emu
        self.webhooks = WebhookDispatcher(emu)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the expiry timer (from the app's start-up, on its event loop)."""
        if self._timer is None:
            self._wake = asyncio.Event()
            self._timer = asyncio.ensure_future(self._expire_on_time())

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._timer
            self._timer = None
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait({"event_type": "closed"})
        await self.webhooks.aclose()

    async def _expire_on_time(self) -> None:
        assert self._wake is not None
        while True:
            due = self.emu.store.next_expiry()
            delay = MAX_SLEEP if due is None else min(MAX_SLEEP, max(0.0, due - time.time()) + 0.01)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            try:
                self.emu.expire_due()
            except Exception:  # a broken row must not stop the timer
                logger.exception("emulator: expiring approvals failed")

    # ------------------------------------------------------------------ subscribers
    def add_subscriber(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving every event envelope from now on, until :meth:`remove_subscriber`."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def remove_subscriber(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    # ------------------------------------------------------------------ publishing
    def publish(self, event: str, details: dict[str, Any], token_ref: str | None = None) -> dict[str, Any]:
        """Send ``event`` to every subscriber and webhook target; returns the envelope. Never raises."""
        envelope = self._envelope(event, details, token_ref)
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # a slow page loses the oldest notification, not the newest
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(envelope)
        try:
            self.webhooks.dispatch(event, envelope)
        except Exception:  # notifications never fail the request that caused them
            logger.exception("emulator: scheduling webhook deliveries for %s failed", event)
        return envelope

    def _envelope(self, event: str, details: dict[str, Any], token_ref: str | None) -> dict[str, Any]:
        token = self.emu.store.token_by_id(token_ref) if token_ref else None
        return {
            "id": "evt_" + uuid.uuid4().hex, "event_type": event, "timestamp": _iso(time.time()),
            "token_id": mask(token["token"]) if token else None, "token_name": token["name"] if token else None,
            "project_id": token.get("project_id") if token else None, "details": details,
        }

    # ------------------------------------------------------------------ the events
    def approval_details(self, row: dict[str, Any]) -> dict[str, Any]:
        """What every approval event says about the approval (a body preview, never a secret)."""
        summary = row.get("summary") or {}
        view = request_view(row)
        return {
            "approval_id": row["id"], "status": row["status"], "policy": row.get("policy_name"),
            "method": view["method"], "path": view["path"], "query": view["query"] or None,
            "upstream": view["upstream"], "agent": summary.get("agent"), "tool_name": summary.get("tool_name"),
            "session_id": summary.get("session_id"), "idempotency_key": row.get("idempotency_key"),
            "body_preview": preview(view["body"]), "created_at": _iso(row.get("created_at")),
            "expires_at": _iso(row.get("expires_at")), "review_url": review_url(self.emu.public_url, row["id"]),
            "decide": decide_commands(row["id"]),
        }

    def approval_requested(self, row: dict[str, Any]) -> None:
        if self._wake is not None:
            self._wake.set()  # the expiry timer re-reads the next deadline
        self.publish("approval.requested", self.approval_details(row), row.get("token_ref"))

    def approval_settled(self, apr_id: str) -> None:
        """``approval.decided`` (approved, rejected, cancelled) or ``approval.expired``."""
        row = self.emu.store.get_approval(apr_id)
        if row is None or row["status"] == "pending":
            return
        details = {**self.approval_details(row), "reason": row.get("reason"), "decided_at": _iso(row.get("decided_at")),
                   "reviewed_by": row.get("reviewed_by"), "review_channel": row.get("review_channel")}
        event = "approval.expired" if row["status"] == "expired" else "approval.decided"
        self.publish(event, details, row.get("token_ref"))

    def policy_denied(self, *, token_ref: str, policy: str, reason: str, method: str, path: str,
                      context: dict[str, Any], request_id: str) -> None:
        self.publish("policy.denied", {
            "policy": policy, "reason": reason, "method": method, "path": path,
            "agent": context.get("agent_name"), "tool_name": context.get("tool_name"),
            "session_id": context.get("session_id"), "request_id": request_id,
        }, token_ref)


__all__ = ["EVENTS", "EventHub"]
