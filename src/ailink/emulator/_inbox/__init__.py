"""The reviewers' inbox: a web page served by the emulator at ``/ui`` (server-rendered, no build step).

Pages (admin key to sign in, then a session cookie; see ``_auth``): ``/ui/approvals`` (pending
approvals, updated live over server-sent events from ``/ui/events``, each with its whole request,
policy, agent, tool, session, request time and an expiry countdown; approve or reject with a
reason), ``/ui/history`` (decided, expired and withdrawn approvals: who decided, through which
channel, why), ``/ui/approvals/{id}`` (one approval), ``/ui/sessions`` and ``/ui/sessions/{id}`` (the
step tree of ``ailink sessions show`` with each request's status and decision), ``/ui/audit`` (the
audit log with filters). ``GET /`` from a browser without a token redirects here.

Everything an agent controls (bodies, paths, names) is escaped by Jinja2's autoescaping and shown
with invisible and direction-changing characters made visible; pages carry a Content-Security-Policy
that allows only this package's own script and style, so even a rendering mistake runs no injected
script. Secrets never reach a page: tokens are masked and secret-named headers and fields hidden
(``_review``). Live updates: the page's script re-fetches server-rendered fragments when an event
arrives (no client-side templating).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ailink._display import shown
from ailink._models import Session
from ailink._secrets import mask
from ailink._session_tree import build_span_tree

from .._review import pretty_body, request_view, seconds_left
from ._auth import (
    COOKIE,
    LOGIN_COOKIE,
    SESSION_SECONDS,
    InboxSession,
    InboxSessions,
    reviewer_name,
    same_origin,
    set_cookie,
    tokens_match,
)

if TYPE_CHECKING:
    from .._app import Emulator

HERE = Path(__file__).parent
STATIC = {"inbox.js": "text/javascript; charset=utf-8", "inbox.css": "text/css; charset=utf-8"}
#: Only this package's files may run or style a page; no frames, no plug-ins, forms post here only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-frame-options": "DENY", "x-content-type-options": "nosniff",
                    "referrer-policy": "same-origin", "cache-control": "no-store"}
HISTORY_STATUSES = "approved,rejected,expired,cancelled"
HEARTBEAT_SECONDS = 15.0
MAX_REASON = 2000
AUDIT_PAGE = 50
Handler = Callable[[Request], Awaitable[Response]]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["visible"] = shown  # control characters made visible, secrets masked
    env.filters["block"] = lambda v: shown(v, keep_newlines=True)
    env.filters["duration"] = _duration
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Inbox:
    """The inbox's pages over one emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.sessions = InboxSessions()
        self.env = _environment()

    # ------------------------------------------------------------------ rendering
    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        session: InboxSession | None = getattr(request.state, "inbox", None)
        context.setdefault("fragment", False)
        html = self.env.get_template(template).render(
            session=session, csrf=session.csrf if session else "", now_iso=_iso(time.time()),
            pending_count=len(self.emu.store.list_approvals("pending", 1000, 0)) if session else 0,
            path=request.url.path, **context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    # ------------------------------------------------------------------ access
    def page(self, handler: Handler, *, api: bool = False) -> Handler:
        """Signed-in reviewers only: others go to the sign-in page (or get 401 for live data)."""

        async def wrapped(request: Request) -> Response:
            session = self.sessions.get(request)
            if session is None:
                if api:
                    return PlainTextResponse("Sign in at /ui/login", status_code=401, headers=SECURITY_HEADERS)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303,
                                        headers=SECURITY_HEADERS)
            request.state.inbox = session
            return await handler(request)

        wrapped.__name__ = handler.__name__
        return wrapped

    async def form(self, request: Request, session: InboxSession | None) -> dict[str, str] | None:
        """The posted form, or ``None`` when its CSRF token or origin is wrong."""
        form = await request.form(max_files=0, max_fields=20)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        expected = session.csrf if session is not None else request.cookies.get(LOGIN_COOKIE, "")
        if not same_origin(request) or not expected or not tokens_match(values.get("csrf"), expected):
            return None
        return values

    def refused(self, request: Request) -> HTMLResponse:
        return self.render(request, "message.html", 403, title="Refused",
                           message="This form is stale or came from another site. Reload the page and try again.")

    # ------------------------------------------------------------------ sign-in
    async def login_page(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or _token()
        response = self.render(request, "login.html", status, login_csrf=token, error=error,
                               next=_next(request.query_params.get("next")))
        set_cookie(request, response, LOGIN_COOKIE, token, 3600)
        return response

    async def login(self, request: Request) -> Response:
        values = await self.form(request, None)
        if values is None:
            return await self.login_page(request, "The sign-in form expired. Try again.", 403)
        key = values.get("admin_key", "")
        if not tokens_match(key.strip(), self.emu.admin_key):
            await asyncio.sleep(0.2)  # slows guessing down a little
            return await self.login_page(request, "That is not this gateway's admin key.", 401)
        session = self.sessions.create(reviewer_name(values.get("reviewer")))
        response = RedirectResponse(_next(values.get("next")), status_code=303, headers=SECURITY_HEADERS)
        set_cookie(request, response, COOKIE, session.id, int(SESSION_SECONDS))
        response.delete_cookie(LOGIN_COOKIE, path="/ui")
        return response

    async def logout(self, request: Request) -> Response:
        session: InboxSession = request.state.inbox
        if await self.form(request, session) is None:
            return self.refused(request)
        self.sessions.end(request)
        response = RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    # ------------------------------------------------------------------ approvals
    def approval(self, row: dict[str, Any]) -> dict[str, Any]:
        """One approval as the templates show it."""
        view = request_view(row)
        summary = row.get("summary") or {}
        token = self.emu.store.token_by_id(row["token_ref"])
        return {
            "id": row["id"], "status": row["status"], "policy": row.get("policy_name"), "reason": row.get("reason"),
            "method": view["method"], "path": view["path"], "query": view["query"],
            "query_params": view["query_params"], "headers": view["headers"], "upstream": view["upstream"],
            "body": pretty_body(view), "body_is_json": view["body_is_json"], "body_bytes": view["body_bytes"],
            "agent": summary.get("agent"), "tool_name": summary.get("tool_name"),
            "session_id": summary.get("session_id"), "idempotency_key": row.get("idempotency_key"),
            "token": mask(token["token"]) if token else None, "token_name": token["name"] if token else None,
            "created_at": _iso(row.get("created_at")), "expires_at": _iso(row.get("expires_at")),
            "decided_at": _iso(row.get("decided_at")), "reviewed_by": row.get("reviewed_by"),
            "review_channel": row.get("review_channel"), "seconds_left": seconds_left(row),
            "result_status": row.get("resp_status"), "executed": row.get("exec_state"),
        }

    async def approvals_page(self, request: Request) -> Response:
        self.emu.expire_due()
        pending = [self.approval(r) for r in reversed(self.emu.store.list_approvals("pending", 200, 0))]
        fragment = request.query_params.get("fragment") == "1"
        return self.render(request, "_pending.html" if fragment else "approvals.html", pending=pending,
                           fragment=fragment, done=_flash(request, self.emu))

    async def history_page(self, request: Request) -> Response:
        self.emu.expire_due()
        decided = [self.approval(r) for r in self.emu.store.list_approvals(HISTORY_STATUSES, 200, 0)]
        fragment = request.query_params.get("fragment") == "1"
        return self.render(request, "_history.html" if fragment else "history.html", decided=decided,
                           fragment=fragment)

    async def approval_page(self, request: Request) -> Response:
        row = self.emu.refresh_approval(request.path_params["approval_id"])
        if row is None:
            return self.render(request, "message.html", 404, title="Not found", message="No such approval.")
        fragment = request.query_params.get("fragment") == "1"
        return self.render(request, "_approval.html" if fragment else "approval.html", a=self.approval(row),
                           fragment=fragment, done=_flash(request, self.emu))

    async def decide(self, request: Request) -> Response:
        session: InboxSession = request.state.inbox
        values = await self.form(request, session)
        if values is None:
            return self.refused(request)
        apr_id = request.path_params["approval_id"]
        decision = values.get("decision")
        reason = (values.get("reason") or "").strip() or None
        back = _next(values.get("next"))
        if decision not in ("approved", "rejected") or (reason is not None and len(reason) > MAX_REASON):
            return self.render(request, "message.html", 400, title="Not decided",
                               message=f"Choose approve or reject; a reason has at most {MAX_REASON} characters.")
        if self.emu.refresh_approval(apr_id) is None:
            return self.render(request, "message.html", 404, title="Not found", message="No such approval.")
        updated = self.emu.decide(apr_id, decision, reason, reviewed_by=session.reviewer, channel="inbox")
        row = self.emu.store.get_approval(apr_id) or {}
        outcome = decision if updated else f"unchanged:{row.get('status')}"
        separator = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{separator}{urlencode({'done': outcome, 'id': apr_id})}", status_code=303,
                                headers=SECURITY_HEADERS)

    # ------------------------------------------------------------------ sessions and audit
    async def sessions_page(self, request: Request) -> Response:
        from .._management import session_summary

        rows = [session_summary(r) for r in self.emu.store.session_summaries(200, 0)]
        return self.render(request, "sessions.html", sessions=rows)

    async def session_page(self, request: Request) -> Response:
        from .._management import session_requests, session_summary

        sid = request.path_params["session_id"]
        row = self.emu.store.session_summary(sid)
        if row is None:
            return self.render(request, "message.html", 404, title="Not found", message="No such session.")
        data = session_summary(row)
        data["requests"] = session_requests(self.emu.store, self.emu.store.list_audit(
            limit=10_000, offset=0, session_id=sid, order="ASC"))
        tree = build_span_tree(Session.model_validate(data))
        fragment = request.query_params.get("fragment") == "1"
        return self.render(request, "_session.html" if fragment else "session.html", s=data, tree=tree,
                           fragment=fragment)

    async def audit_page(self, request: Request) -> Response:
        from .._management import audit_page, with_decisions

        q = request.query_params
        filters: dict[str, Any] = {k: (q.get(k) or "").strip() or None for k in ("session_id", "agent_name", "status")}
        try:
            offset = max(0, min(10**9, int(q.get("offset") or 0)))
        except ValueError:
            offset = 0
        rows = self.emu.store.list_audit(limit=AUDIT_PAGE + 1, offset=offset, **filters)
        pages = with_decisions(self.emu.store, [audit_page(r) for r in rows[:AUDIT_PAGE]])
        shown = {k: v for k, v in filters.items() if v}
        return self.render(request, "audit.html", rows=pages, filters=filters, offset=offset,
                           newer=urlencode({**shown, "offset": max(0, offset - AUDIT_PAGE)}) if offset else None,
                           older=urlencode({**shown, "offset": offset + AUDIT_PAGE}) if len(rows) > AUDIT_PAGE
                           else None)

    # ------------------------------------------------------------------ live
    async def events(self, request: Request) -> Response:
        """Server-sent events: one ``change`` message per approval event (the page re-fetches).

        The subscription starts before the answer's headers leave, so a page that saw the stream
        open and then re-fetched has missed nothing."""
        queue = self.emu.events.add_subscriber()

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                try:
                    envelope = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except asyncio.TimeoutError:
                    yield b": ping\n\n"
                    continue
                if envelope.get("event_type") == "closed":
                    return
                details = envelope.get("details") or {}
                data = json.dumps({"event": envelope.get("event_type"), "approval_id": details.get("approval_id"),
                                   "status": details.get("status")})
                yield f"event: change\ndata: {data}\n\n".encode()

        return _EventStream(stream(), lambda: self.emu.events.remove_subscriber(queue),
                            media_type="text/event-stream", headers={**SECURITY_HEADERS, "x-accel-buffering": "no"})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("Not found", status_code=404)
        content = (HERE / "static" / name).read_bytes()
        return Response(content, media_type=STATIC[name],
                        headers={"x-content-type-options": "nosniff", "cache-control": "no-cache"})

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/ui/approvals", status_code=303)

    def routes(self) -> list[Route]:
        page = self.page

        def live(handler: Handler) -> Handler:
            return self.page(handler, api=True)

        return [
            Route("/", self.browser_root, methods=["GET"]),
            Route("/ui", self.home, methods=["GET"]),
            Route("/ui/", self.home, methods=["GET"]),
            Route("/ui/login", self.login_page, methods=["GET"]),
            Route("/ui/login", self.login, methods=["POST"]),
            Route("/ui/logout", page(self.logout), methods=["POST"]),
            Route("/ui/static/{name}", self.static, methods=["GET"]),
            Route("/ui/events", live(self.events), methods=["GET"]),
            Route("/ui/approvals", page(self.approvals_page), methods=["GET"]),
            Route("/ui/history", page(self.history_page), methods=["GET"]),
            Route("/ui/approvals/{approval_id}", page(self.approval_page), methods=["GET"]),
            Route("/ui/approvals/{approval_id}/decide", page(self.decide), methods=["POST"]),
            Route("/ui/sessions", page(self.sessions_page), methods=["GET"]),
            Route("/ui/sessions/{session_id:path}", page(self.session_page), methods=["GET"]),
            Route("/ui/audit", page(self.audit_page), methods=["GET"]),
        ]

    async def browser_root(self, request: Request) -> Response:
        """``GET /``: a browser without a token is sent to the inbox; anything else is proxied as before."""
        if "authorization" not in request.headers and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/ui/approvals", status_code=303)
        return await self.emu.proxy(request)


class _EventStream(StreamingResponse):
    """A streaming answer that ends its event subscription however the stream ends."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def _iso(ts: float | None) -> str | None:
    from .._app import iso

    return iso(ts)


def _token() -> str:
    return secrets.token_urlsafe(32)


def _next(raw: str | None) -> str:
    """A redirect target inside the inbox only (never another site)."""
    if raw and raw.startswith("/ui/") and not raw.startswith("//") and "\\" not in raw and "\n" not in raw:
        return raw
    return "/ui/approvals"


STATUSES = ("pending", "approved", "rejected", "expired", "cancelled")


def _flash(request: Request, emu: Emulator) -> dict[str, str] | None:
    """The outcome of the decision just made (from the redirect), shown only for a real approval."""
    done, apr_id = request.query_params.get("done"), request.query_params.get("id")
    known = ("approved", "rejected", *(f"unchanged:{s}" for s in STATUSES))
    if done not in known or not apr_id or emu.store.get_approval(apr_id) is None:
        return None
    return {"outcome": done, "id": apr_id}


def inbox_routes(emu: Emulator) -> list[Route]:
    """The inbox's routes (served before the proxy's catch-all)."""
    return Inbox(emu).routes()


__all__ = ["CSP", "Inbox", "inbox_routes"]
