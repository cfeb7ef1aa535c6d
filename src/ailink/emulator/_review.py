"""What a reviewer sees of an approval: the request exactly as it will be sent, minus secrets.

One place builds it for every channel (the management API's approval page, the web inbox, webhook
and Slack payloads, the CLI through the API). Secret-named headers and JSON fields are shown as
``***``, token- and key-shaped strings masked (``ailink_v1_ab12…``); nothing else is changed, so
the reviewer judges what the upstream will receive. The caller escapes for its medium (HTML, Slack).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ailink._secrets import is_secret_name, scrub

from ._bounds import JSONRefused, NotJSON, load_json

HIDDEN = "***"
#: The longest body preview a notification (webhook, Slack) carries; pages show the whole body.
PREVIEW_CHARS = 2000
#: Decision channels a caller of the management API may name (the inbox is named by the inbox only).
API_CHANNELS = ("api", "cli", "sdk")


def _scrub_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (HIDDEN if isinstance(k, str) and is_secret_name(k) and v not in (None, "") else _scrub_json(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(item) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def _query(row: dict[str, Any]) -> str:
    context = row.get("context") or {}
    query = context.get("query")
    if isinstance(query, str):
        return query
    try:
        return urlsplit(str(row.get("req_url") or "")).query
    except ValueError:
        return ""


def request_view(row: dict[str, Any]) -> dict[str, Any]:
    """The stored request of approval ``row``: method, path, query (text and pairs), headers, body
    (text; ``body_json`` too when it is JSON), content type, upstream URL. Secrets hidden."""
    summary = row.get("summary") or {}
    raw = row.get("req_body") or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    body_json: Any = None
    is_json = False
    if text.strip():
        try:
            body_json = _scrub_json(load_json(text, strict_numbers=False))
            is_json = True
        except (JSONRefused, NotJSON):
            body_json = None
    headers = {str(k): (HIDDEN if is_secret_name(str(k)) else scrub(str(v)))
               for k, v in sorted((row.get("req_headers") or {}).items())}
    query = scrub(_query(row))
    upstream = str(summary.get("upstream") or (row.get("req_url") or "").split("?", 1)[0])
    return {
        "method": row.get("req_method") or summary.get("method"),
        "path": summary.get("path"),
        "query": query,
        "query_params": [[k, v] for k, v in parse_qsl(query, keep_blank_values=True)],
        "upstream": scrub(upstream),
        "headers": headers,
        "content_type": headers.get("content-type"),
        "body": (json.dumps(body_json, ensure_ascii=False) if is_json else scrub(text)) if text else None,
        "body_json": body_json,
        "body_is_json": is_json,
        "body_bytes": len(raw),
    }


def pretty_body(view: dict[str, Any]) -> str | None:
    """The body for reading: indented JSON when it is JSON, else the text as sent."""
    if view.get("body_is_json"):
        return json.dumps(view["body_json"], indent=2, ensure_ascii=False, sort_keys=False)
    body = view.get("body")
    return body if isinstance(body, str) else None


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


def seconds_left(row: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds until a pending approval expires (``None`` once decided)."""
    if row.get("status") != "pending":
        return None
    return max(0.0, float(row["expires_at"]) - (time.time() if now is None else now))


def decide_commands(approval_id: str) -> dict[str, str]:
    """The CLI commands that decide ``approval_id``."""
    return {"approve": f"ailink approvals approve {approval_id} --reason '...'",
            "reject": f"ailink approvals reject {approval_id} --reason '...'"}


def review_url(public_url: str | None, approval_id: str) -> str | None:
    """The inbox page of ``approval_id`` on an emulator served at ``public_url``."""
    return f"{public_url.rstrip('/')}/ui/approvals/{approval_id}" if public_url else None


__all__ = ["API_CHANNELS", "HIDDEN", "decide_commands", "pretty_body", "preview", "request_view", "review_url",
           "seconds_left"]
