"""The emulator's data plane: the proxy (paths, policies, approvals, idempotency outcomes) and the
agent approval endpoints.

See ``docs/protocol.md`` for the contract. Differences from the real AIlink gateway (all
deliberate, see the package docstring for the full list) are marked "deviation"; what the ``real``
profile switches off is decided by :class:`~._profile.Profile`, never by comparing names.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ailink._secrets import mask

from . import _actions
from ._bounds import JSONRefused, NotJSON, cap, idempotency_key_problem, load_json
from ._budgets import Budgets
from ._cache import ResponseCache, cache_key
from ._events import EventHub
from ._generation import Generation
from ._mock_llm import LLMMock
from ._mock_payments import PaymentsMock
from ._outcomes import KeyClaim, Stored, fingerprint
from ._paths import PathRefused, ProxyPath, join_url, normalise
from ._policy import NO_BODY, MatchedAction, RequestFacts, effective_duration, evaluate, reads_body
from ._profile import Profile
from ._review import review_url
from ._routing import Router
from ._store import Store, new_id
from ._upstream import Upstream, UpstreamFailure, response_headers, upstream_request_headers
from ._watch import ApprovalWatch

MAX_WAIT = 50.0
#: On the real gateway their mere presence allows upstream retries of POST/PUT/PATCH.
RETRY_SWITCH_HEADERS = ("idempotency-key", "x-idempotency-key")
GATEWAY_RETRIES = 3
ERROR_TYPES = {
    "token_not_found": "authentication_error", "token_revoked": "authentication_error",
    "unauthorized": "authentication_error", "policy_denied": "permission_error",
    "approval_rejected": "permission_error", "approval_timeout": "timeout_error",
    "approval_not_found": "not_found_error", "not_found": "not_found_error",
    "approval_pending": "conflict_error", "idempotency_in_progress": "conflict_error",
    "idempotency_key_reused": "invalid_request_error", "validation_error": "invalid_request_error",
    "invalid_json": "invalid_request_error", "invalid_path": "invalid_request_error",
    "payload_too_large": "invalid_request_error", "rate_limit_exceeded": "rate_limit_error",
    "upstream_failed": "upstream_error", "outcome_unknown": "upstream_error",
    "internal_server_error": "internal_error", "method_not_allowed": "invalid_request_error",
    "content_blocked": "content_policy_error", "forbidden": "permission_error",
    "spend_cap_reached": "billing_error", "all_upstreams_exhausted": "upstream_error",  # [H15 routing]
}
_LATEST_ISO = "9999-12-31T23:59:59.999Z"


def iso(ts: float | None) -> str | None:
    """An ISO-8601 UTC time (``...Z``); never fails, whatever an older database holds."""
    if ts is None or ts != ts:  # None or NaN
        return None
    try:
        return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return _LATEST_ISO if ts > 0 else None


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


class GatewayError(Exception):
    """An error the gateway itself answers (protocol §3), with the §10.3 outcome marks.

    ``forwarded=False``: refused before anything reached the upstream (``details.forwarded``).
    ``ambiguous=True``: the request may have reached the upstream without a complete answer.
    """

    def __init__(self, status: int, code: str, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, forwarded: bool | None = None,
                 ambiguous: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.forwarded = forwarded
        self.ambiguous = ambiguous

    def all_details(self) -> dict[str, Any] | None:
        details = dict(self.details or {})
        if self.forwarded is False:
            details["forwarded"] = False
        if self.ambiguous:
            details["ambiguous"] = True
        return details or None


def error_response(request_id: str, exc: GatewayError, *, with_details: bool = True) -> JSONResponse:
    """The gateway error body; messages are capped at 1,000 characters (§10.4)."""
    body: dict[str, Any] = {"code": exc.code, "message": cap(exc.message),
                            "type": ERROR_TYPES.get(exc.code, "invalid_request_error"), "request_id": request_id}
    details = exc.all_details() if with_details else None
    if not with_details and exc.code == "all_upstreams_exhausted":  # [H15 routing] the real gateway sends these
        details = exc.details
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=exc.status,
                        headers={**exc.headers, "x-request-id": request_id})


def policy_denied(policy: str, reason: str) -> GatewayError:
    return GatewayError(403, "policy_denied", f"Request blocked by policy '{policy}': {reason}",
                        details={"policy": policy, "reason": reason})


def outcome_unknown(key: str | None, *, approval_id: str | None = None) -> GatewayError:
    details: dict[str, Any] = {"idempotency_key": key}
    if approval_id is not None:
        details["approval_id"] = approval_id
    return GatewayError(
        502, "outcome_unknown",
        "The outcome of this action is unknown: it reached the upstream but no complete answer came back. "
        "It was not sent again; check the upstream before repeating it.",
        details=details, ambiguous=True)


@dataclass
class TraceContext:
    session_id: str | None
    agent_name: str | None
    tool_name: str | None
    parent_span_id: str | None
    span_id: str | None
    trace_id: str | None
    properties: Any
    user_id: str | None
    #: ``X-Tenant-Id``: the organisation the request is made for (audit ``tenant_id``).
    tenant_id: str | None
    external_request_id: str | None
    #: The key that re-attaches approvals (and, with the outcome store, stores outcomes).
    idempotency_key: str | None
    #: ``Idempotency-Key``/``X-Idempotency-Key`` present (the real gateway's retry switch).
    retry_switch: bool
    prefer_async: bool

    @classmethod
    def from_headers(cls, headers: Any, emu: Emulator) -> TraceContext:
        """Read the tracing and idempotency headers (the spellings ``emu`` reads); bad keys → 422 (§10.2)."""
        trace_id = span_id = None
        tp = headers.get("traceparent")
        if tp:
            parts = tp.strip().split("-")
            if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
                trace_id, span_id = parts[1].lower(), parts[2].lower()
        properties = None
        raw_props = headers.get("x-properties")
        if raw_props:
            try:
                properties = load_json(raw_props)
            except ValueError:
                properties = None  # invalid JSON is dropped silently, like the real gateway
        prefer = headers.get("prefer", "")
        prefer_async = any(p.split(";")[0].strip().lower() == "respond-async" for p in prefer.split(","))
        for name in emu.key_headers:
            for value in headers.getlist(name):
                problem = idempotency_key_problem(value)
                if problem is not None:
                    raise GatewayError(422, "validation_error", f"Invalid {name} header: {problem}")
        keys = {value for name in emu.key_headers for value in headers.getlist(name)}
        if len(keys) > 1:
            raise GatewayError(422, "validation_error", "The request names more than one idempotency key")
        return cls(
            session_id=headers.get("x-session-id") or None,
            agent_name=headers.get(emu.generation.agent_name) or headers.get("user-agent"),
            tool_name=headers.get(emu.generation.tool_name),
            # deviation: X-Parent-Span-Id (the enclosing span) wins over the traceparent span id
            parent_span_id=headers.get("x-parent-span-id") or span_id,
            span_id=span_id, trace_id=trace_id, properties=properties,
            user_id=headers.get("x-user-id"), tenant_id=headers.get("x-tenant-id"),
            external_request_id=headers.get("x-request-id"),
            idempotency_key=next(iter(keys), None),
            retry_switch=any(name in headers for name in RETRY_SWITCH_HEADERS),
            prefer_async=prefer_async,
        )

    def audit_fields(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "agent_name": self.agent_name, "tool_name": self.tool_name,
            "parent_span_id": self.parent_span_id, "span_id": self.span_id, "trace_id": self.trace_id,
            "properties": self.properties, "user_id": self.user_id, "tenant_id": self.tenant_id,
            "external_request_id": self.external_request_id, "idempotency_key": self.idempotency_key,
        }



def _json_or_none(body: bytes | None) -> Any:
    """A stored request body as JSON, or None (not JSON, or refused by the parser's bounds)."""
    try:
        return load_json(body, strict_numbers=False) if body else None
    except (JSONRefused, NotJSON):
        return None

@dataclass
class Call:
    """One proxied request while it is processed: everything the proxy's steps need."""

    rid: str
    started: float
    token: dict[str, Any]
    ctx: TraceContext
    method: str
    target: ProxyPath
    query: str
    body: bytes
    #: The parsed JSON body, or ``NO_BODY``.
    body_json: Any
    #: The incoming headers (lower-case names), without the virtual token.
    headers: dict[str, str]
    upstream_url: str
    credential_id: str | None
    audit: dict[str, Any]
    prefer_async: bool
    #: Returns once the client has closed its connection (``None``: not watched).
    client_gone: Callable[[], Awaitable[None]] | None = None
    claim: KeyClaim | None = None
    #: What the matched policy actions ask of the forwarding (headers, the answer's redaction).
    set_headers: dict[str, str] | None = None
    remove_headers: list[str] | None = None
    response_actions: list[list[Any]] | None = None
    #: Set just before the request is sent upstream: from here on a failure is ambiguous.
    forwarded: bool = False
    # [H15 routing] the matched ``dynamic_route`` action, the route plan (``_routing``), and what runs
    # once the call is audited (``fn(status, audit extras)``: in-flight counts, budget reservations).
    route_action: Any = None
    route: Any = None
    on_done: list[Callable[[int, dict[str, Any]], None]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.target.path

    @property
    def key(self) -> str | None:
        return self.ctx.idempotency_key

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.method, self.path, self.query, self.body)


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.decode("latin-1")
    return quote(request.scope["path"], safe="/%:@!$&'()*+,;=-._~")


class Emulator:
    def __init__(self, store: Store, admin_key: str, *, profile: Profile, generation: Generation,
                 public_url: str | None, max_body_bytes: int, upstream_timeout: float,
                 retry_backoff: float = 0.5) -> None:
        self.store = store
        self.admin_key = admin_key
        self.profile = profile
        self.generation = generation
        #: The request headers whose value is the request's idempotency key.
        self.key_headers: tuple[str, ...] = (generation.idempotency_key,) + (
            RETRY_SWITCH_HEADERS if profile.plain_key_headers else ())
        #: Marks an answer that came from the upstream (first or replayed), as the real gateway does.
        self.upstream_marker = [generation.cb_state, "disabled"]
        self.public_url = public_url
        self.max_body_bytes = max_body_bytes
        self.upstream_timeout = upstream_timeout
        self.payments = PaymentsMock()
        self.llm = LLMMock()
        self.upstream = Upstream({"payments.mock": self.payments.app, "llm.mock": self.llm.app},
                                 timeout=upstream_timeout, retry_backoff=retry_backoff)
        self.cache = ResponseCache()
        self._decided: dict[str, asyncio.Event] = {}
        self._executed: dict[str, asyncio.Event] = {}
        self._rate: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Approval and policy events for the inbox's live view and webhooks (``_events``, ``_webhooks``).
        self.events = EventHub(self)
        #: [H15 routing] upstream pools, breakers, dynamic routes (``_routing``); spend caps (``_budgets``).
        self.routing = Router(self)
        self.budgets = Budgets(self)
        #: The open approval-event streams of agents (``_watch``, protocol §4.4).
        self.watch = ApprovalWatch(self)
        #: The event loop serving the app (set at start-up), for calls from other threads.
        self.loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ plumbing
    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.watch.close_all()
        await self.events.aclose()
        await self.upstream.aclose()

    def begin_shutdown(self) -> None:
        """End the approval-event streams now (from any thread): a server about to stop waits for
        the answers still open, and a stream never ends by itself."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop stopped in the meantime
                loop.call_soon_threadsafe(self.watch.close_all)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def read_body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        too_large = GatewayError(413, "payload_too_large",
                                 f"Request body exceeds the limit of {self.max_body_bytes} bytes")
        if length and length.isdigit() and int(length) > self.max_body_bytes:
            raise too_large
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def json_body(self, request: Request) -> dict[str, Any]:
        raw = await self.read_body(request)
        if not raw.strip():
            return {}
        try:
            data = load_json(raw)
        except JSONRefused as exc:
            raise GatewayError(400, "invalid_json", f"Request body refused: {exc}") from None
        except NotJSON:
            raise GatewayError(400, "invalid_json", "Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise GatewayError(422, "validation_error", "Request body must be a JSON object")
        return data

    def check_admin(self, request: Request) -> None:
        given = request.headers.get("x-admin-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            if auth.startswith("Bearer "):
                given = auth[len("Bearer "):]
        if not given or not hmac.compare_digest(given.encode(), self.admin_key.encode()):
            raise GatewayError(401, "unauthorized", "Missing or invalid admin key (X-Admin-Key)")

    def auth_token(self, request: Request) -> dict[str, Any]:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer " + self.generation.token_prefix):
            token = self.store.token_by_secret(auth[len("Bearer "):])
            if token is not None and token["is_active"]:
                return token
        raise GatewayError(401, "token_not_found", "Invalid or missing API token. Ensure "
                                                   f"{self.generation.env_prefix}API_KEY is set correctly.")

    def _audit(self, call: Call, status: int, **extra: Any) -> None:
        self.store.add_audit({**call.audit, **self.routing.audit_fields(call), "status_code": status,
                              "latency_ms": int((time.monotonic() - call.started) * 1000), **extra})
        self._call_done(call, status, extra)

    @staticmethod
    def _call_done(call: Call, status: int, extra: dict[str, Any]) -> None:
        """[H15 routing] Run what waits for the call's end (once): release reservations and counts."""
        done, call.on_done = call.on_done, []
        for fn in done:
            fn(status, extra)

    # ------------------------------------------------------------------ approvals core
    def notify_decided(self, apr_id: str) -> None:
        """Wake what waits on ``apr_id``: held requests and long polls, and its token's approval watchers."""
        event = self._decided.pop(apr_id, None)
        if event is not None:
            event.set()
        if self.profile.approvals_watch:
            row = self.store.get_approval(apr_id)
            if row is not None:
                self.watch.settled(row)

    def refresh_approval(self, apr_id: str) -> dict[str, Any] | None:
        row = self.store.get_approval(apr_id)
        if row and row["status"] == "pending" and row["expires_at"] <= time.time():
            if self.store.transition_approval(apr_id, "expired", "approval timed out", channel="expiry"):
                self.notify_decided(apr_id)
                self.events.approval_settled(apr_id)
            row = self.store.get_approval(apr_id)
        return row

    def expire_due(self) -> None:
        for apr_id in self.store.pending_expired(time.time()):
            self.refresh_approval(apr_id)

    async def wait_decided(self, apr_id: str, timeout: float) -> dict[str, Any]:
        """Wait until the approval leaves ``pending`` (or its expiry, or ``timeout``); event driven."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._decided.setdefault(apr_id, asyncio.Event())
            row = self.refresh_approval(apr_id)
            assert row is not None
            if row["status"] != "pending":
                return row
            remaining = min(deadline - loop.time(), row["expires_at"] - time.time())
            if remaining <= 0:
                return row
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), remaining + 0.005)
            if loop.time() >= deadline:
                row = self.refresh_approval(apr_id)
                assert row is not None
                return row

    def decide(self, apr_id: str, status: str, reason: str | None, *, reviewed_by: str | None = None,
               channel: str | None = None) -> bool:
        """Decide a pending approval (False when it was not pending), recording who and through which channel."""
        updated = self.store.transition_approval(apr_id, status, reason, reviewed_by=reviewed_by, channel=channel)
        if updated:
            self.notify_decided(apr_id)
            self.events.approval_settled(apr_id)
            if status == "approved" and self.profile.outcome_store:
                self.spawn(self.ensure_executed(apr_id))
        return updated

    async def ensure_executed(self, apr_id: str) -> dict[str, Any]:
        """Send an approved request upstream at most once; everyone else waits for its stored outcome.

        A complete answer is kept (any status). Nothing reached the upstream (connection refused):
        the execution stays "not started" and the next fetch tries again. Sent without a complete
        answer (or interrupted): *outcome unknown*, never sent again.
        """
        row = self.store.get_approval(apr_id)
        assert row is not None
        if row["status"] != "approved" or row["exec_state"] in ("done", "unknown"):
            return row
        if self.store.begin_execution(apr_id):
            started = time.monotonic()
            status = 502
            usage: dict[str, Any] = {}
            try:
                stored = await self._execute_stored(row, usage)
            except UpstreamFailure as failure:
                if failure.forwarded:
                    self.store.execution_unknown(apr_id)
                else:
                    self.store.execution_not_started(apr_id)
            except BaseException:  # cancelled or broken mid-send: the upstream may have acted
                self.store.execution_unknown(apr_id)
                raise
            else:
                status = stored.status
                self.store.finish_execution(apr_id, stored.status, stored.headers, stored.body)
            finally:
                event = self._executed.pop(apr_id, None)
                if event is not None:
                    event.set()
            self._audit_execution(row, status, started, usage)
        else:
            event = self._executed.setdefault(apr_id, asyncio.Event())
            row = self.store.get_approval(apr_id)
            assert row is not None
            if row["exec_state"] == "running":
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), self.upstream_timeout + 10)
        row = self.store.get_approval(apr_id)
        assert row is not None
        return row

    async def _execute_stored(self, row: dict[str, Any], usage: dict[str, Any]) -> Stored:
        """Send the approved request ``row`` upstream; ``usage`` receives its LLM usage and cost (audit fields)."""
        key = row["idempotency_key"] if self.profile.forward_idempotency_key else None
        ctx = row["context"] or {}
        headers, url = upstream_request_headers(row["req_headers"], credential=self._credential(row["credential_id"]),
                                                token_ref=row["token_ref"], url=row["req_url"], idempotency_key=key,
                                                set_headers=ctx.get("set_headers"),
                                                remove_headers=ctx.get("remove_headers"))
        from ._metering import Meter, StoredCall  # [H14 LLM usage] an approved LLM call is priced like any other

        resp = await self.upstream.open(row["req_method"], url, headers, row["req_body"])
        out_headers = [*response_headers(resp), self.upstream_marker]
        content = await self.upstream.read(resp)
        priced = StoredCall(row["req_method"], str(ctx.get("path") or ""), _json_or_none(row["req_body"]),
                            {"model": ctx.get("model")} if ctx.get("model") else {})
        content, out_headers = Meter.start(self, priced).read_whole(resp.status_code, out_headers, content)
        usage.update(priced.audit)
        return self._answer(resp, out_headers, content, ctx.get("response_actions"), str(ctx.get("request_id")))[0]

    def _audit_execution(self, row: dict[str, Any], status: int, started: float,
                         usage: dict[str, Any] | None = None) -> None:
        ctx = row["context"] or {}
        self.store.add_audit({
            **{k: ctx.get(k) for k in ("session_id", "agent_name", "tool_name", "parent_span_id", "span_id",
                                       "trace_id", "properties", "user_id", "tenant_id", "external_request_id",
                                       "idempotency_key", "token_prefix", "request_id", "model", "experiment",
                                       "variant", "policy_tags")},
            "token_ref": row["token_ref"], "method": row["req_method"], "path": ctx.get("path"),
            "upstream_url": row["req_url"].split("?", 1)[0], "status_code": status,
            "latency_ms": int((time.monotonic() - started) * 1000), "policy_result": "approved",
            "policies_evaluated": ctx.get("policies_evaluated"), "approval_id": row["id"],
            "approval_wait_ms": int(((row["decided_at"] or time.time()) - row["created_at"]) * 1000),
            **(usage or {}),
        })

    def _credential(self, credential_id: str | None) -> dict[str, Any] | None:
        return self.store.get_credential(credential_id) if credential_id else None

    # ------------------------------------------------------------------ routing
    def route(self, token: dict[str, Any], target: ProxyPath) -> tuple[str, str | None]:
        """(base URL, credential id) of a normalised path: a registered service, else the token's upstream."""
        if target.service is not None:
            service = self.store.get_service(target.service)
            if service is None:
                raise GatewayError(502, "upstream_failed", f"Service not found: {target.service}")
            return service["base_url"], service["credential_id"] or token["credential_id"]
        return token["upstream_url"], token["credential_id"]

    def check_rate(self, key: str, window: float, max_requests: int) -> float | None:
        """None when allowed (and counted); else seconds until a slot frees."""
        now = time.monotonic()
        hits = self._rate.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= max_requests:
            return (hits[0] + window - now) if hits else window
        hits.append(now)
        return None

    # ------------------------------------------------------------------ data plane
    async def proxy(self, request: Request) -> Response:
        try:
            call = await self._admit(request)
        except GatewayError as exc:
            if exc.forwarded is None:
                exc.forwarded = False
            raise
        call.client_gone = lambda: _disconnected(request)
        try:
            return await self._handle(call)
        except ClientGone:  # nobody is listening any more: nothing was sent, nothing to answer
            self._call_done(call, 499, {"error_code": "client_gone"})  # [H15 routing] release what it holds
            return Response(status_code=499)
        except GatewayError as exc:
            if exc.forwarded is None and not exc.ambiguous and not call.forwarded:
                exc.forwarded = False
            if call.claim is not None:
                if exc.ambiguous:
                    call.claim.unknown()
                else:
                    call.claim.release()
            raise
        except BaseException:
            if call.claim is not None:
                call.claim.abandon()
            self._call_done(call, 0, {"error_code": "interrupted"})  # [H15 routing]
            raise

    async def _admit(self, request: Request) -> Call:
        """Everything checked before policies: body size, token, headers, path, route, JSON body."""
        started = time.monotonic()
        rid = request.state.request_id = new_request_id()
        body = await self.read_body(request)
        token = self.auth_token(request)
        ctx = TraceContext.from_headers(request.headers, self)
        method = request.method.upper()
        raw_path = _raw_path(request)
        query = request.scope.get("query_string", b"").decode("latin-1")
        audit: dict[str, Any] = {
            **ctx.audit_fields(), "token_ref": token["ref"], "token_prefix": mask(token["token"]),
            "request_id": rid, "method": method, "path": cap(raw_path),
        }

        def refused(exc: GatewayError) -> GatewayError:
            self.store.add_audit({**audit, "status_code": exc.status, "policy_result": "error",
                                  "error_code": exc.code, "latency_ms": int((time.monotonic() - started) * 1000)})
            return exc

        try:
            target = normalise(raw_path)
        except PathRefused as exc:
            raise refused(GatewayError(400, "invalid_path", f"Invalid path: {exc}")) from None
        audit["path"] = target.path
        try:
            base, credential_id = self.route(token, target)
        except GatewayError as exc:
            raise refused(exc) from None
        audit["upstream_url"] = join_url(base, target.forward_path)
        body_json: Any = NO_BODY
        if body.strip():
            try:
                body_json = load_json(body, strict_numbers=False)
            except JSONRefused as exc:
                raise refused(GatewayError(400, "invalid_json", f"Request body refused: {exc}")) from None
            except NotJSON:
                body_json = NO_BODY  # forwarded as is: the upstream judges it
        if isinstance(body_json, dict) and isinstance(body_json.get("model"), str):
            audit["model"] = body_json["model"]
        return Call(
            rid=rid, started=started, token=token, ctx=ctx, method=method, target=target, query=query, body=body,
            body_json=body_json,
            headers={k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"},
            upstream_url=join_url(base, target.forward_path, query if self.profile.forward_query else ""),
            credential_id=credential_id, audit=audit,
            prefer_async=ctx.prefer_async and self.profile.respond_async,
        )

    async def _handle(self, call: Call) -> Response:
        if call.ctx.session_id:
            session = self.store.touch_session(call.ctx.session_id, call.token["ref"])
            if session["status"] != "active":
                denied = policy_denied("SessionLifecycle", f"Session '{call.ctx.session_id}' is {session['status']} "
                                                           "— cannot accept new requests")
                self._audit(call, 403, policy_result="denied", deny_reason=denied.message, error_code=denied.code)
                self._denied_event(call, "SessionLifecycle", denied)
                raise denied
        if self.profile.outcome_store and call.key is not None:
            answer = await self._claim_or_answer(call)
            if answer is not None:
                return answer

        self._apply_request_transforms(call)
        policies = self.store.policies_by_ids(call.token["policy_ids"] or [])
        call.audit["policies_evaluated"] = [p["name"] for p in policies]
        if call.body.strip() and call.body_json is NO_BODY and reads_body(policies):
            exc = GatewayError(400, "invalid_json", "This token's policies inspect the request body, "
                                                    "so it must be a JSON document")
            self._audit(call, 400, policy_result="error", error_code=exc.code)
            raise exc
        facts = RequestFacts(
            method=call.method, path=call.path, headers=call.headers,
            query=dict(parse_qsl(call.query, keep_blank_values=True)), body_bytes=call.body, body=call.body_json,
            agent_name=call.ctx.agent_name, token_ref=call.token["ref"], token_name=call.token["name"],
        )
        approval: MatchedAction | None = None
        shadow: list[str] = []
        matches = list(evaluate(policies, facts))
        self.events.webhooks.policy_matches(call, matches)  # the ``webhook`` action, in the background
        plan = _actions.Plan(body=call.body_json if call.body_json is not NO_BODY else _actions.NOT_JSON, seed=call.rid)
        for m in matches:
            kind = m.action.get("action")
            if m.mode == "shadow":
                if kind in ("deny", "require_approval", "rate_limit", "tool_scope", "redact"):
                    shadow.append(f"{m.policy_name}:{kind}")
                continue
            if kind == "deny":
                exc = policy_denied(m.policy_name, str(m.action.get("message") or "request blocked by policy"))
                self._audit(call, 403, policy_result="denied", deny_reason=cap(exc.message), error_code=exc.code)
                self._denied_event(call, m.policy_name, exc)
                raise exc
            if kind == "rate_limit":
                self._check_rate_limit(call, m)
            elif kind == "require_approval" and approval is None:
                approval = m
            elif kind == "dynamic_route":  # [H15 routing]
                if call.route_action is None:
                    call.route_action = m
            elif kind in _actions.SUPPORTED:
                try:
                    _actions.apply(m.policy_name, m.action, plan)
                except _actions.ActionRefused as refused:
                    exc = GatewayError(refused.status, refused.code, refused.message, details=refused.details)
                    self._audit(call, exc.status, policy_result="denied", deny_reason=cap(exc.message),
                                error_code=exc.code)
                    raise exc from None
        if shadow:
            call.audit["deny_reason"] = "shadow: " + ", ".join(shadow)
        self._follow_plan(call, plan)  # the body as the actions left it: routing and budgets see that one
        if plan.delay:
            await asyncio.sleep(plan.delay)
        self.budgets.check(call)  # [H15 routing] 402 when a hard spend cap is reached
        self.routing.prepare(call)  # [H15 routing] pool or dynamic route; 503 when every circuit is open
        if approval is not None:
            return await self._gate(call, approval)
        return await self._forward(call)

    def _denied_event(self, call: Call, policy: str, exc: GatewayError) -> None:
        self.events.policy_denied(token_ref=call.token["ref"], policy=policy,
                                  reason=str((exc.details or {}).get("reason") or exc.message), method=call.method,
                                  path=call.path, context=call.ctx.audit_fields(), request_id=call.rid)

    def _follow_plan(self, call: Call, plan: _actions.Plan) -> None:
        """Take over what the policy actions decided: the body, forwarded headers, the answer's
        redaction, and what the audit row records (split variant, tags)."""
        if plan.body_changed:
            call.body_json = plan.body
            call.body = json.dumps(plan.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            if isinstance(plan.body, dict) and isinstance(plan.body.get("model"), str):
                call.audit["model"] = plan.body["model"]
        call.set_headers = plan.set_headers or None
        call.remove_headers = plan.remove_headers or None
        call.response_actions = plan.response_actions or None
        if plan.variant is not None:
            call.audit["experiment"], call.audit["variant"] = plan.experiment, plan.variant
        if plan.tags:
            call.audit["policy_tags"] = plan.tags

    def _apply_request_transforms(self, call: Call) -> None:
        """Model aliases and guardrails (``_mgmt._transforms``) rewrite the body, or refuse it with
        403 ``content_blocked``, before the policies see it."""
        from ._mgmt._transforms import transform_request  # the management package imports this module

        body = transform_request(self, call.token, call.headers, call.body, call.audit,
                                 lambda status, **extra: self._audit(call, status, **extra))
        if body is not call.body:
            call.body = body
            try:
                call.body_json = load_json(body, strict_numbers=False)
            except (JSONRefused, NotJSON):
                call.body_json = NO_BODY

    def _check_rate_limit(self, call: Call, m: MatchedAction) -> None:
        window = effective_duration(m.action.get("window", "60s"), 60.0)
        scope = m.action.get("key", "per_token")
        who = {"per_token": call.token["ref"], "per_agent": call.ctx.agent_name or "", "global": "*"}.get(scope, "*")
        wait = self.check_rate(f"{m.policy_id}:{m.rule_index}:{scope}:{who}", window, int(m.action["max_requests"]))
        if wait is None:
            return
        retry = max(1, math.ceil(wait))
        exc = GatewayError(
            429, "rate_limit_exceeded",
            f"Rate limit exceeded by policy '{m.policy_name}': {m.action['max_requests']} "
            f"requests per {m.action.get('window', '60s')}",
            details={"policy": m.policy_name, "retry_after": retry},
            headers={"retry-after": str(retry), "x-ratelimit-reset": str(int(time.time()) + retry)},
        )
        self._audit(call, 429, policy_result="rate_limited", deny_reason=cap(exc.message), error_code=exc.code)
        raise exc

    # ------------------------------------------------------------------ idempotency (outcome store)
    async def _claim_or_answer(self, call: Call) -> Response | None:
        """Claim the key (``None``: process the request) or answer from what the key already holds."""
        assert call.key is not None
        ref = call.token["ref"]
        for _attempt in range(2):
            if call.method == "GET":  # a GET's key only re-attaches to its approval
                existing = self.store.idem_get(ref, call.key)
                if existing is None:
                    return None
            else:
                existing = self.store.idem_claim(ref, call.key, call.fingerprint)
                if existing is None:
                    call.claim = KeyClaim(self.store, ref, call.key)
                    return None
            answer = await self._existing(existing, call)
            if answer is not None:
                return answer
            # a withdrawn (cancelled) approval: forget the key and process the request afresh
            self.store.idem_delete(ref, call.key)
        return None

    async def _existing(self, rec: dict[str, Any], call: Call) -> Response | None:
        """The answer to a request whose idempotency key is known (``None``: process it afresh).

        Every answer given here is audited too (``replayed``, ``pending_approval``, ``rejected``,
        ``timeout``), so a re-sent action shows in its session next to the original.
        """
        if rec["fingerprint"] != call.fingerprint:
            raise GatewayError(422, "idempotency_key_reused",
                               "This idempotency key was already used with a different request "
                               "(method, path, query or body)")
        state = rec["state"]
        if state in ("in_flight", "forwarding"):
            raise GatewayError(409, "idempotency_in_progress",
                               "A request with this idempotency key is still being processed",
                               headers={"retry-after": "1"})
        if state == "done":
            stored = Stored(rec["status"], rec["headers"] or [], rec["body"] or b"")
            self._audit(call, stored.status, policy_result="replayed")
            return stored.to_response(call.rid, **{"idempotent-replayed": "true"})
        if state == "unknown":
            exc = outcome_unknown(call.key)
            self._audit(call, exc.status, policy_result="replayed", error_code=exc.code)
            raise exc
        row = self.refresh_approval(rec["approval_id"])
        if row is None or row["status"] == "cancelled":
            return None
        if row["status"] == "pending":
            if call.prefer_async:
                self._audit(call, 202, policy_result="pending_approval", approval_id=row["id"])
                return self.accepted(row, call.rid)
            row = await self.wait_decided(row["id"], max(0.0, row["expires_at"] - time.time()) + 0.05)
            if row["status"] == "cancelled":
                return None
            response = await self.outcome_response(row, call, replayed=False, audit=True)
        else:
            response = await self.outcome_response(row, call, replayed=True, audit=True)
        self._audit(call, response.status_code, policy_result="replayed", approval_id=row["id"])
        return response

    # ------------------------------------------------------------------ approvals on the data plane
    async def _gate(self, call: Call, approval: MatchedAction) -> Response:
        timeout = effective_duration(approval.action.get("timeout", "30m"), 1800.0)
        if not self.profile.outcome_store:
            return await self._hold_and_forward(call, approval, timeout)
        row = self._create_approval(call, approval, timeout)
        apr_id = row["id"]
        if call.claim is not None:
            call.claim.attach(apr_id)
        elif call.key is not None:  # a GET: the key only re-attaches to the approval
            self.store.idem_claim(call.token["ref"], call.key, call.fingerprint, "approval", apr_id)
        if call.prefer_async:
            self._audit(call, 202, policy_result="pending_approval", approval_id=apr_id)
            return self.accepted(self.store.get_approval(apr_id) or row, call.rid)
        row = await self.wait_decided(apr_id, max(0.0, row["expires_at"] - time.time()) + 0.05)
        return await self.outcome_response(row, call, replayed=False, audit=True)

    async def _hold_and_forward(self, call: Call, approval: MatchedAction, timeout: float) -> Response:
        """The real gateway's approval: hold the request, then forward *this* request if approved.

        A key re-attaches to the token's approval under that key whatever its state or body (the real
        gateway compares nothing); an approved one lets every re-send through again.
        """
        row = self.store.approval_by_key(call.token["ref"], call.key) if call.key is not None else None
        if row is None:
            row = self._create_approval(call, approval, timeout)
        row = await self._hold(call, row)
        if row["status"] == "approved":
            return await self._forward(call, approval_id=row["id"])
        return await self.outcome_response(row, call, replayed=False, audit=True)

    async def _hold(self, call: Call, row: dict[str, Any]) -> dict[str, Any]:
        """Wait for the decision while the client stays connected; a client that hangs up abandons the
        held request (raises :class:`ClientGone`; as the real gateway, whose held handler is dropped with
        its connection). The approval stays as it is: a re-send with the same key re-attaches to it."""
        decided = asyncio.ensure_future(
            self.wait_decided(row["id"], max(0.0, row["expires_at"] - time.time()) + 0.05))
        if call.client_gone is None:
            return await decided
        gone = asyncio.ensure_future(call.client_gone())
        try:
            await asyncio.wait({decided, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not decided.done():
                decided.cancel()
        if not decided.done() or decided.cancelled():
            raise ClientGone
        return decided.result()

    def _create_approval(self, call: Call, approval: MatchedAction, timeout: float) -> dict[str, Any]:
        preview = call.body.decode("utf-8", "replace")
        row = self.store.create_approval({
            "token_ref": call.token["ref"], "idempotency_key": call.key, "policy_name": approval.policy_name,
            "summary": {"method": call.method, "path": call.path, "agent": call.ctx.agent_name,
                        "upstream": call.audit["upstream_url"], "tool_name": call.ctx.tool_name,
                        "session_id": call.ctx.session_id,
                        "body_preview": (preview[:2000] + "…") if len(preview) > 2000 else (preview or None)},
            "expires_at": time.time() + timeout, "req_method": call.method, "req_url": call.upstream_url,
            "req_headers": call.headers, "req_body": call.body, "credential_id": call.credential_id,
            "context": {**call.ctx.audit_fields(), "path": call.path,
                        "policies_evaluated": call.audit.get("policies_evaluated"),
                        "token_prefix": call.audit["token_prefix"], "request_id": call.rid,
                        "model": call.audit.get("model"), "query": call.query,
                        "experiment": call.audit.get("experiment"), "variant": call.audit.get("variant"),
                        "policy_tags": call.audit.get("policy_tags"), "set_headers": call.set_headers,
                        "remove_headers": call.remove_headers, "response_actions": call.response_actions},
        })
        self.events.approval_requested(row)
        return row

    async def outcome_response(self, row: dict[str, Any], call: Call | None, *, replayed: bool,
                               audit: bool = False) -> Response:
        """The answer an approval's state gives: its stored result, or the error that state means."""
        status = row["status"]
        apr_id = row["id"]
        rid = call.rid if call is not None else new_request_id()
        audited = call if audit else None
        wait_ms = int(((row["decided_at"] or time.time()) - row["created_at"]) * 1000)
        if status == "approved":
            row = await self.ensure_executed(apr_id)
            state = row["exec_state"]
            if state == "done":
                stored = Stored(row["resp_status"], row["resp_headers"] or [], row["resp_body"] or b"")
                extra = {self.generation.approval_id: apr_id}
                if replayed:
                    extra["idempotent-replayed"] = "true"
                return stored.to_response(rid, **extra)
            if state == "unknown":
                exc = outcome_unknown(row["idempotency_key"], approval_id=apr_id)
            elif state == "running":
                exc = GatewayError(409, "idempotency_in_progress", "The approved request is still being sent",
                                   details={"approval_id": apr_id}, headers={"retry-after": "1"})
            else:  # not started: nothing reached the upstream; the next fetch tries again
                exc = GatewayError(502, "upstream_failed",
                                   "The approved request could not reach the upstream; it was not sent. "
                                   "Fetch the result again to retry.", details={"approval_id": apr_id},
                                   forwarded=False)
            if audited is not None:
                self._audit(audited, exc.status, policy_result="approved", approval_id=apr_id,
                            approval_wait_ms=wait_ms, error_code=exc.code)
            raise exc
        if status in ("rejected", "cancelled"):
            reason = row["reason"] or ("withdrawn by the agent" if status == "cancelled" else None)
            exc = GatewayError(403, "approval_rejected", "Request was rejected by a reviewer."
                               if status == "rejected" else "The approval request was withdrawn.",
                               details={"approval_id": apr_id, "reason": reason, "status": status,
                                        "policy": row["policy_name"]})
            if audited is not None:
                self._audit(audited, 403, policy_result="rejected", approval_id=apr_id, approval_wait_ms=wait_ms,
                            error_code=exc.code, deny_reason=reason)
            raise exc
        timeout_s = round(row["expires_at"] - row["created_at"], 3)
        exc = GatewayError(408, "approval_timeout", "The approval request timed out without a decision.",
                           details={"approval_id": apr_id, "timeout": timeout_s, "policy": row["policy_name"]})
        if audited is not None:
            self._audit(audited, 408, policy_result="timeout", approval_id=apr_id, approval_wait_ms=wait_ms,
                        error_code=exc.code)
        raise exc

    def accepted(self, row: dict[str, Any], rid: str) -> Response:
        apr_id = row["id"]
        poll = f"/v1/approvals/{apr_id}"
        body = {
            "status": "pending_approval", "approval_id": apr_id, "request_id": apr_id,
            "expires_at": iso(row["expires_at"]), "poll_url": poll, "idempotency_key": row["idempotency_key"],
            "policy": row["policy_name"],
            "summary": {"method": row["summary"].get("method"), "path": row["summary"].get("path")},
            "review_url": review_url(self.public_url, apr_id),
            **self._cursor(),
        }
        return JSONResponse(body, status_code=202, headers={
            "location": poll, "retry-after": "2", "preference-applied": "respond-async", "x-request-id": rid,
            self.generation.approval_id: apr_id,
        })

    # ------------------------------------------------------------------ forwarding
    def _retries(self, call: Call) -> int:
        """Gateway-side upstream retries: only in a profile that has them (the real gateway's rules)."""
        if not self.profile.gateway_retries:
            return 0
        if isinstance(call.body_json, dict) and call.body_json.get("stream") is True:
            return 0
        if call.method in ("POST", "PUT", "PATCH") and not call.ctx.retry_switch:
            return 0
        return GATEWAY_RETRIES

    async def _forward(self, call: Call, *, approval_id: str | None = None) -> Response:
        """Answer from the response cache, or send the request upstream (its planned targets in turn);
        keep a complete answer under the key (and in the cache), or mark the key unknown."""
        result: dict[str, Any] = {"policy_result": "approved" if approval_id else "allowed"}
        if approval_id is not None:
            result["approval_id"] = approval_id
        cached_as = cache_key(call.token["ref"], call.method, call.headers, call.body_json, self.generation.no_cache)
        if cached_as is not None:
            hit = self.cache.get(cached_as)
            if hit is not None:  # nothing is sent: no cost, no reservation, no route
                stored = Stored(hit.status, [["content-type", hit.content_type], [self.generation.cache_status, "HIT"]],
                                hit.body)
                if call.claim is not None:
                    call.claim.complete(stored)
                self._audit(call, hit.status, cache_hit=1, **result)
                return stored.to_response(call.rid)
        await self.budgets.reserve(call)  # [H15 routing] hold the estimated cost (may wait, or refuse 402)
        call.forwarded = True
        if call.claim is not None:
            call.claim.forwarding()
        try:  # [H15 routing] the planned targets in turn, failing over only where nothing was processed
            resp = await self.routing.send(call, self._retries(call))
        except UpstreamFailure as failure:
            raise self._failed(call, failure, result) from None
        out_headers = [*response_headers(resp), *self.routing.answer_headers(call)]
        from ._metering import Meter  # [H14 LLM usage] prices LLM answers into the audit row (see _metering)

        meter = Meter.start(self, call)
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            out_headers += self.budgets.answer_headers(call)  # [H15 routing]
            return self._stream(call, resp, out_headers, result, meter.stream(resp.aiter_bytes()))
        try:
            content = await self.upstream.read(resp)
        except UpstreamFailure as failure:
            raise self._failed(call, failure, result) from None
        content, out_headers = meter.buffered(resp.status_code, out_headers, content)
        out_headers += self.budgets.answer_headers(call)  # [H15 routing] budget remaining, shadow-cap warnings
        stored, refused = self._answer(resp, out_headers, content, call.response_actions, call.rid)
        if call.claim is not None:
            call.claim.complete(stored)
        if refused:  # by a response-phase action: the upstream did act, its answer is withheld
            self._audit(call, stored.status, **{**result, "policy_result": "denied"}, error_code="content_blocked")
        else:
            if cached_as is not None:
                self.cache.put(cached_as, stored.status, resp.headers.get("content-type", ""), stored.body)
            self._audit(call, stored.status, **result)
        return stored.to_response(call.rid)

    def _answer(self, resp: httpx.Response, headers: list[list[str]], content: bytes,
                response_actions: list[list[Any]] | None, rid: str) -> tuple[Stored, bool]:
        """The complete upstream answer as the client gets it: redacted by the policies' response
        actions, or (``True``) replaced by their 403 ``content_blocked``."""
        try:
            content = _actions.redact_answer(response_actions or [], resp.headers.get("content-type", ""), content)
        except _actions.ActionRefused as refused:
            refusal = GatewayError(refused.status, refused.code, refused.message, details=refused.details)
            blocked = error_response(rid, refusal, with_details=self.profile.error_details)
            kept = [[k, v] for k, v in blocked.headers.items() if k not in ("content-length", "x-request-id")]
            return Stored(blocked.status_code, kept, bytes(blocked.body)), True
        return Stored(resp.status_code, headers, content), False

    def _failed(self, call: Call, failure: UpstreamFailure, result: dict[str, Any]) -> GatewayError:
        if failure.forwarded:
            exc = GatewayError(502, "upstream_failed", failure.message, ambiguous=True,
                               details={"idempotency_key": call.key} if call.key is not None else None)
        else:
            exc = GatewayError(502, "upstream_failed", failure.message, forwarded=False)
        self._audit(call, exc.status, error_code=exc.code, **result)
        return exc

    def _stream(self, call: Call, resp: httpx.Response, headers: list[list[str]],
                result: dict[str, Any], chunks: AsyncIterator[bytes]) -> Response:
        """Pass an event stream (``chunks``, read from ``resp``) through as it arrives; keep it once
        complete, else the key is unknown."""
        collected: list[bytes] = []
        complete = False

        settled = False

        async def body() -> AsyncIterator[bytes]:
            nonlocal complete
            try:
                async for chunk in chunks:  # an upstream cut propagates: the client sees it cut
                    collected.append(chunk)
                    yield chunk
                complete = True
            finally:
                settle()  # before the stream's last message, so the audit is there when the client is done

        def settle() -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            if call.claim is not None:
                if complete:
                    call.claim.complete(Stored(resp.status_code, headers, b"".join(collected)))
                else:
                    call.claim.unknown()
            self._audit(call, resp.status_code, is_streaming=1, **result)

        out = {k: v for k, v in headers}
        out["x-request-id"] = call.rid
        out["x-accel-buffering"] = "no"
        return _SettlingStream(body(), settle, resp, status_code=resp.status_code, headers=out)

    # ------------------------------------------------------------------ agent approval endpoints [ext]
    def _own_approval(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        token = self.auth_token(request)
        apr_id = request.path_params["approval_id"]
        row = self.refresh_approval(apr_id)
        if row is None or not hmac.compare_digest(row["token_ref"], token["ref"]):
            raise GatewayError(404, "approval_not_found", "No such approval request")
        return token, row

    def approval_status(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "approval_id": row["id"], "status": row["status"], "reason": row["reason"],
            "decided_at": iso(row["decided_at"]), "expires_at": iso(row["expires_at"]),
            "created_at": iso(row["created_at"]), "result_url": f"/v1/approvals/{row['id']}/result",
            "policy": row["policy_name"], "idempotency_key": row["idempotency_key"],
            "summary": {"method": row["summary"].get("method"), "path": row["summary"].get("path")},
            "review_url": review_url(self.public_url, row["id"]),
            **self._cursor(),
        }

    def _cursor(self) -> dict[str, Any]:
        """``event_cursor``: where an approval watch must start to see every later settlement (§4.4)."""
        return {"event_cursor": self.store.settled_seq} if self.profile.approvals_watch else {}

    async def agent_get_approval(self, request: Request) -> Response:
        rid = request.state.request_id = new_request_id()
        _, row = self._own_approval(request)
        raw_wait = request.query_params.get("wait", "0")
        try:
            wait = min(MAX_WAIT, max(0.0, float(raw_wait)))
        except ValueError:
            raise GatewayError(422, "validation_error", "wait must be a number of seconds (0..50)") from None
        if row["status"] == "pending" and wait > 0:
            row = await self.wait_decided(row["id"], wait)
        headers = {"x-request-id": rid}
        if row["status"] == "pending":
            headers["retry-after"] = "2"
        return JSONResponse(self.approval_status(row), headers=headers)

    async def agent_approval_result(self, request: Request) -> Response:
        request.state.request_id = new_request_id()
        _, row = self._own_approval(request)
        if row["status"] == "pending":
            raise GatewayError(409, "approval_pending", "The approval request is still pending",
                               details={"approval_id": row["id"]}, headers={"retry-after": "2"})
        return await self.outcome_response(row, None, replayed=True)

    async def agent_cancel_approval(self, request: Request) -> Response:
        rid = request.state.request_id = new_request_id()
        _, row = self._own_approval(request)
        updated = self.decide(row["id"], "cancelled", "withdrawn by the agent", reviewed_by="agent", channel="agent")
        row = self.store.get_approval(row["id"]) or row
        return JSONResponse({**self.approval_status(row), "updated": updated}, headers={"x-request-id": rid})

    def agent_routes(self) -> list[Route]:
        watch = [Route("/v1/approvals/events", self.watch.endpoint, methods=["GET"])]
        return [
            *(watch if self.profile.approvals_watch else []),
            Route("/v1/approvals/{approval_id}", self.agent_get_approval, methods=["GET"]),
            Route("/v1/approvals/{approval_id}", self.agent_cancel_approval, methods=["DELETE"]),
            Route("/v1/approvals/{approval_id}/result", self.agent_approval_result, methods=["GET"]),
        ]


class ClientGone(Exception):
    """The client closed its connection while its request was held."""


async def _disconnected(request: Request) -> None:
    """Return once the client of ``request`` (whose body was read) closes its connection."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


class _SettlingStream(StreamingResponse):
    """A streaming answer that settles its outcome however it ends (complete, cut, client gone)."""

    def __init__(self, content: AsyncIterator[bytes], settle: Callable[[], None], upstream: httpx.Response,
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._settle = settle
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._settle()
            with anyio.CancelScope(shield=True):
                await self._upstream.aclose()


Handler = Callable[[Request], Awaitable[Response]]


def health_routes(emu: Emulator) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        if emu.store.ping():
            return PlainTextResponse("ok")
        return PlainTextResponse("database unavailable", status_code=503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


__all__ = ["Emulator", "GatewayError", "Handler", "error_response", "health_routes", "iso", "mask", "new_id",
           "new_request_id"]
