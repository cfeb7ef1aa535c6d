"""CORS as the real gateway answers it (a development setup: ``AILINK_ENV`` not ``production``).

Allowed origins: the dashboard's (``http://localhost:3000`` by default) and any ``http://localhost:<port>``
or ``http://127.0.0.1:<port>``. A preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) is answered here with 200; an allowed origin gets
``Access-Control-Allow-Origin: <origin>``, ``Access-Control-Allow-Credentials: true``, the methods
``GET, POST, PUT, DELETE, PATCH, OPTIONS`` and the headers ``content-type, authorization, x-admin-key,
x-dashboard-token, x-request-id``; other origins get no CORS headers. Every other answer to a request
from an allowed origin carries ``Access-Control-Allow-Origin`` and ``-Credentials``; every answer to a
request with an ``Origin`` adds ``Vary: origin``.

The reviewers' inbox (``/ui``, this project's; the real gateway has none) is same-origin only: its
pages get no CORS headers, so a page on another local port cannot read them with the reviewer's
cookie (which ``SameSite`` does not keep from other ports of the same host).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_ORIGIN = "http://localhost:3000"
ALLOW_METHODS = "GET,POST,PUT,DELETE,PATCH,OPTIONS"
ALLOW_HEADERS = "content-type,authorization,x-admin-key,x-dashboard-token,x-request-id"
_LOCAL_PREFIXES = ("http://localhost:", "http://127.0.0.1:")
#: Paths served to their own origin only (the inbox).
SAME_ORIGIN_PATH = "/ui"


def allowed_origin(origin: str, dashboard_origin: str = DASHBOARD_ORIGIN) -> bool:
    return origin == dashboard_origin or origin.startswith(_LOCAL_PREFIXES)


class Cors:
    """ASGI middleware answering preflights and marking answers to allowed origins."""

    def __init__(self, app: ASGIApp, dashboard_origin: str = DASHBOARD_ORIGIN) -> None:
        self.app = app
        self.dashboard_origin = dashboard_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == SAME_ORIGIN_PATH or path.startswith(SAME_ORIGIN_PATH + "/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin_bytes = headers.get(b"origin")
        if origin_bytes is None:
            await self.app(scope, receive, send)
            return
        origin = origin_bytes.decode("latin-1")
        allowed = allowed_origin(origin, self.dashboard_origin)
        extra = [(b"vary", b"origin")]
        if allowed:
            extra += [(b"access-control-allow-origin", origin_bytes), (b"access-control-allow-credentials", b"true")]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            if allowed:
                extra += [(b"access-control-allow-methods", ALLOW_METHODS.encode()),
                          (b"access-control-allow-headers", ALLOW_HEADERS.encode())]
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"0"), *extra]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)


__all__ = ["Cors", "allowed_origin"]
