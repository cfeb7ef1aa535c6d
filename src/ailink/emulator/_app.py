"""The emulator's ASGI app: data plane (proxy, approvals, idempotency), management API, mocks.

See ``shared/design/protocol.md`` for the contract. Differences from the real AIlink gateway
(all deliberate, see the package docstring for the full list) are marked "deviation".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
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
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ailink._secrets import mask

from ._mock_llm import TOKEN_HEADER, LLMMock
from ._mock_payments import PaymentsMock
from ._policy import RequestFacts, evaluate, parse_duration
from ._store import Store, new_id

MOCK_HOSTS = ("payments.mock", "llm.mock")
TOKEN_PREFIX = "ailink_v1_"
MAX_WAIT = 50.0
IDEMPOTENCY_HEADERS = ("x-ailink-idempotency-key", "x-trueflow-idempotency-key", "idempotency-key",
                       "x-idempotency-key")
# Headers forwarded upstream (deviation: Idempotency-Key is forwarded so mocks can dedupe/count).
FORWARD_HEADERS = ("content-type", "accept", "user-agent", "traceparent", "tracestate", "idempotency-key")
DROP_RESPONSE_HEADERS = {
    "content-length", "transfer-encoding", "connection", "server", "x-request-id", "x-powered-by",
    "content-encoding", "keep-alive",
}
ERROR_TYPES = {
    "token_not_found": "authentication_error", "token_revoked": "authentication_error",
    "unauthorized": "authentication_error", "policy_denied": "permission_error",
    "approval_rejected": "permission_error", "approval_timeout": "timeout_error",
    "approval_not_found": "not_found_error", "not_found": "not_found_error",
    "approval_pending": "conflict_error", "idempotency_in_progress": "conflict_error",
    "idempotency_key_reused": "invalid_request_error", "validation_error": "invalid_request_error",
    "invalid_json": "invalid_request_error", "payload_too_large": "invalid_request_error",
    "rate_limit_exceeded": "rate_limit_error", "upstream_failed": "upstream_error",
    "internal_server_error": "internal_error", "method_not_allowed": "invalid_request_error",
    "content_blocked": "content_policy_error", "forbidden": "permission_error",
}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(request_id: str, exc: GatewayError) -> JSONResponse:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message,
                            "type": ERROR_TYPES.get(exc.code, "invalid_request_error"), "request_id": request_id}
    if exc.details is not None:
        body["details"] = exc.details
    return JSONResponse({"error": body}, status_code=exc.status,
                        headers={**exc.headers, "x-request-id": request_id})


def policy_denied(policy: str, reason: str) -> GatewayError:
    return GatewayError(403, "policy_denied", f"Request blocked by policy '{policy}': {reason}",
                        details={"policy": policy, "reason": reason})


class _RoutingTransport(httpx.AsyncBaseTransport):
    """Sends the mock hosts to in-process ASGI apps and everything else over the network."""

    def __init__(self, mocks: dict[str, httpx.AsyncBaseTransport], default: httpx.AsyncBaseTransport) -> None:
        self._mocks = mocks
        self._default = default

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._mocks.get(request.url.host, self._default)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._default.aclose()


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
    external_request_id: str | None
    idempotency_key: str | None
    prefer_async: bool

    @classmethod
    def from_headers(cls, headers: Any) -> TraceContext:
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
                properties = json.loads(raw_props)
            except ValueError:
                properties = None  # invalid JSON is dropped silently, like the real gateway
        prefer = headers.get("prefer", "")
        prefer_async = any(p.split(";")[0].strip().lower() == "respond-async" for p in prefer.split(","))
        key = next((headers.get(name) for name in IDEMPOTENCY_HEADERS if headers.get(name)), None)
        return cls(
            session_id=headers.get("x-session-id") or None,
            agent_name=headers.get("x-ailink-agent-name") or headers.get("user-agent"),
            tool_name=headers.get("x-ailink-tool-name"),
            # deviation: X-Parent-Span-Id (the enclosing span) wins over the traceparent span id
            parent_span_id=headers.get("x-parent-span-id") or span_id,
            span_id=span_id, trace_id=trace_id, properties=properties,
            user_id=headers.get("x-user-id"), external_request_id=headers.get("x-request-id"),
            idempotency_key=key or None, prefer_async=prefer_async,
        )

    def audit_fields(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "agent_name": self.agent_name, "tool_name": self.tool_name,
            "parent_span_id": self.parent_span_id, "span_id": self.span_id, "trace_id": self.trace_id,
            "properties": self.properties, "user_id": self.user_id,
            "external_request_id": self.external_request_id, "idempotency_key": self.idempotency_key,
        }


@dataclass
class Stored:
    """A buffered response (upstream answer or gateway error) that can be replayed."""

    status: int
    headers: list[list[str]]
    body: bytes
    extra: dict[str, str] = field(default_factory=dict)

    def to_response(self, request_id: str, **extra: str) -> Response:
        headers = {k: v for k, v in self.headers}
        headers.update(self.extra)
        headers.update(extra)
        headers["x-request-id"] = request_id
        return Response(self.body, status_code=self.status, headers=headers)


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    return f"{method.upper()} {path}?{query} {hashlib.sha256(body).hexdigest()}"


class Emulator:
    def __init__(self, store: Store, admin_key: str, *, public_url: str | None, max_body_bytes: int,
                 upstream_timeout: float) -> None:
        self.store = store
        self.admin_key = admin_key
        self.public_url = public_url
        self.max_body_bytes = max_body_bytes
        self.upstream_timeout = upstream_timeout
        self.payments = PaymentsMock()
        self.llm = LLMMock()
        self.http: httpx.AsyncClient | None = None
        self._decided: dict[str, asyncio.Event] = {}
        self._executed: dict[str, asyncio.Event] = {}
        self._rate: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ plumbing
    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            mocks: dict[str, httpx.AsyncBaseTransport] = {
                "payments.mock": httpx.ASGITransport(app=self.payments.app),
                "llm.mock": httpx.ASGITransport(app=self.llm.app),
            }
            self.http = httpx.AsyncClient(
                transport=_RoutingTransport(mocks, httpx.AsyncHTTPTransport()),
                timeout=httpx.Timeout(self.upstream_timeout, connect=min(5.0, self.upstream_timeout)),
                follow_redirects=False,
            )
        return self.http

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.http is not None:
            await self.http.aclose()
            self.http = None

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
        try:
            data = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError):
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
        if auth.startswith("Bearer " + TOKEN_PREFIX):
            token = self.store.token_by_secret(auth[len("Bearer "):])
            if token is not None and token["is_active"]:
                return token
        raise GatewayError(401, "token_not_found",
                           "Invalid or missing API token. Ensure AILINK_API_KEY is set correctly.")

    # ------------------------------------------------------------------ approvals core
    def notify_decided(self, apr_id: str) -> None:
        event = self._decided.pop(apr_id, None)
        if event is not None:
            event.set()

    def refresh_approval(self, apr_id: str) -> dict[str, Any] | None:
        row = self.store.get_approval(apr_id)
        if row and row["status"] == "pending" and row["expires_at"] <= time.time():
            if self.store.transition_approval(apr_id, "expired", "approval timed out"):
                self.notify_decided(apr_id)
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

    def decide(self, apr_id: str, status: str, reason: str | None) -> bool:
        updated = self.store.transition_approval(apr_id, status, reason)
        if updated:
            self.notify_decided(apr_id)
            if status == "approved":
                self.spawn(self.ensure_executed(apr_id))
        return updated

    async def ensure_executed(self, apr_id: str) -> dict[str, Any]:
        """Send the stored request upstream exactly once; everyone else waits for its stored answer."""
        row = self.store.get_approval(apr_id)
        assert row is not None
        if row["exec_state"] == "done" or row["status"] != "approved":
            return row
        if self.store.begin_execution(apr_id):
            try:
                stored = await self._execute_stored(row)
            except Exception:  # never leave it "running" in this process
                stored = Stored(500, [["content-type", "application/json"]],
                                json.dumps({"error": {"code": "internal_server_error",
                                                      "message": "approved request failed",
                                                      "type": "internal_error",
                                                      "request_id": new_request_id()}}).encode())
            self.store.finish_execution(apr_id, stored.status, stored.headers, stored.body)
            event = self._executed.pop(apr_id, None)
            if event is not None:
                event.set()
        else:
            event = self._executed.setdefault(apr_id, asyncio.Event())
            row = self.store.get_approval(apr_id)
            assert row is not None
            if row["exec_state"] != "done":
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), self.upstream_timeout + 10)
        row = self.store.get_approval(apr_id)
        assert row is not None
        return row

    async def _execute_stored(self, row: dict[str, Any]) -> Stored:
        ctx = row["context"] or {}
        started = time.monotonic()
        try:
            stored = await self.send_buffered(row["req_method"], row["req_url"], row["req_headers"],
                                              row["req_body"], row["credential_id"], row["token_ref"])
        except GatewayError as exc:
            rid = new_request_id()
            resp = error_response(rid, exc)
            stored = Stored(resp.status_code, [["content-type", "application/json"]], bytes(resp.body))
        self.store.add_audit({
            **{k: ctx.get(k) for k in ("session_id", "agent_name", "tool_name", "parent_span_id", "span_id",
                                       "trace_id", "properties", "user_id", "external_request_id",
                                       "idempotency_key", "token_prefix", "request_id", "model")},
            "token_ref": row["token_ref"], "method": row["req_method"], "path": ctx.get("path"),
            "upstream_url": _strip_query(row["req_url"]), "status_code": stored.status,
            "latency_ms": int((time.monotonic() - started) * 1000), "policy_result": "approved",
            "policies_evaluated": ctx.get("policies_evaluated"), "approval_id": row["id"],
            "approval_wait_ms": int(((row["decided_at"] or time.time()) - row["created_at"]) * 1000),
        })
        return stored

    # ------------------------------------------------------------------ upstream
    def _upstream_headers(self, headers: dict[str, str], credential_id: str | None, token_ref: str,
                          url: str) -> tuple[dict[str, str], str]:
        out = {k: v for k, v in headers.items() if k in FORWARD_HEADERS or k.startswith("x-mock-")}
        key = next((headers[k] for k in IDEMPOTENCY_HEADERS if headers.get(k)), None)
        if key is not None:  # deviation: the key goes upstream as Idempotency-Key, whatever its spelling
            out["idempotency-key"] = key
        cred = self.store.get_credential(credential_id) if credential_id else None
        if cred is not None and cred["is_active"]:
            mode, header, secret = cred["injection_mode"], cred["injection_header"], cred["secret"]
            if mode == "bearer":
                out[header.lower()] = f"Bearer {secret}"
            elif mode == "basic":
                out[header.lower()] = "Basic " + base64.b64encode(secret.encode()).decode()
            elif mode == "header":
                out[header.lower()] = secret
            elif mode == "query":
                url += ("&" if "?" in url else "?") + httpx.QueryParams({header: secret}).__str__()
        elif headers.get("x-real-authorization"):
            out["authorization"] = headers["x-real-authorization"]
        elif headers.get("x-upstream-authorization"):
            out["authorization"] = headers["x-upstream-authorization"]
        if urlsplit(url).hostname in MOCK_HOSTS:
            out[TOKEN_HEADER] = token_ref
        return out, url

    async def send_upstream(self, method: str, url: str, headers: dict[str, str], body: bytes,
                            credential_id: str | None, token_ref: str) -> httpx.Response:
        out_headers, url = self._upstream_headers(headers, credential_id, token_ref, url)
        client = self.client()
        request = client.build_request(method, url, headers=out_headers, content=body or None)
        try:
            return await client.send(request, stream=True)
        except httpx.TimeoutException:
            raise GatewayError(502, "upstream_failed", "Upstream request timed out") from None
        except httpx.HTTPError as exc:
            raise GatewayError(502, "upstream_failed", f"Upstream request failed: {type(exc).__name__}") from None

    async def send_buffered(self, method: str, url: str, headers: dict[str, str], body: bytes,
                            credential_id: str | None, token_ref: str) -> Stored:
        resp = await self.send_upstream(method, url, headers, body, credential_id, token_ref)
        try:
            content = await resp.aread()
        except httpx.TimeoutException:
            raise GatewayError(502, "upstream_failed", "Upstream request timed out") from None
        except httpx.HTTPError as exc:
            raise GatewayError(502, "upstream_failed", f"Upstream request failed: {type(exc).__name__}") from None
        finally:
            await resp.aclose()
        return Stored(resp.status_code, _response_headers(resp), content)

    def route(self, token: dict[str, Any], path: str) -> tuple[str, str, str | None]:
        """(base_url, forwarded path, credential_id)."""
        prefix = "/v1/proxy/services/"
        if path.startswith(prefix):
            rest = path[len(prefix):]
            name, _, remainder = rest.partition("/")
            service = self.store.get_service(name) if name else None
            if service is None:
                raise GatewayError(502, "upstream_failed", f"Service not found: {name}")
            return service["base_url"], "/" + remainder, service["credential_id"] or token["credential_id"]
        return token["upstream_url"], path, token["credential_id"]

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
        started = time.monotonic()
        rid = request.state.request_id = new_request_id()
        body = await self.read_body(request)
        token = self.auth_token(request)
        ctx = TraceContext.from_headers(request.headers)
        if ctx.idempotency_key is not None and len(ctx.idempotency_key) > 255:
            raise GatewayError(422, "validation_error", "Idempotency key longer than 255 characters")
        method = request.method.upper()
        path = request.url.path
        query = request.url.query
        audit: dict[str, Any] = {
            **ctx.audit_fields(), "token_ref": token["ref"], "token_prefix": mask(token["token"]),
            "request_id": rid, "method": method, "path": path, "model": _model_of(body),
        }

        def finish_audit(status: int, **extra: Any) -> None:
            self.store.add_audit({**audit, "status_code": status,
                                  "latency_ms": int((time.monotonic() - started) * 1000), **extra})

        try:
            base, fwd_path, credential_id = self.route(token, path)
        except GatewayError as exc:
            finish_audit(exc.status, policy_result="error", error_code=exc.code)
            raise
        upstream_url = base.rstrip("/") + fwd_path + (f"?{query}" if query else "")  # deviation: query kept
        audit["upstream_url"] = base.rstrip("/") + fwd_path

        if ctx.session_id:
            session = self.store.touch_session(ctx.session_id, token["ref"])
            if session["status"] != "active":
                denied = policy_denied("SessionLifecycle", f"Session '{ctx.session_id}' is {session['status']} "
                                                           "— cannot accept new requests")
                finish_audit(403, policy_result="denied", deny_reason=denied.message, error_code=denied.code)
                raise denied

        key = ctx.idempotency_key
        fp = fingerprint(method, path, query, body)
        claimed = False
        for _attempt in range(2):
            if key is None:
                break
            existing = self.store.idem_get(token["ref"], key) if method == "GET" else \
                self.store.idem_claim(token["ref"], key, fp)
            if existing is None:
                claimed = method != "GET"
                break
            replay = await self._existing(existing, fp, ctx, rid, finish_audit)
            if replay is not None:
                return replay
            # a withdrawn (cancelled) approval: forget the key and process the request afresh
            self.store.idem_delete(token["ref"], key)

        finalised = False

        def finalise(stored: Stored | None, *, attached: bool = False) -> None:
            nonlocal finalised
            if not claimed or finalised or key is None:
                return
            finalised = True
            if attached:
                return  # the key now follows its approval
            if stored is None or stored.status >= 500 or stored.status == 429:
                self.store.idem_delete(token["ref"], key)
            else:
                self.store.idem_complete(token["ref"], key, stored.status, stored.headers, stored.body)

        try:
            response = await self._process(request, token, ctx, audit, finish_audit, body, method, path,
                                           query, fwd_path, upstream_url, credential_id, rid, started,
                                           claimed, finalise, fp)
        except GatewayError as exc:
            resp = error_response(rid, exc)
            finalise(Stored(exc.status, _plain_headers(resp), bytes(resp.body)))
            raise
        except BaseException:
            finalise(None)
            raise
        return response

    async def _process(self, request: Request, token: dict[str, Any], ctx: TraceContext, audit: dict[str, Any],
                       finish_audit: Callable[..., None], body: bytes, method: str, path: str, query: str,
                       fwd_path: str, upstream_url: str, credential_id: str | None, rid: str, started: float,
                       claimed: bool, finalise: Callable[..., None], fp: str) -> Response:
        # E2 hook: model aliases and guardrails rewrite (or refuse, 403) the body before policies see it.
        from ._mgmt._transforms import transform_request
        body = transform_request(self, token, request.headers, body, audit, finish_audit)
        policies = self.store.policies_by_ids(token["policy_ids"] or [])
        facts = RequestFacts(
            method=method, path=path, headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(parse_qsl(query, keep_blank_values=True)), body_bytes=body,
            agent_name=ctx.agent_name, token_ref=token["ref"], token_name=token["name"],
        )
        matched = evaluate(policies, facts)
        evaluated = [p["name"] for p in policies]
        audit["policies_evaluated"] = evaluated
        approval = None
        shadow: list[str] = []
        for m in matched:
            kind = m.action.get("action")
            if m.mode == "shadow":
                if kind in ("deny", "require_approval", "rate_limit"):
                    shadow.append(f"{m.policy_name}:{kind}")
                continue
            if kind == "deny":
                exc = policy_denied(m.policy_name, str(m.action.get("message") or "request blocked by policy"))
                finish_audit(403, policy_result="denied", deny_reason=exc.message, error_code=exc.code)
                raise exc
            if kind == "rate_limit":
                window = parse_duration(m.action.get("window", "60s")) or 60.0
                scope = m.action.get("key", "per_token")
                who = {"per_token": token["ref"], "per_agent": ctx.agent_name or "", "global": "*"}[scope]
                wait = self.check_rate(f"{m.policy_id}:{m.rule_index}:{scope}:{who}", window,
                                       int(m.action["max_requests"]))
                if wait is not None:
                    retry = max(1, math.ceil(wait))
                    exc = GatewayError(
                        429, "rate_limit_exceeded",
                        f"Rate limit exceeded by policy '{m.policy_name}': {m.action['max_requests']} "
                        f"requests per {m.action.get('window', '60s')}",
                        details={"policy": m.policy_name, "retry_after": retry},
                        headers={"retry-after": str(retry), "x-ratelimit-reset": str(int(time.time()) + retry)},
                    )
                    finish_audit(429, policy_result="rate_limited", deny_reason=exc.message, error_code=exc.code)
                    raise exc
            if kind == "require_approval" and approval is None:
                approval = m
        if shadow:
            audit["deny_reason"] = "shadow: " + ", ".join(shadow)

        headers_in = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        if approval is not None:
            timeout = parse_duration(approval.action.get("timeout", "30m"))
            preview = body.decode("utf-8", "replace")
            row = self.store.create_approval({
                "token_ref": token["ref"], "idempotency_key": ctx.idempotency_key,
                "policy_name": approval.policy_name,
                "summary": {"method": method, "path": path, "agent": ctx.agent_name,
                            "upstream": audit["upstream_url"], "tool_name": ctx.tool_name,
                            "session_id": ctx.session_id,
                            "body_preview": (preview[:2000] + "…") if len(preview) > 2000 else (preview or None)},
                "expires_at": time.time() + timeout, "req_method": method, "req_url": upstream_url,
                "req_headers": headers_in, "req_body": body, "credential_id": credential_id,
                "context": {**ctx.audit_fields(), "path": path, "policies_evaluated": evaluated,
                            "token_prefix": audit["token_prefix"], "request_id": rid, "model": audit["model"]},
            })
            apr_id = row["id"]
            if ctx.idempotency_key is not None:
                if claimed:
                    self.store.idem_attach_approval(token["ref"], ctx.idempotency_key, apr_id)
                    finalise(None, attached=True)
                else:  # a GET: the key only re-attaches to the approval
                    self.store.idem_claim(token["ref"], ctx.idempotency_key, fp, "approval", apr_id)
            if ctx.prefer_async:
                finish_audit(202, policy_result="pending_approval", approval_id=apr_id)
                return self.accepted(self.store.get_approval(apr_id) or row, rid)
            return await self.block_on_approval(apr_id, rid, finish_audit)

        # plain forwarding
        try:
            resp = await self.send_upstream(method, upstream_url, headers_in, body, credential_id, token["ref"])
        except GatewayError as exc:
            finish_audit(exc.status, policy_result="allowed", error_code=exc.code)
            raise
        out_headers = _response_headers(resp)
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            return self._stream(resp, out_headers, rid, finish_audit, finalise)
        try:
            content = await resp.aread()
        except httpx.HTTPError:
            await resp.aclose()
            failed = GatewayError(502, "upstream_failed", "Upstream response could not be read")
            finish_audit(502, policy_result="allowed", error_code=failed.code)
            raise failed from None
        await resp.aclose()
        stored = Stored(resp.status_code, out_headers, content)
        finalise(stored)
        finish_audit(resp.status_code, policy_result="allowed")
        return stored.to_response(rid, **{"x-ailink-cb-state": "disabled"})

    def _stream(self, resp: httpx.Response, headers: list[list[str]], rid: str,
                finish_audit: Callable[..., None], finalise: Callable[..., None]) -> Response:
        collected: list[bytes] = []

        async def body() -> AsyncIterator[bytes]:
            ok = False
            try:
                async for chunk in resp.aiter_bytes():
                    collected.append(chunk)
                    yield chunk
                ok = True
            finally:
                await resp.aclose()
                stored = Stored(resp.status_code, headers, b"".join(collected))
                finalise(stored if ok else None)
                finish_audit(resp.status_code, policy_result="allowed", is_streaming=1)

        out = {k: v for k, v in headers}
        out["x-request-id"] = rid
        out["x-accel-buffering"] = "no"
        return StreamingResponse(body(), status_code=resp.status_code, headers=out)

    async def block_on_approval(self, apr_id: str, rid: str, finish_audit: Callable[..., None] | None) -> Response:
        row = self.store.get_approval(apr_id)
        assert row is not None
        row = await self.wait_decided(apr_id, max(0.0, row["expires_at"] - time.time()) + 0.05)
        return await self.outcome_response(row, rid, finish_audit, replayed=False)

    async def outcome_response(self, row: dict[str, Any], rid: str, finish_audit: Callable[..., None] | None,
                               *, replayed: bool) -> Response:
        status = row["status"]
        apr_id = row["id"]
        if status == "approved":
            row = await self.ensure_executed(apr_id)
            if row["exec_state"] != "done":
                raise GatewayError(502, "upstream_failed", "The approved request's outcome is unknown",
                                   details={"approval_id": apr_id})
            stored = Stored(row["resp_status"], row["resp_headers"] or [], row["resp_body"] or b"")
            extra = {"x-ailink-approval-id": apr_id}
            if replayed:
                extra["idempotent-replayed"] = "true"
            return stored.to_response(rid, **extra)
        wait_ms = int(((row["decided_at"] or time.time()) - row["created_at"]) * 1000)
        if status == "rejected" or status == "cancelled":
            reason = row["reason"] or ("withdrawn by the agent" if status == "cancelled" else None)
            exc = GatewayError(403, "approval_rejected", "Request was rejected by a reviewer."
                               if status == "rejected" else "The approval request was withdrawn.",
                               details={"approval_id": apr_id, "reason": reason, "status": status,
                                        "policy": row["policy_name"]})
            if finish_audit:
                finish_audit(403, policy_result="rejected", approval_id=apr_id, approval_wait_ms=wait_ms,
                             error_code=exc.code, deny_reason=reason)
            raise exc
        timeout_s = round(row["expires_at"] - row["created_at"], 3)
        exc = GatewayError(408, "approval_timeout", "The approval request timed out without a decision.",
                           details={"approval_id": apr_id, "timeout": timeout_s, "policy": row["policy_name"]})
        if finish_audit:
            finish_audit(408, policy_result="timeout", approval_id=apr_id, approval_wait_ms=wait_ms,
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
        }
        return JSONResponse(body, status_code=202, headers={
            "location": poll, "retry-after": "2", "preference-applied": "respond-async", "x-request-id": rid,
            "x-ailink-approval-id": apr_id,
        })

    async def _existing(self, rec: dict[str, Any], fp: str, ctx: TraceContext, rid: str,
                        finish_audit: Callable[..., None]) -> Response | None:
        """The answer to a request whose idempotency key is known (``None``: process it afresh).

        Every answer given here is audited too (``replayed``, ``pending_approval``, ``rejected``,
        ``timeout``), so a re-sent action shows in its session next to the original.
        """
        if rec["fingerprint"] != fp:
            raise GatewayError(422, "idempotency_key_reused",
                               "This idempotency key was already used with a different request "
                               "(method, path, query or body)")
        if rec["state"] == "in_flight":
            raise GatewayError(409, "idempotency_in_progress",
                               "A request with this idempotency key is still being processed",
                               headers={"retry-after": "1"})
        if rec["state"] == "done":
            stored = Stored(rec["status"], rec["headers"] or [], rec["body"] or b"")
            finish_audit(stored.status, policy_result="replayed")
            return stored.to_response(rid, **{"idempotent-replayed": "true"})
        row = self.refresh_approval(rec["approval_id"])
        if row is None or row["status"] == "cancelled":
            return None
        if row["status"] == "pending":
            if ctx.prefer_async:
                finish_audit(202, policy_result="pending_approval", approval_id=row["id"])
                return self.accepted(row, rid)
            row = await self.wait_decided(row["id"], max(0.0, row["expires_at"] - time.time()) + 0.05)
            if row["status"] == "cancelled":
                return None
            response = await self.outcome_response(row, rid, finish_audit, replayed=False)
        else:
            response = await self.outcome_response(row, rid, finish_audit, replayed=True)
        finish_audit(response.status_code, policy_result="replayed", approval_id=row["id"])
        return response

    # ------------------------------------------------------------------ agent approval endpoints
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
        }

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
        rid = request.state.request_id = new_request_id()
        _, row = self._own_approval(request)
        if row["status"] == "pending":
            raise GatewayError(409, "approval_pending", "The approval request is still pending",
                               details={"approval_id": row["id"]}, headers={"retry-after": "2"})
        return await self.outcome_response(row, rid, None, replayed=True)

    async def agent_cancel_approval(self, request: Request) -> Response:
        rid = request.state.request_id = new_request_id()
        _, row = self._own_approval(request)
        updated = self.decide(row["id"], "cancelled", "withdrawn by the agent")
        row = self.store.get_approval(row["id"]) or row
        return JSONResponse({**self.approval_status(row), "updated": updated}, headers={"x-request-id": rid})


def _plain_headers(resp: Response) -> list[list[str]]:
    return [[k.decode("latin-1"), v.decode("latin-1")] for k, v in resp.raw_headers
            if k.decode("latin-1").lower() not in DROP_RESPONSE_HEADERS]


def _response_headers(resp: httpx.Response) -> list[list[str]]:
    return [[k, v] for k, v in resp.headers.multi_items() if k.lower() not in DROP_RESPONSE_HEADERS]


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def _model_of(body: bytes) -> str | None:
    if not body or b'"model"' not in body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


Handler = Callable[[Request], Awaitable[Response]]


def health_routes(emu: Emulator) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        if emu.store.ping():
            return PlainTextResponse("ok")
        return PlainTextResponse("database unavailable", status_code=503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


__all__ = ["Emulator", "GatewayError", "Handler", "error_response", "health_routes", "iso", "mask", "new_id"]
