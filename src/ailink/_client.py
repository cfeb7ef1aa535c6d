"""The clients: one shared base of sans-I/O flows, a sync driver and an async driver.

Both clients carry the management resources (``client.tokens``, ``client.policies``, ...; they
need an admin key), the data-plane resources (``batches``, ``fine_tuning``, ``realtime``) and
ready-made provider SDKs (``openai()``, ``anthropic()``) pointed at the gateway.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from importlib import import_module
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

import httpx

from ailink._approval import (
    ApprovalResult,
    PendingApproval,
    proxied_call,
    wait_for_decision,
    withdraw,
)
from ailink._config import ApprovalMode, ClientConfig
from ailink._errors import AIlinkError, APIConnectionError, APITimeoutError, AuthenticationError
from ailink._flow import Flow, run_async, run_sync
from ailink._headers import KEY_HEADERS
from ailink._idempotency import check_idempotency_key, derive_idempotency_key
from ailink._retry import IDEMPOTENT_METHODS, RetryConfig, answer_error, send_with_retries
from ailink._secrets import mask, scrub
from ailink._tracing import TraceContext, trace
from ailink._transport import (
    AsyncGatewayHTTPClient,
    GatewayHTTPClient,
    TracingTransport,
    async_http_client,
    http_client,
)

if TYPE_CHECKING:
    import anthropic as anthropic_sdk
    import openai as openai_sdk

    from ailink._health import AsyncFallbackChat, FallbackChat
    from ailink.resources._base import Call
    from ailink.resources.analytics import AnalyticsResource, AsyncAnalyticsResource
    from ailink.resources.api_keys import ApiKeysResource, AsyncApiKeysResource
    from ailink.resources.approvals import ApprovalsResource, AsyncApprovalsResource
    from ailink.resources.audit import AsyncAuditResource, AuditResource
    from ailink.resources.batches import AsyncBatchesResource, BatchesResource
    from ailink.resources.billing import AsyncBillingResource, BillingResource
    from ailink.resources.config import AsyncConfigResource, ConfigResource
    from ailink.resources.credentials import AsyncCredentialsResource, CredentialsResource
    from ailink.resources.experiments import AsyncExperimentsResource, ExperimentsResource
    from ailink.resources.fine_tuning import AsyncFineTuningResource, FineTuningResource
    from ailink.resources.guardrails import AsyncGuardrailsResource, GuardrailsResource
    from ailink.resources.model_aliases import AsyncModelAliasesResource, ModelAliasesResource
    from ailink.resources.policies import AsyncPoliciesResource, PoliciesResource
    from ailink.resources.projects import AsyncProjectsResource, ProjectsResource
    from ailink.resources.realtime import AsyncRealtimeResource, RealtimeResource
    from ailink.resources.services import AsyncServicesResource, ServicesResource
    from ailink.resources.sessions import AsyncSessionsResource, SessionsResource
    from ailink.resources.tokens import AsyncTokensResource, TokensResource
    from ailink.resources.webhooks import AsyncWebhooksResource, WebhooksResource

__all__ = ["AIlinkClient", "AdminClient", "AsyncAdminClient", "AsyncClient", "Client", "normalize_messages"]

_Self = TypeVar("_Self", bound="_ClientBase[Any]")
T = TypeVar("T")
R = TypeVar("R")
TransportT = TypeVar("TransportT")
OnPending = Callable[[PendingApproval], Any]


def normalize_messages(messages: str | Mapping[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    """Chat messages from a string (one user message), a dict (one message) or a list."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping):
        return [dict(messages)]
    return [{"role": "user", "content": m} if isinstance(m, str) else dict(m) for m in messages]


def _messages(messages: str | Mapping[str, Any] | Sequence[Any]) -> Any:
    return normalize_messages(messages)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("client.openai() needs the openai SDK: pip install 'ailink-sdk[openai]'") from exc
    return openai


def _import_anthropic() -> Any:
    try:
        import anthropic
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("client.anthropic() needs the anthropic SDK: pip install 'ailink-sdk[anthropic]'") from exc
    return anthropic


def _anthropic_http_client(module: Any, config: ClientConfig, *, asynchronous: bool) -> Any:
    """The anthropic SDK's own HTTP client class (httpx or httpx2, depending on the SDK version) with a
    request hook adding the session and idempotency headers exactly as :class:`TracingTransport` does."""
    tracing = TracingTransport(agent_name=config.agent_name, verify=config.verify_ssl)
    if not asynchronous:
        return module.DefaultHttpxClient(event_hooks={"request": [tracing.prepare]}, verify=config.verify_ssl)

    async def prepare(request: Any) -> None:
        tracing.prepare(request)

    return module.DefaultAsyncHttpxClient(event_hooks={"request": [prepare]}, verify=config.verify_ssl)


def require_admin_key(config: ClientConfig, what: str) -> None:
    """Raise :class:`AuthenticationError` (naming ``AILINK_ADMIN_KEY``) when ``config`` has no admin key."""
    if not config.admin_key:
        raise AuthenticationError(
            f"{what} needs an admin key: pass admin_key= (or use AIlinkClient.admin(admin_key=...)) "
            "or set AILINK_ADMIN_KEY"
        )


def _health_report(gateway_url: str, response: httpx.Response) -> dict[str, Any]:
    return {
        "status": "ok" if response.status_code < 500 else "unhealthy",
        "gateway_url": gateway_url,
        "http_status": response.status_code,
    }


def _unreachable(gateway_url: str, timeout: float, exc: httpx.TransportError) -> AIlinkError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Gateway health check at {gateway_url} timed out after {timeout}s")
    return APIConnectionError(f"Gateway unreachable at {gateway_url}: {type(exc).__name__}")


class _ResourceProperty(Generic[R]):
    """A client attribute holding a resource of :mod:`ailink.resources` (imported on first use)."""

    def __init__(self, module: str, class_name: str, *, bind: Literal["client", "config"] = "client") -> None:
        self._module = f"ailink.resources.{module}"
        self._class_name = class_name
        self._bind = bind
        self.__doc__ = f"The ``{module}`` resource (:mod:`{self._module}`)."

    @overload
    def __get__(self, client: None, owner: type[Any]) -> _ResourceProperty[R]: ...

    @overload
    def __get__(self, client: _ClientBase[Any], owner: type[Any]) -> R: ...

    def __get__(self, client: _ClientBase[Any] | None, owner: type[Any]) -> R | _ResourceProperty[R]:
        if client is None:
            return self
        resource_class = getattr(import_module(self._module), self._class_name)
        resource: R = resource_class(client._config if self._bind == "config" else client)
        return resource


class _TraceScope:
    """``with client.trace(...) as t`` / ``async with``: a trace block that yields the client."""

    def __init__(self, client: _ClientBase[Any], kwargs: dict[str, Any]) -> None:
        self._client = client
        self._kwargs = kwargs
        self._cm: contextlib.AbstractContextManager[TraceContext] | None = None

    def __enter__(self) -> Any:
        self._cm = trace(**self._kwargs)
        self._cm.__enter__()
        return self._client

    def __exit__(self, *exc: Any) -> None:
        assert self._cm is not None
        self._cm.__exit__(*exc)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)


class _ClientBase(Generic[TransportT]):
    """Configuration, request flows and derived clients, shared by both drivers."""

    _config: ClientConfig
    _owns_http: bool
    _run_key: str | None

    def __init__(
        self,
        api_key: str | None = None,
        gateway_url: str | None = None,
        agent_name: str | None = None,
        idempotency_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int | None = None,
        *,
        retries: int | RetryConfig | None = None,
        verify_ssl: bool = True,
        approval_mode: ApprovalMode = "async",
        approval_timeout: float = 300.0,
        headers: Mapping[str, str] | None = None,
        admin_key: str | None = None,
        transport: TransportT | None = None,
    ) -> None:
        """``api_key`` is the virtual token (``AILINK_API_KEY``), ``gateway_url`` the gateway
        (``AILINK_GATEWAY_URL``, then ``http://localhost:8443``), ``admin_key`` the management key
        (``AILINK_ADMIN_KEY``). ``retries`` (or its AIlink SDK name ``max_retries``) is an int or a
        :class:`RetryConfig`. ``idempotency_key`` names a run: see :meth:`request`.
        """
        if retries is not None and max_retries is not None and RetryConfig.coerce(retries) != RetryConfig.coerce(
            max_retries
        ):
            raise ValueError("pass retries= or max_retries=, not both")
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        self._config = ClientConfig.from_env(
            api_key,
            gateway_url,
            agent_name=agent_name,
            timeout=timeout,
            retries=retries if retries is not None else max_retries if max_retries is not None else 2,
            verify_ssl=verify_ssl,
            approval_mode=approval_mode,
            approval_timeout=approval_timeout,
            headers=headers,
            admin_key=admin_key,
        )
        self._run_key = idempotency_key
        self._owns_http = True
        self._setup(transport)

    def _setup(self, transport: TransportT | None) -> None:
        raise NotImplementedError

    # -- configuration ---------------------------------------------------------------------
    @property
    def settings(self) -> ClientConfig:
        """The immutable configuration of this client (``client.config`` is the config-as-code resource)."""
        return self._config

    @property
    def api_key(self) -> str | None:
        """The virtual token (a secret: never printed by this toolkit)."""
        return self._config.api_key

    @property
    def gateway_url(self) -> str:
        return self._config.gateway_url

    @property
    def agent_name(self) -> str | None:
        return self._config.agent_name

    def __repr__(self) -> str:
        admin = f", admin_key={mask(self._config.admin_key)!r}" if self._config.admin_key else ""
        return (
            f"{type(self).__name__}(gateway_url={scrub(self._config.gateway_url)!r}, "
            f"api_key={mask(self._config.api_key)!r}, agent_name={self._config.agent_name!r}{admin})"
        )

    def _derive(self: _Self, config: ClientConfig) -> _Self:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._config = config
        clone._owns_http = False
        clone.__dict__.pop("_openai", None)
        return clone

    def with_upstream_key(self: _Self, key: str, header: str = "Bearer") -> _Self:
        """A client sharing this one's connections that brings its own upstream key (BYOK).

        The key goes in ``X-Real-Authorization`` as ``"<header> <key>"`` (a key that already
        holds a scheme is sent as given); it is used only when the token has no stored
        credential. Use the result directly or as a context manager (``with ... as byok``).
        """
        key = key.strip()
        value = key if " " in key or not header else f"{header} {key}"
        return self._derive(self._config.with_headers({"X-Real-Authorization": value}))

    def with_guardrails(self: _Self, presets: Iterable[str]) -> _Self:
        """A client sharing this one's connections whose requests ask for these guardrail presets
        (``PRESET_*``); use it directly or as a context manager."""
        names = ",".join(p.strip() for p in presets if p.strip())
        return self._derive(self._config.with_headers({"X-AIlink-Guardrails": names}))

    def trace(
        self,
        session_id: str | None = None,
        parent_span_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        name: str | None = None,
    ) -> _TraceScope:
        """A trace block (``with`` or ``async with``, yielding this client): every request inside,
        from any client of this toolkit including ``client.openai()``, carries the session id and
        a span under it."""
        return _TraceScope(
            self,
            {
                "session_id": session_id,
                "properties": properties,
                "parent_span_id": parent_span_id,
                "user_id": user_id,
                "name": name,
            },
        )

    def _with_run_key(self, method: str, path: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Give a write without its own key the key derived from the client-wide ``idempotency_key``.

        The key is derived from the run key and the request (method, path, query, body): the same
        action re-sent under the same run key re-attaches to its first execution or approval, and
        two different actions never share one approval.
        """
        if self._run_key is None or kwargs.get("idempotency_key") is not None or method.upper() in IDEMPOTENT_METHODS:
            return kwargs
        if any(name.lower() in KEY_HEADERS for name in kwargs.get("headers") or {}):
            return kwargs
        key = derive_idempotency_key(
            self._run_key, method.upper(), path, kwargs.get("params"), kwargs.get("json"), kwargs.get("content"),
            prefix="run",
        )
        return {**kwargs, "idempotency_key": key}

    def _call_flow(self, call: Call[T]) -> Flow[T]:
        """Run a resource call: management calls with the admin key, data-plane calls as proxied requests."""
        from ailink.resources._base import management_flow, read_answer

        if call.admin:
            require_admin_key(self._config, f"{call.method} {call.path} (management API)")
            return (yield from management_flow(self._config, call))
        kwargs = self._with_run_key(
            call.method, call.path,
            {"params": call.params, "json": call.json, "content": call.content, "headers": call.headers},
        )
        response = yield from self._request_flow(call.method, call.path, wait_for_approval=True, **kwargs)
        return read_answer(call, response)

    # -- flows -----------------------------------------------------------------------------
    def _request_flow(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        wait_for_approval: bool = False,
        approval_timeout: float | None = None,
        on_pending: OnPending | None = None,
    ) -> Flow[httpx.Response]:
        config = self._config
        approval_timeout = approval_timeout or config.approval_timeout
        request = config.build_request(
            method,
            path,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idempotency_key,
            approval_timeout=approval_timeout,
        )
        return (
            yield from proxied_call(
                config, request, wait=wait_for_approval, approval_timeout=approval_timeout, on_pending=on_pending
            )
        )

    def _wait_flow(
        self, approval_id: str, timeout: float | None, on_pending: OnPending | None, withdraw_on_timeout: bool
    ) -> Flow[ApprovalResult]:
        return wait_for_decision(
            self._config,
            approval_id,
            timeout=timeout or self._config.approval_timeout,
            on_pending=on_pending,
            withdraw_on_timeout=withdraw_on_timeout,
        )

    def _simple_flow(self, method: str, path: str, **kwargs: Any) -> Flow[httpx.Response]:
        request = self._config.build_request(method, path, may_hold=False, **kwargs)
        response = yield from send_with_retries(request, self._config.retry)
        if response.status_code >= 400:
            raise answer_error(response)
        return response

    def _openai_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "api_key": self._config.api_key or "missing-ailink-token",
            "base_url": self._config.gateway_url + "/v1",
            "max_retries": 0,
            "default_headers": dict(self._config.default_headers),
            **kwargs,
        }

    def _anthropic_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # The gateway reads the virtual token from ``Authorization: Bearer``; an explicit credential
        # also keeps the SDK from reading (and sending) ANTHROPIC_API_KEY from the environment.
        return {
            "auth_token": self._config.api_key or "missing-ailink-token",
            "base_url": self._config.gateway_url,
            "max_retries": 0,
            "timeout": self._config.hold_timeout,
            "default_headers": dict(self._config.default_headers),
            **kwargs,
        }

    def _health_url(self) -> str:
        return self._config.gateway_url + "/healthz"


class AIlinkClient(_ClientBase[httpx.BaseTransport]):
    """Synchronous client for the AIlink gateway.

    Reads ``AILINK_API_KEY``, ``AILINK_GATEWAY_URL`` and ``AILINK_ADMIN_KEY`` when not given.
    Proxied calls return the ``httpx.Response`` (202 included, in async approval mode) and
    raise a typed :class:`ailink.AIlinkError` for an error answer. ``transport`` replaces the
    network (an ``httpx.MockTransport`` in tests).
    """

    tokens: _ResourceProperty[TokensResource] = _ResourceProperty("tokens", "TokensResource")
    credentials: _ResourceProperty[CredentialsResource] = _ResourceProperty("credentials", "CredentialsResource")
    policies: _ResourceProperty[PoliciesResource] = _ResourceProperty("policies", "PoliciesResource")
    services: _ResourceProperty[ServicesResource] = _ResourceProperty("services", "ServicesResource")
    approvals: _ResourceProperty[ApprovalsResource] = _ResourceProperty("approvals", "ApprovalsResource")
    audit: _ResourceProperty[AuditResource] = _ResourceProperty("audit", "AuditResource")
    sessions: _ResourceProperty[SessionsResource] = _ResourceProperty("sessions", "SessionsResource")
    projects: _ResourceProperty[ProjectsResource] = _ResourceProperty("projects", "ProjectsResource")
    api_keys: _ResourceProperty[ApiKeysResource] = _ResourceProperty("api_keys", "ApiKeysResource")
    webhooks: _ResourceProperty[WebhooksResource] = _ResourceProperty("webhooks", "WebhooksResource")
    model_aliases: _ResourceProperty[ModelAliasesResource] = _ResourceProperty("model_aliases", "ModelAliasesResource")
    experiments: _ResourceProperty[ExperimentsResource] = _ResourceProperty("experiments", "ExperimentsResource")
    guardrails: _ResourceProperty[GuardrailsResource] = _ResourceProperty("guardrails", "GuardrailsResource")
    billing: _ResourceProperty[BillingResource] = _ResourceProperty("billing", "BillingResource")
    analytics: _ResourceProperty[AnalyticsResource] = _ResourceProperty("analytics", "AnalyticsResource")
    config: _ResourceProperty[ConfigResource] = _ResourceProperty("config", "ConfigResource")
    batches: _ResourceProperty[BatchesResource] = _ResourceProperty("batches", "BatchesResource")
    fine_tuning: _ResourceProperty[FineTuningResource] = _ResourceProperty("fine_tuning", "FineTuningResource")
    realtime: _ResourceProperty[RealtimeResource] = _ResourceProperty("realtime", "RealtimeResource", bind="config")

    def _setup(self, transport: httpx.BaseTransport | None) -> None:
        self._http = GatewayHTTPClient(
            transport=TracingTransport(
                sync_transport=transport, agent_name=self._config.agent_name, verify=self._config.verify_ssl
            ),
            timeout=self._config.http_timeout(),
        )

    @classmethod
    def from_config(cls, config: ClientConfig, *, transport: httpx.BaseTransport | None = None) -> AIlinkClient:
        """A client with exactly ``config`` (e.g. the config of an async client)."""
        client = object.__new__(cls)
        client._config = config
        client._owns_http = True
        client._run_key = None
        client._setup(transport)
        return client

    @classmethod
    def admin(cls, admin_key: str | None = None, gateway_url: str | None = None, **options: Any) -> AdminClient:
        """A management-API client (``X-Admin-Key``; ``AILINK_ADMIN_KEY`` when not given)."""
        return AdminClient(admin_key, gateway_url, **options)

    def _execute(self, call: Call[T], /) -> T:
        return run_sync(self._call_flow(call), self._http)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a proxied request; see :meth:`post` for the keyword arguments.

        A write without its own ``idempotency_key`` gets a fresh key, or, on a client created with
        ``idempotency_key=RUN``, a key derived from ``RUN`` and the request (method, path, query,
        body): re-running the same script with the same ``RUN`` re-attaches each action to its
        first execution or approval instead of repeating it.
        """
        return run_sync(self._request_flow(method, path, **self._with_run_key(method, path, kwargs)), self._http)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST through the gateway.

        Keyword arguments: ``json``, ``content``, ``params``, ``headers``, ``idempotency_key``
        (default: a fresh key, reused by retries), ``wait_for_approval`` (block until a human
        decides; returns the final response or raises), ``approval_timeout``, ``on_pending``.
        """
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def wait_for_approval(
        self,
        approval_id: str,
        timeout: float | None = None,
        *,
        on_pending: OnPending | None = None,
        withdraw_on_timeout: bool = True,
    ) -> ApprovalResult:
        """Wait for the decision on ``approval_id``.

        At the deadline (the sooner of ``timeout`` and the approval's expiry) the approval is
        withdrawn, so it cannot run later, and :class:`ApprovalTimeoutError` is raised; with
        ``withdraw_on_timeout=False`` it stays pending and the error says so (outcome unknown).
        """
        return run_sync(self._wait_flow(approval_id, timeout, on_pending, withdraw_on_timeout), self._http)

    def withdraw_approval(self, approval_id: str) -> None:
        """Withdraw a pending request (the approval becomes ``cancelled``)."""
        run_sync(withdraw(self._config, approval_id), self._http)

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """``{"status": "ok"|"unhealthy", "gateway_url", "http_status"}`` from ``/healthz`` (below 500
        is ok); an unreachable gateway raises :class:`APIConnectionError` / :class:`APITimeoutError`."""
        try:
            response = self._http.get(self._health_url(), timeout=timeout)
        except httpx.TransportError as exc:
            raise _unreachable(self.gateway_url, timeout, exc) from None
        return _health_report(self.gateway_url, response)

    def is_healthy(self, timeout: float = 3.0) -> bool:
        """True when the gateway answers ``/healthz`` below 500 within ``timeout``; never raises."""
        try:
            report = self.health(timeout)
        except AIlinkError:
            return False
        return bool(report["status"] == "ok")

    def openai(self, **kwargs: Any) -> openai_sdk.OpenAI:
        """The official openai SDK pointed at ``{gateway}/v1`` with ``max_retries=0`` and session headers."""
        module = _import_openai()
        client: openai_sdk.OpenAI = module.OpenAI(
            http_client=http_client(self._config, hold=True), **self._openai_kwargs(kwargs)
        )
        return client

    def anthropic(self, **kwargs: Any) -> anthropic_sdk.Anthropic:
        """The official anthropic SDK pointed at the gateway (``max_retries=0``, session headers).

        It posts Anthropic-format requests to ``{gateway}/v1/messages``; the token's upstream must
        be an Anthropic-compatible API.
        """
        module = _import_anthropic()
        http = _anthropic_http_client(module, self._config, asynchronous=False)
        client: anthropic_sdk.Anthropic = module.Anthropic(http_client=http, **self._anthropic_kwargs(kwargs))
        return client

    def _cached_openai(self) -> openai_sdk.OpenAI:
        if "_openai" not in self.__dict__:
            self.__dict__["_openai"] = self.openai()
        cached: openai_sdk.OpenAI = self.__dict__["_openai"]
        return cached

    def chat(self, model: str, messages: str | Mapping[str, Any] | Sequence[Any], **kwargs: Any) -> Any:
        """A chat completion through the gateway (openai SDK); ``messages`` may be a string."""
        return self._cached_openai().chat.completions.create(
            model=model, messages=_messages(messages), **kwargs
        )

    def chat_stream(
        self, model: str, messages: str | Mapping[str, Any] | Sequence[Any], **kwargs: Any
    ) -> Iterator[Any]:
        """Stream chat completion chunks (the last one carries usage)."""
        kwargs.setdefault("stream_options", {"include_usage": True})
        stream: Any = self._cached_openai().chat.completions.create(
            model=model, messages=_messages(messages), stream=True, **kwargs
        )
        with stream:
            yield from stream

    def embeddings(self, model: str, input: str | Sequence[str], **kwargs: Any) -> Any:
        return self._cached_openai().embeddings.create(model=model, input=cast(Any, input), **kwargs)

    def models(self) -> list[Any]:
        return list(self._cached_openai().models.list())

    def with_fallback(self, fallback: Any, *, health_timeout: float = 3.0) -> FallbackChat:
        """``with client.with_fallback(fallback_oai) as oai``: the gateway's openai client when the
        gateway is healthy, else ``fallback`` (with a warning: no policy, no audit).

        The result's ``chat(model, messages)`` also falls back call by call, on outages only
        (connection errors and 5xx; never on policy answers).
        """
        from ailink._health import FallbackChat

        return FallbackChat(self, fallback, health_timeout=health_timeout)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> AIlinkClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_ClientBase[httpx.AsyncBaseTransport]):
    """Asynchronous client for the AIlink gateway; mirrors :class:`AIlinkClient`."""

    tokens: _ResourceProperty[AsyncTokensResource] = _ResourceProperty("tokens", "AsyncTokensResource")
    credentials: _ResourceProperty[AsyncCredentialsResource] = _ResourceProperty(
        "credentials", "AsyncCredentialsResource"
    )
    policies: _ResourceProperty[AsyncPoliciesResource] = _ResourceProperty("policies", "AsyncPoliciesResource")
    services: _ResourceProperty[AsyncServicesResource] = _ResourceProperty("services", "AsyncServicesResource")
    approvals: _ResourceProperty[AsyncApprovalsResource] = _ResourceProperty("approvals", "AsyncApprovalsResource")
    audit: _ResourceProperty[AsyncAuditResource] = _ResourceProperty("audit", "AsyncAuditResource")
    sessions: _ResourceProperty[AsyncSessionsResource] = _ResourceProperty("sessions", "AsyncSessionsResource")
    projects: _ResourceProperty[AsyncProjectsResource] = _ResourceProperty("projects", "AsyncProjectsResource")
    api_keys: _ResourceProperty[AsyncApiKeysResource] = _ResourceProperty("api_keys", "AsyncApiKeysResource")
    webhooks: _ResourceProperty[AsyncWebhooksResource] = _ResourceProperty("webhooks", "AsyncWebhooksResource")
    model_aliases: _ResourceProperty[AsyncModelAliasesResource] = _ResourceProperty(
        "model_aliases", "AsyncModelAliasesResource"
    )
    experiments: _ResourceProperty[AsyncExperimentsResource] = _ResourceProperty(
        "experiments", "AsyncExperimentsResource"
    )
    guardrails: _ResourceProperty[AsyncGuardrailsResource] = _ResourceProperty("guardrails", "AsyncGuardrailsResource")
    billing: _ResourceProperty[AsyncBillingResource] = _ResourceProperty("billing", "AsyncBillingResource")
    analytics: _ResourceProperty[AsyncAnalyticsResource] = _ResourceProperty("analytics", "AsyncAnalyticsResource")
    config: _ResourceProperty[AsyncConfigResource] = _ResourceProperty("config", "AsyncConfigResource")
    batches: _ResourceProperty[AsyncBatchesResource] = _ResourceProperty("batches", "AsyncBatchesResource")
    fine_tuning: _ResourceProperty[AsyncFineTuningResource] = _ResourceProperty(
        "fine_tuning", "AsyncFineTuningResource"
    )
    realtime: _ResourceProperty[AsyncRealtimeResource] = _ResourceProperty(
        "realtime", "AsyncRealtimeResource", bind="config"
    )

    def _setup(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._http = AsyncGatewayHTTPClient(
            transport=TracingTransport(
                async_transport=transport, agent_name=self._config.agent_name, verify=self._config.verify_ssl
            ),
            timeout=self._config.http_timeout(),
        )

    @classmethod
    def from_config(cls, config: ClientConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> AsyncClient:
        """An async client with exactly ``config`` (e.g. the config of a sync client)."""
        client = object.__new__(cls)
        client._config = config
        client._owns_http = True
        client._run_key = None
        client._setup(transport)
        return client

    @classmethod
    def admin(
        cls, admin_key: str | None = None, gateway_url: str | None = None, **options: Any
    ) -> AsyncAdminClient:
        """An async management-API client."""
        return AsyncAdminClient(admin_key, gateway_url, **options)

    async def _aexecute(self, call: Call[T], /) -> T:
        return await run_async(self._call_flow(call), self._http)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a proxied request; see :meth:`AIlinkClient.request`."""
        return await run_async(self._request_flow(method, path, **self._with_run_key(method, path, kwargs)), self._http)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def wait_for_approval(
        self,
        approval_id: str,
        timeout: float | None = None,
        *,
        on_pending: OnPending | None = None,
        withdraw_on_timeout: bool = True,
    ) -> ApprovalResult:
        """Wait for the decision on ``approval_id`` (see :meth:`AIlinkClient.wait_for_approval`)."""
        return await run_async(self._wait_flow(approval_id, timeout, on_pending, withdraw_on_timeout), self._http)

    async def withdraw_approval(self, approval_id: str) -> None:
        """Withdraw a pending request (the approval becomes ``cancelled``)."""
        await run_async(withdraw(self._config, approval_id), self._http)

    async def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """See :meth:`AIlinkClient.health`."""
        try:
            response = await self._http.get(self._health_url(), timeout=timeout)
        except httpx.TransportError as exc:
            raise _unreachable(self.gateway_url, timeout, exc) from None
        return _health_report(self.gateway_url, response)

    async def is_healthy(self, timeout: float = 3.0) -> bool:
        """True when the gateway answers ``/healthz`` below 500 within ``timeout``; never raises."""
        try:
            report = await self.health(timeout)
        except AIlinkError:
            return False
        return bool(report["status"] == "ok")

    def openai(self, **kwargs: Any) -> openai_sdk.AsyncOpenAI:
        """The official async openai SDK pointed at the gateway (``max_retries=0``, session headers)."""
        module = _import_openai()
        client: openai_sdk.AsyncOpenAI = module.AsyncOpenAI(
            http_client=async_http_client(self._config, hold=True), **self._openai_kwargs(kwargs)
        )
        return client

    def anthropic(self, **kwargs: Any) -> anthropic_sdk.AsyncAnthropic:
        """The official async anthropic SDK pointed at the gateway; see :meth:`AIlinkClient.anthropic`."""
        module = _import_anthropic()
        http = _anthropic_http_client(module, self._config, asynchronous=True)
        client: anthropic_sdk.AsyncAnthropic = module.AsyncAnthropic(http_client=http, **self._anthropic_kwargs(kwargs))
        return client

    def _cached_openai(self) -> openai_sdk.AsyncOpenAI:
        if "_openai" not in self.__dict__:
            self.__dict__["_openai"] = self.openai()
        cached: openai_sdk.AsyncOpenAI = self.__dict__["_openai"]
        return cached

    async def chat(self, model: str, messages: str | Mapping[str, Any] | Sequence[Any], **kwargs: Any) -> Any:
        return await self._cached_openai().chat.completions.create(
            model=model, messages=_messages(messages), **kwargs
        )

    async def chat_stream(
        self, model: str, messages: str | Mapping[str, Any] | Sequence[Any], **kwargs: Any
    ) -> AsyncIterator[Any]:
        kwargs.setdefault("stream_options", {"include_usage": True})
        stream: Any = await self._cached_openai().chat.completions.create(
            model=model, messages=_messages(messages), stream=True, **kwargs
        )
        async with stream:
            async for chunk in stream:
                yield chunk

    async def embeddings(self, model: str, input: str | Sequence[str], **kwargs: Any) -> Any:
        return await self._cached_openai().embeddings.create(model=model, input=cast(Any, input), **kwargs)

    async def models(self) -> list[Any]:
        return [m async for m in self._cached_openai().models.list()]

    def with_fallback(self, fallback: Any, *, health_timeout: float = 3.0) -> AsyncFallbackChat:
        """``async with client.with_fallback(fallback_oai) as oai``; see :meth:`AIlinkClient.with_fallback`."""
        from ailink._health import AsyncFallbackChat

        return AsyncFallbackChat(self, fallback, health_timeout=health_timeout)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    close = aclose

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class AdminClient(AIlinkClient):
    """A client for the management API (``X-Admin-Key``): what :meth:`AIlinkClient.admin` returns.

    Its resources (``tokens``, ``credentials``, ``policies``, ``approvals``, ``audit``, ...) return
    pydantic models that also read as dicts. Without an admin key (``admin_key=`` or
    ``AILINK_ADMIN_KEY``) it raises :class:`AuthenticationError` at once.
    """

    def __init__(
        self,
        admin_key: str | None = None,
        gateway_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int | None = None,
        retries: int | RetryConfig | None = None,
        verify_ssl: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(None, gateway_url, timeout=timeout, max_retries=max_retries, retries=retries,
                         verify_ssl=verify_ssl, admin_key=admin_key, transport=transport)
        require_admin_key(self._config, "AIlinkClient.admin()")


class AsyncAdminClient(AsyncClient):
    """The async twin of :class:`AdminClient` (what :meth:`AsyncClient.admin` returns)."""

    def __init__(
        self,
        admin_key: str | None = None,
        gateway_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int | None = None,
        retries: int | RetryConfig | None = None,
        verify_ssl: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(None, gateway_url, timeout=timeout, max_retries=max_retries, retries=retries,
                         verify_ssl=verify_ssl, admin_key=admin_key, transport=transport)
        require_admin_key(self._config, "AsyncClient.admin()")


#: The AIlink SDK's short name of :class:`AIlinkClient`.
Client = AIlinkClient
