"""``create_app``: assembles the emulator's Starlette app, and the ``demo`` seed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ailink._secrets import redact

from . import _budgets, _metering, _quotas, _vault
from ._app import Emulator, GatewayError, error_response, health_routes, new_request_id
from ._cors import Cors
from ._generation import Generation, get_generation
from ._inbox import inbox_routes
from ._management import management_routes
from ._mgmt._base import ManagementStore
from ._mgmt._routes import management_table
from ._profile import Profile, get_profile
from ._realtime import realtime_route
from ._store import Store

logger = logging.getLogger("ailink.emulator")
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass(frozen=True)
class DemoSeed:
    """What ``seed="demo"`` created. Tokens are secrets: they are left out of ``repr``."""

    payments_token: str = field(repr=False)
    llm_token: str = field(repr=False)
    payments_token_ref: str
    llm_token_ref: str
    service_name: str
    policy_ids: dict[str, str]


DEMO_POLICIES: list[dict[str, Any]] = [
    {"name": "allow-customer-reads", "rules": [{
        "when": {"all": [{"field": "request.method", "op": "eq", "value": "GET"},
                         {"field": "request.path", "op": "starts_with", "value": "/v1/customers"}]},
        "then": {"action": "allow"}}]},
    {"name": "charges-over-1000", "rules": [{
        "when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                         {"field": "request.path", "op": "eq", "value": "/v1/charges"},
                         {"field": "request.body.amount", "op": "gt", "value": 1000}]},
        "then": {"action": "require_approval", "timeout": "10m"}}]},
    {"name": "block-refunds", "rules": [{
        "when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                         {"field": "request.path", "op": "eq", "value": "/v1/refunds"}]},
        "then": {"action": "deny", "message": "refunds are not allowed for agents"}}]},
]


def seed_demo(store: Store) -> DemoSeed:
    """Create (once per database) the demo service, policies and tokens; idempotent across restarts."""
    pay_ref, llm_ref = store.meta_get("seed.demo.payments_token_ref"), store.meta_get("seed.demo.llm_token_ref")
    pay = store.token_by_id(pay_ref) if pay_ref else None
    llm = store.token_by_id(llm_ref) if llm_ref else None
    policy_ids: dict[str, str] = {}
    if pay is None or llm is None:
        for doc in DEMO_POLICIES:
            policy_ids[doc["name"]] = store.create_policy(doc)["id"]
        if store.get_service("payments") is None:
            store.create_service({"name": "payments", "base_url": "http://payments.mock",
                                  "description": "Mock payments API (emulator)", "service_type": "generic",
                                  "credential_id": None})
        if store.get_service("llm") is None:
            store.create_service({"name": "llm", "base_url": "http://llm.mock",
                                  "description": "Mock OpenAI-compatible LLM (emulator)", "service_type": "llm",
                                  "credential_id": None})
        pay = store.create_token(name="demo-payments", upstream_url="http://payments.mock",
                                 credential_id=None, policy_ids=list(policy_ids.values()))
        llm = store.create_token(name="demo-llm", upstream_url="http://llm.mock", credential_id=None, policy_ids=[])
        store.meta_set("seed.demo.payments_token_ref", pay["ref"])
        store.meta_set("seed.demo.llm_token_ref", llm["ref"])
    else:
        policy_ids = {p["name"]: p["id"] for p in store.policies_by_ids(pay["policy_ids"] or [])}
    return DemoSeed(payments_token=pay["token"], llm_token=llm["token"], payments_token_ref=pay["ref"],
                    llm_token_ref=llm["ref"], service_name="payments", policy_ids=policy_ids)


def create_app(
    db_path: str = ":memory:",
    admin_key: str | None = None,
    *,
    seed: str | None = None,
    public_url: str | None = None,
    max_body_bytes: int = 1_048_576,
    upstream_timeout: float = 60.0,
    profile: str | Profile = "ailink",
    generation: str | Generation = "ailink",
    retry_backoff: float = 0.5,
    webhooks: list[str] | None = None,
    webhook_secret: str | None = None,
    slack_webhooks: list[str] | None = None,
    webhook_retry_delays: tuple[float, ...] | None = None,
) -> Starlette:
    """The emulator as an ASGI app.

    ``admin_key=None`` generates a random key, readable as ``app.state.admin_key``. ``seed="demo"``
    creates the demo service/policies/tokens (once per database) and exposes them as
    ``app.state.demo_seed`` (:class:`DemoSeed`). ``upstream_timeout`` (seconds, per upstream
    call) exists so tests can provoke upstream timeouts quickly. ``profile`` is ``"ailink"`` (every
    protocol extension) or ``"real"`` (behaves like the real gateway; see the package docstring);
    ``generation`` is ``"ailink"`` (``X-AIlink-*`` headers, ``ailink_v1_`` tokens) or ``"trueflow"``
    (``X-TrueFlow-*``, ``tf_v1_``); ``retry_backoff`` is the base delay of the ``real`` profile's
    gateway-side retries (0.5 s there).
    ``webhooks`` (URLs, signed with ``webhook_secret`` when given) and ``slack_webhooks`` (Slack
    incoming-webhook URLs) receive every event; ``webhook_retry_delays`` are the seconds between
    delivery attempts (default 1, 5, 25). The reviewers' inbox is served at ``/ui`` (admin key to sign in).
    """
    if seed not in (None, "demo"):
        raise ValueError(f"unknown seed {seed!r} (known: 'demo')")
    chosen = get_profile(profile)
    dialect = get_generation(generation)
    key = admin_key or "ailink_admin_" + secrets.token_urlsafe(24)
    store = Store(db_path, token_prefix=dialect.token_prefix)
    recovered = store.recover_after_restart()
    ManagementStore.install(store)
    _metering.install(store)
    if any(recovered.values()):
        logger.warning("emulator start-up: settled what a previous run left in flight: %s", recovered)
    emu = Emulator(store, key, profile=chosen, generation=dialect, public_url=public_url,
                   max_body_bytes=max_body_bytes, upstream_timeout=upstream_timeout, retry_backoff=retry_backoff)
    emu.events.webhooks.install()
    emu.events.webhooks.configure(urls=webhooks, slack_urls=slack_webhooks, secret=webhook_secret,
                                  retry_delays=webhook_retry_delays)
    demo = seed_demo(store) if seed == "demo" else None

    def answer(scope: Scope, exc: GatewayError) -> Response:
        if scope["path"].startswith("/api/") and not chosen.json_management_errors:
            return Response(status_code=exc.status, headers=exc.headers)  # the real gateway's bare errors
        rid = (scope.get("state") or {}).get("request_id") or new_request_id()
        return error_response(rid, exc, with_details=chosen.error_details)

    async def on_gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return answer(request.scope, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return answer(request.scope, GatewayError(exc.status_code, code, str(exc.detail)))

    def on_error(scope: Scope) -> Response:
        return answer(scope, GatewayError(500, "internal_server_error", "Internal emulator error"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        emu.loop = asyncio.get_running_loop()
        emu.events.start()
        try:
            yield
        finally:
            await emu.aclose()
            store.close()

    routes = [
        *health_routes(emu),
        *inbox_routes(emu),
        *management_routes(emu, [*management_table(emu), *_metering.pricing_routes(emu),
                                 *_budgets.routes(emu), *_quotas.routes(emu), *_vault.routes(emu)]),  # [H15 routing]
        realtime_route(emu),
        *(emu.agent_routes() if chosen.agent_approval_endpoints else []),
        *(_metering.data_plane_routes(emu) if chosen.llm_extensions else []),
        Route("/{path:path}", emu.proxy, methods=ALL_METHODS),
    ]
    middleware = [Middleware(Cors)]  # outermost: preflights are answered before anything else
    if chosen.extensions:
        middleware.append(Middleware(ExtensionsHeader, header=dialect.extensions, extensions=chosen.extensions))
    middleware.append(Middleware(CatchAll, answer=on_error))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={GatewayError: on_gateway_error, HTTPException: on_http_error})
    app.state.emulator = emu
    app.state.admin_key = key
    app.state.demo_seed = demo
    app.state.public_url = public_url
    app.state.profile = chosen
    app.state.generation = dialect
    return app


class CatchAll:
    """Turns any unexpected exception into the typed 500 answer, and logs it scrubbed of secrets.

    It sits inside Starlette's own error middleware, which would re-raise to the server, and the
    server would log the raw traceback (exception text may hold a secret). Nothing is re-raised here.
    """

    def __init__(self, app: ASGIApp, answer: Callable[[Scope], Response]) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # e.g. an upstream stream cut mid-body: the connection ends without a clean end
                logger.warning("emulator: answer to %s %s cut short (%s)", scope["method"], redact(scope["path"]),
                               type(exc).__name__)
                return
            logger.error("emulator internal error on %s %s\n%s", scope["method"], redact(scope["path"]),
                         redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
            await self.answer(scope)(scope, receive, send)


class ExtensionsHeader:
    """Adds ``X-AIlink-Extensions`` (the generation's spelling) to every answer outside the
    management API (§10.1)."""

    def __init__(self, app: ASGIApp, header: str, extensions: tuple[str, ...]) -> None:
        self.app = app
        self.header = header.encode("latin-1")
        self.value = ", ".join(extensions).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (self.header, self.value)]}
            await send(message)

        await self.app(scope, receive, send_with_header)
