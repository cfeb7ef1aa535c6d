"""Signing in to the inbox: the admin key once, then a session cookie; a CSRF token on every form.

* ``POST /ui/login`` takes the admin key (compared in constant time) and an optional reviewer name
  (recorded with every decision); the login form itself is protected by a double-submit token.
* The session cookie (``ailink_inbox``) is random, ``HttpOnly``, ``SameSite=Strict``, limited to
  ``/ui`` (``Secure`` behind https) and lives in this process only (a restart signs everyone out).
* Every state-changing form carries the session's CSRF token; a POST whose token does not match, or
  whose ``Origin`` is another site, is refused (403). Nothing here touches the data plane's or the
  management API's authentication.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "ailink_inbox"
LOGIN_COOKIE = "ailink_inbox_login"
SESSION_SECONDS = 12 * 3600.0
MAX_SESSIONS = 1000
MAX_NAME = 80


@dataclass
class InboxSession:
    """A signed-in reviewer."""

    id: str
    reviewer: str
    csrf: str
    expires_at: float = field(default_factory=lambda: time.time() + SESSION_SECONDS)


class InboxSessions:
    """The signed-in sessions of one emulator process."""

    def __init__(self) -> None:
        self._sessions: dict[str, InboxSession] = {}

    def create(self, reviewer: str) -> InboxSession:
        now = time.time()
        for sid in [s for s, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[sid]
        if len(self._sessions) >= MAX_SESSIONS:  # the oldest sign-in goes first
            del self._sessions[min(self._sessions, key=lambda s: self._sessions[s].expires_at)]
        session = InboxSession(secrets.token_urlsafe(32), reviewer, secrets.token_urlsafe(32))
        self._sessions[session.id] = session
        return session

    def get(self, request: Request) -> InboxSession | None:
        sid = request.cookies.get(COOKIE)
        session = self._sessions.get(sid) if sid else None
        if session is None or session.expires_at <= time.time():
            return None
        return session

    def end(self, request: Request) -> None:
        sid = request.cookies.get(COOKIE)
        if sid:
            self._sessions.pop(sid, None)


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site (``Origin`` or ``Referer``)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    return f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


def tokens_match(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def reviewer_name(raw: object) -> str:
    """The name a reviewer signs in with (``admin`` when none): printable, at most 80 characters."""
    name = " ".join(str(raw or "").split())[:MAX_NAME]
    name = "".join(ch for ch in name if ch.isprintable())
    return name or "admin"


__all__ = ["COOKIE", "LOGIN_COOKIE", "SESSION_SECONDS", "InboxSession", "InboxSessions", "reviewer_name",
           "same_origin", "set_cookie", "tokens_match"]
