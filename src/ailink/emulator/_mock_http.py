"""What makes the mock upstreams strict: exact paths only, JSON object bodies only.

A lenient mock would make a policy test mean less than it says: if ``/v1/charges/`` or
``/v1/%63harges`` also created a charge, a test showing that a policy on ``/v1/charges`` holds would
not show that the path cannot be dressed up around it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

_ODD = (b"%", b"//", b"/./", b"/../", b"\\")


def _odd_path(raw: bytes) -> bool:
    return (any(part in raw for part in _ODD) or raw.endswith((b"/.", b"/.."))
            or (len(raw) > 1 and raw.endswith(b"/")))


class ExactPaths:
    """Answers 404 to any path that is not already in its plain form (encoded bytes, dot or empty
    segments, a trailing slash, a backslash); the wrapped app never sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            if _odd_path(raw.split(b"?", 1)[0]):
                response = JSONResponse({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                                   "message": "No such path"}}, status_code=404)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def json_object(request: Request) -> tuple[dict[str, Any] | None, int, str]:
    """The body as a JSON object, or ``(None, status, message)``: 415 not JSON-typed, 400 otherwise."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        return None, 415, "Content-Type must be application/json"
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, 400, "Invalid JSON body"
    if not isinstance(data, dict):
        return None, 400, "The JSON body must be an object"
    return data, 200, ""


__all__ = ["ExactPaths", "json_object"]
