"""Webhook deliveries: signed POSTs with retries and a delivery log, never on the request path.

Targets of an event:

* webhooks registered with ``POST /api/v1/webhooks`` ``{url, events?, secret?, format?}`` (their
  project's events only; ``events`` may use the real gateway's names ``approval_requested`` and
  ``policy_violation`` for ``approval.requested`` and ``policy.denied``);
* global URLs given at start-up (``ailink dev --webhook URL`` / ``AILINK_WEBHOOK_URLS``, signed with
  ``--webhook-secret`` / ``AILINK_WEBHOOK_SECRET`` when set; ``--slack-webhook URL`` /
  ``AILINK_SLACK_WEBHOOK_URL`` in Slack's format), ids ``global-N`` and ``slack-N``, every event;
* the policy action ``{"action": "webhook", "url", "timeout_ms": 5000, "on_fail": "allow"}``: event
  ``policy.matched`` to ``url``, unsigned, id ``policy:<policy id>``.

Every delivery is one row of ``webhook_deliveries`` (``GET /api/v1/webhooks/{id}/deliveries``,
``GET /api/v1/webhooks/deliveries``) and is attempted in the background: a request never waits for
a webhook, and a failing receiver never changes a request's answer (so ``on_fail`` is recorded but
``deny`` cannot refuse the request; deviation). Headers, as the real gateway's: ``x-ailink-delivery-id``
(the same on every retry of a delivery), ``x-ailink-timestamp`` (Unix seconds of the attempt),
``x-ailink-event``, and ``x-ailink-signature: sha256=<hex HMAC-SHA256 of the body with the secret>``
when the target has a secret (``ailink.verify_webhook`` checks it); ``x-trueflow-*`` in the trueflow
generation. Retries: on a connection failure,
408, 429 or 5xx, after 1, 5 and 25 s (``create_app(webhook_retry_delays=...)``); redirects are not
followed; a receiver's answer body is never read. Slack format: an incoming-webhook message
(``text`` + ``blocks``) with a button to the approval in the inbox; agent-controlled text is escaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ailink._secrets import scrub
from ailink._transport import ssl_context
from ailink.webhooks import sign_webhook

from ._store import DEFAULT_PROJECT

if TYPE_CHECKING:
    from ._app import Emulator
    from ._policy import MatchedAction

logger = logging.getLogger("ailink.emulator")

#: Subscription names a webhook may list; the real gateway's names are aliases of ours.
EVENT_ALIASES = {"approval_requested": "approval.requested", "policy_violation": "policy.denied"}
#: Accepted for the real gateway's API, never sent by the emulator.
SILENT_EVENTS = ("rate_limit_exceeded", "spend_cap_exceeded", "anomaly_detected")
FORMATS = ("json", "slack")
DEFAULT_RETRY_DELAYS = (1.0, 5.0, 25.0)
DEFAULT_TIMEOUT = 5.0
RETRY_STATUSES = frozenset({408, 429})
ON_FAIL = ("allow", "deny", "log")

DELIVERY_COLUMNS = {"url": "TEXT", "attempts": "INTEGER NOT NULL DEFAULT 0", "response_status": "INTEGER",
                    "error": "TEXT", "delivered_at": "REAL", "updated_at": "REAL", "event_id": "TEXT",
                    "format": "TEXT"}
WEBHOOK_COLUMNS = {"format": "TEXT"}


def subscribed_events(events: list[str]) -> set[str]:
    """The events (our names) a webhook registered for ``events`` receives."""
    return {EVENT_ALIASES.get(e, e) for e in events}


def shown_url(url: str, fmt: str = "json") -> str:
    """A target URL fit for a page: no userinfo or secret parameters; a Slack URL's path (a secret) hidden."""
    if fmt == "slack":
        try:
            parts = urlsplit(url)
            return f"{parts.scheme}://{parts.hostname}/…"
        except ValueError:
            return "…"
    return scrub(url)


@dataclass(frozen=True)
class Target:
    """Where one delivery goes."""

    id: str
    url: str
    secret: str | None = None
    format: str = "json"
    timeout: float = DEFAULT_TIMEOUT
    events: frozenset[str] | None = None  # None: every event
    project_id: str | None = None  # None: every project

    def wants(self, event: str, project_id: str) -> bool:
        return (self.events is None or event in self.events) and self.project_id in (None, project_id)


def _slack_escape(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(envelope: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message for ``envelope``: a summary, the facts, and a link to the inbox."""
    event = envelope["event_type"]
    d = envelope.get("details") or {}
    what = _slack_escape(f"{d.get('method') or ''} {d.get('path') or ''}".strip() or "a request")
    apr = _slack_escape(d.get("approval_id") or "")
    if event == "approval.requested":
        title = f"Approval needed: {what}"
    elif event == "approval.decided":
        who = _slack_escape(d.get("reviewed_by") or "someone")
        title = f"Approval {apr} {_slack_escape(d.get('status'))} by {who} ({_slack_escape(d.get('review_channel'))})"
    elif event == "approval.expired":
        title = f"Approval {apr} for {what} expired without a decision"
    elif event == "policy.denied":
        title = f"Policy '{_slack_escape(d.get('policy'))}' denied {what}: {_slack_escape(d.get('reason'))}"
    else:
        title = f"{_slack_escape(event)}: {what}"
    facts = [f"*{label}:* {_slack_escape(d[key])}" for key, label in (
        ("policy", "Policy"), ("agent", "Agent"), ("tool_name", "Tool"), ("session_id", "Session"),
        ("expires_at", "Expires"), ("reason", "Reason")) if d.get(key)]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}}]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)}})
    body = d.get("body_preview")
    if body and event == "approval.requested":
        shown = _slack_escape(str(body)[:1500]).replace("`", "'")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{shown}```"}})
    link = d.get("review_url")
    if link:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Review in the inbox"}, "url": link}]})
    elif apr and event == "approval.requested":
        blocks.append({"type": "context", "elements": [{
            "type": "mrkdwn", "text": f"Decide: `ailink approvals approve {apr}` or `ailink approvals reject {apr}`"}]})
    text = title + (f" <{link}|Review in the inbox>" if link else "")
    return {"text": text, "blocks": blocks}


class WebhookDispatcher:
    """Finds an event's targets, records each delivery and delivers it in the background."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
        self.global_targets: list[Target] = []
        self._client: httpx.AsyncClient | None = None
        self._installed = False

    def configure(self, *, urls: list[str] | None = None, slack_urls: list[str] | None = None,
                  secret: str | None = None, retry_delays: tuple[float, ...] | None = None) -> None:
        """Global targets (every event of every project) and the retry schedule. Raises ValueError for a
        URL that is not http(s)."""
        for url in [*(urls or []), *(slack_urls or [])]:
            try:
                parts = urlsplit(url)
                valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(f"webhook URL must be http(s): {shown_url(str(url))}")
        targets = [Target(f"global-{i}", url, secret=secret or None) for i, url in enumerate(urls or [], 1)]
        targets += [Target(f"slack-{i}", url, format="slack") for i, url in enumerate(slack_urls or [], 1)]
        self.global_targets = targets
        if retry_delays is not None:
            if any(d < 0 for d in retry_delays):
                raise ValueError("webhook retry delays must not be negative")
            self.retry_delays = tuple(float(d) for d in retry_delays)

    def install(self) -> None:
        """Add this module's columns to the management tables (once per database)."""
        if not self._installed:
            self.emu.store.ensure_columns("webhook_deliveries", DELIVERY_COLUMNS)
            self.emu.store.ensure_columns("webhooks", WEBHOOK_COLUMNS)
            # deliveries a previous run left unfinished stay visible as such
            self.emu.store._exec("UPDATE webhook_deliveries SET status = 'abandoned' WHERE status = 'pending'")
            self._installed = True

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=ssl_context())
        return self._client

    # ------------------------------------------------------------------ targets
    def registered(self) -> list[Target]:
        rows = self.emu.store._all("SELECT * FROM webhooks WHERE is_active = 1")
        targets = []
        for row in rows:
            try:
                events = json.loads(row["events"]) if isinstance(row["events"], str) else row["events"]
            except ValueError:
                continue
            targets.append(Target(row["id"], row["url"], secret=row["secret"] or None,
                                  format=row.get("format") or "json", events=frozenset(subscribed_events(events)),
                                  project_id=row["project_id"]))
        return targets

    def target(self, target_id: str) -> Target | None:
        """A global target by id (``global-N``, ``slack-N``)."""
        return next((t for t in self.global_targets if t.id == target_id), None)

    # ------------------------------------------------------------------ delivering
    def dispatch(self, event: str, envelope: dict[str, Any]) -> list[str]:
        """Schedule ``envelope`` to every target that wants ``event``; returns the delivery ids."""
        project = envelope.get("project_id") or DEFAULT_PROJECT
        targets = [t for t in [*self.registered(), *self.global_targets] if t.wants(event, project)]
        return [self.schedule(t, event, envelope) for t in targets]

    def schedule(self, target: Target, event: str, envelope: dict[str, Any]) -> str:
        """Record one delivery and start it in the background."""
        delivery_id, body = self._record(target, event, envelope)
        self.emu.spawn(self._deliver(delivery_id, target, event, body))
        return delivery_id

    def _record(self, target: Target, event: str, envelope: dict[str, Any]) -> tuple[str, bytes]:
        payload = slack_message(envelope) if target.format == "slack" else envelope
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        delivery_id = "dlv_" + uuid.uuid4().hex
        now = time.time()
        self.emu.store._insert("webhook_deliveries", {
            "id": delivery_id, "webhook_id": target.id, "event_type": event, "status": "pending",
            "payload": payload, "created_at": now, "updated_at": now, "url": shown_url(target.url, target.format),
            "attempts": 0, "event_id": envelope.get("id"), "format": target.format,
        })
        return delivery_id, body

    async def _attempt(self, delivery_id: str, target: Target, event: str, body: bytes) -> tuple[bool, bool]:
        """One POST; (delivered, worth retrying). The answer's body is never read."""
        branded = self.emu.generation.header  # x-ailink-* or, in the trueflow generation, x-trueflow-*
        headers = {"content-type": "application/json", "user-agent": "ailink-emulator-webhooks",
                   branded("delivery-id"): delivery_id, branded("timestamp"): str(int(time.time())),
                   branded("event"): event}
        if target.secret:
            headers[branded("signature")] = sign_webhook(body, target.secret)
        status: int | None = None
        error: str | None = None
        try:
            async with self._http().stream("POST", target.url, content=body, headers=headers,
                                           timeout=target.timeout) as response:
                status = response.status_code
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # a URL httpx cannot send too
            error = type(exc).__name__
        delivered = status is not None and 200 <= status < 300
        if status is not None and not delivered:
            error = f"HTTP {status}"
        self.emu.store._exec(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, response_status = ?, error = ?, updated_at = ?, "
            "status = ?, delivered_at = ? WHERE id = ?",
            (status, error, time.time(), "delivered" if delivered else "pending",
             time.time() if delivered else None, delivery_id))
        retry = status is None or status >= 500 or status in RETRY_STATUSES
        return delivered, retry

    async def _deliver(self, delivery_id: str, target: Target, event: str, body: bytes) -> None:
        try:
            for attempt in range(len(self.retry_delays) + 1):
                delivered, retry = await self._attempt(delivery_id, target, event, body)
                if delivered:
                    return
                if not retry or attempt == len(self.retry_delays):
                    break
                await asyncio.sleep(self.retry_delays[attempt])
            self._finish(delivery_id, "failed")
            logger.warning("emulator: webhook %s to %s failed (delivery %s)", event,
                           shown_url(target.url, target.format), delivery_id)
        except asyncio.CancelledError:
            self._finish(delivery_id, "abandoned")
            raise

    def _finish(self, delivery_id: str, status: str) -> None:
        with contextlib.suppress(Exception):  # the database may be closing with the app
            self.emu.store._exec("UPDATE webhook_deliveries SET status = ?, updated_at = ? WHERE id = ?",
                                 (status, time.time(), delivery_id))

    async def test(self, target: Target) -> dict[str, Any]:
        """Deliver a ``webhook.test`` event once, now, and say how it went."""
        envelope = {"id": "evt_" + uuid.uuid4().hex, "event_type": "webhook.test",
                    "timestamp": _now_iso(), "details": {"message": "test delivery from the AIlink emulator"}}
        delivery_id, body = self._record(target, "webhook.test", envelope)
        delivered, _ = await self._attempt(delivery_id, target, "webhook.test", body)
        if not delivered:
            self._finish(delivery_id, "failed")
        row = self.emu.store._one("SELECT response_status, error FROM webhook_deliveries WHERE id = ?",
                                  (delivery_id,)) or {}
        message = "delivered" if delivered else f"not delivered: {row.get('error') or 'no answer'}"
        return {"success": delivered, "delivered": delivered, "status_code": row.get("response_status"),
                "message": message, "delivery_id": delivery_id}

    # ------------------------------------------------------------------ the policy action
    def policy_matches(self, call: Any, matches: list[MatchedAction]) -> None:
        """Fire the ``webhook`` actions among an enforced request's matched rules (in the background)."""
        for m in matches:
            if m.mode == "shadow" or m.action.get("action") != "webhook":
                continue
            timeout = m.action.get("timeout_ms", 5000)
            target = Target(f"policy:{m.policy_id}", str(m.action.get("url")),
                            timeout=max(0.001, float(timeout) / 1000.0))
            from ._app import iso

            ctx = call.ctx
            envelope = self.emu.events._envelope("policy.matched", {
                "policy": m.policy_name, "rule": m.rule_index, "method": call.method, "path": call.path,
                "agent": ctx.agent_name, "tool_name": ctx.tool_name, "session_id": ctx.session_id,
                "request_id": call.rid, "on_fail": m.action.get("on_fail", "allow"), "matched_at": iso(time.time()),
            }, call.token["ref"])
            self.schedule(target, "policy.matched", envelope)

    # ------------------------------------------------------------------ the log
    def deliveries(self, *, webhook_id: str | None = None, event: str | None = None, status: str | None = None,
                   limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("webhook_id", webhook_id), ("event_type", event), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.emu.store._all(f"SELECT * FROM webhook_deliveries {clause} ORDER BY created_at DESC, rowid DESC "
                                   "LIMIT ? OFFSET ?", [*params, limit, offset])
        return [delivery_page(r) for r in rows]


def _now_iso() -> str | None:
    from ._app import iso

    return iso(time.time())


def delivery_page(row: dict[str, Any]) -> dict[str, Any]:
    from ._app import iso

    payload = row.get("payload")
    if isinstance(payload, str):
        with contextlib.suppress(ValueError):
            payload = json.loads(payload)
    return {"id": row["id"], "webhook_id": row["webhook_id"], "event_type": row["event_type"],
            "event_id": row.get("event_id"), "status": row["status"], "url": row.get("url"),
            "format": row.get("format") or "json", "attempts": row.get("attempts") or 0,
            "response_status": row.get("response_status"), "error": row.get("error"), "payload": payload,
            "created_at": iso(row["created_at"]), "updated_at": iso(row.get("updated_at")),
            "delivered_at": iso(row.get("delivered_at"))}


__all__ = ["EVENT_ALIASES", "FORMATS", "ON_FAIL", "SILENT_EVENTS", "Target", "WebhookDispatcher", "delivery_page",
           "shown_url", "slack_message", "subscribed_events"]
