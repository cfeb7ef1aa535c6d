"""The clients: one shared base of sans-I/O flows, a sync driver and an async driver.

Both clients carry the management resources (``client.tokens``, ``client.policies``, ...; they
need an admin key), the data-plane resources (``batches``, ``fine_tuning``, ``realtime``), the LLM
calls (``chat``, ``chat_stream``, ``completions``, ``embeddings``, ``models``, ``metrics``, ``me``;
their flows live in ``_llm``) and ready-made provider SDKs (``openai()``, ``anthropic()``) pointed at
the gateway.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from importlib import import_module
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import httpx
from typing_extensions import TypedDict, Unpack

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
from ailink._llm import (
    ME_PATH,
    MODELS_PATH,
    AsyncChatStream,
    ChatStream,
    LLMCall,
    Messages,
    astream_pieces,
    chat_call,
    chat_call_from,
    completion_dict,
    embeddings_call,
    get_call,
    llm_flow,
    metrics_call,
    normalize_messages,
    parse_completion,
    parse_embeddings,
    parse_me,
    parse_metrics,
    parse_models,
    stream_pieces,
)
from ailink._openai_compat import MISSING_TOKEN, fail_closed_retries, openai_settings
from ailink._retry import IDEMPOTENT_METHODS, RetryConfig
from ailink._secrets import mask, scrub
from ailink._tracing import TraceContext, trace
from ailink._transport import AsyncGatewayHTTPClient, GatewayHTTPClient, TracingTransport
from ailink._watch import close_watchers

if TYPE_CHECKING:
    import anthropic as anthropic_sdk
    import openai as openai_sdk

    from ailink._health import AsyncFallbackChat, FallbackChat
    from ailink._llm_models import (
        ChatCompletion,
        EmbeddingsResponse,
        MeResponse,
        MetricsResponse,
        ModelInfo,
        StreamChunk,
    )
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
    from ailink.resources.pricing import AsyncPricingResource, PricingResource
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


class RequestOptions(TypedDict, total=False):
    """The keyword arguments of the request verbs (``request``, ``get``, ``post``, ``put``, ``patch``, ``delete``).

    ``json``, ``content``, ``params``, ``headers``: the request; ``idempotency_key``: the key of a
    write (default: a fresh key, reused by retries); ``wait_for_approval``: block until a human
    decides (returns the final response or raises); ``approval_timeout``: how long to wait;
    ``on_pending``: called once when the wait starts.
    """

    params: Mapping[str, Any] | None
    json: Any
    content: bytes | str | None
    headers: Mapping[str, str] | None
    idempotency_key: str | None
    wait_for_approval: bool
    approval_timeout: float | None
    on_pending: OnPending | None


def _request_options(method: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``options``, refusing a keyword no request verb takes (a typo must not go unnoticed)."""
    unknown = sorted(set(options) - set(RequestOptions.__annotations__))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(map(repr, unknown))} for a {method.upper()} request; "
            f"expected: {', '.join(RequestOptions.__annotations__)}"
        )
    return options


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
    tracing = TracingTransport(agent_name=config.agent_name, verify=config.verify_ssl, identity=config.identity)
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
        user_id: str | None = None,
        app_id: str | None = None,
        org_id: str | None = None,
    ) -> None:
        """``api_key`` is the virtual token (``AILINK_API_KEY``), ``gateway_url`` the gateway
        (``AILINK_GATEWAY_URL``, then ``http://localhost:8443``), ``admin_key`` the management key
        (``AILINK_ADMIN_KEY``). ``retries`` (or its AIlink SDK name ``max_retries``) is an int or a
        :class:`RetryConfig`. ``idempotency_key`` names a run: see :meth:`request`.
        ``user_id``, ``app_id`` and ``org_id`` say on whose behalf every request is made
        (``X-User-Id``, ``app_id`` in ``X-Properties``, ``X-Tenant-Id``); calls may override them.
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
            user_id=user_id,
            app_id=app_id,
            org_id=org_id,
        )
        self._run_key = idempotency_key
        self._owns_http = True
        self._setup(transport)

    def _setup(self, transport: TransportT | None) -> None:
        raise NotImplementedError

    @classmethod
    def from_config(cls: type[_Self], config: ClientConfig, *, transport: TransportT | None = None) -> _Self:
        """A client with exactly ``config`` (e.g. the settings of a client of the other kind)."""
        client = object.__new__(cls)
        client._config = config
        client._owns_http = True
        client._run_key = None
        client._setup(transport)
        return client

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

    def _with_run_key(self, method: str, path: str, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
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
        options = {"params": call.params, "json": call.json, "content": call.content, "headers": call.headers,
                   "wait_for_approval": True}
        response = yield from self._request_flow(call.method, call.path,
                                                 self._with_run_key(call.method, call.path, options))
        return read_answer(call, response)

    # -- flows -----------------------------------------------------------------------------
    def _request_flow(self, method: str, path: str, options: Mapping[str, Any]) -> Flow[httpx.Response]:
        """One proxied request with :class:`RequestOptions` (see :meth:`AIlinkClient.request`)."""
        config = self._config
        approval_timeout = options.get("approval_timeout") or config.approval_timeout
        request = config.build_request(
            method, path, params=options.get("params"), json=options.get("json"), content=options.get("content"),
            headers=options.get("headers"), idempotency_key=options.get("idempotency_key"),
            approval_timeout=approval_timeout,
        )
        return (
            yield from proxied_call(config, request, wait=bool(options.get("wait_for_approval")),
                                    approval_timeout=approval_timeout, on_pending=options.get("on_pending"))
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

    def _openai_kwargs(self, kwargs: dict[str, Any], *, asynchronous: bool) -> dict[str, Any]:
        settings = openai_settings(self._config, max_retries=kwargs.pop("max_retries", None))
        http = settings.async_http_client() if asynchronous else settings.http_client()
        return {**settings.sdk_options(), "http_client": http, **kwargs}

    def _anthropic_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # The gateway reads the virtual token from ``Authorization: Bearer``; an explicit credential
        # also keeps the SDK from reading (and sending) ANTHROPIC_API_KEY from the environment.
        return {
            "auth_token": self._config.api_key or MISSING_TOKEN,
            "base_url": self._config.gateway_url,
            "max_retries": fail_closed_retries(kwargs.pop("max_retries", None)),
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
    pricing: _ResourceProperty[PricingResource] = _ResourceProperty("pricing", "PricingResource")
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
    def admin(cls, admin_key: str | None = None, gateway_url: str | None = None, **options: Any) -> AdminClient:
        """A management-API client (``X-Admin-Key``; ``AILINK_ADMIN_KEY`` when not given)."""
        return AdminClient(admin_key, gateway_url, **options)

    def _drive(self, flow: Flow[T], /) -> T:
        """Run a sans-I/O flow of the core (requests, resources, tools) on this client's connections."""
        return run_sync(flow, self._http)

    def _execute(self, call: Call[T], /) -> T:
        return self._drive(self._call_flow(call))

    def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """Send a proxied request; the keyword arguments are :class:`RequestOptions`.

        A write without its own ``idempotency_key`` gets a fresh key, or, on a client created with
        ``idempotency_key=RUN``, a key derived from ``RUN`` and the request (method, path, query,
        body): re-running the same script with the same ``RUN`` re-attaches each action to its
        first execution or approval instead of repeating it.
        """
        kwargs = self._with_run_key(method, path, _request_options(method, options))
        return self._drive(self._request_flow(method, path, kwargs))

    def get(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """GET through the gateway (see :meth:`request`)."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """POST through the gateway (see :meth:`request`; ``wait_for_approval=True`` blocks until a
        human decides and returns the final response or raises)."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """PUT through the gateway (see :meth:`request`)."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """PATCH through the gateway (see :meth:`request`)."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """DELETE through the gateway (see :meth:`request`)."""
        return self.request("DELETE", path, **options)

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
        return self._drive(self._wait_flow(approval_id, timeout, on_pending, withdraw_on_timeout))

    def withdraw_approval(self, approval_id: str) -> None:
        """Withdraw a pending request (the approval becomes ``cancelled``)."""
        self._drive(withdraw(self._config, approval_id))

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
        client: openai_sdk.OpenAI = module.OpenAI(**self._openai_kwargs(kwargs, asynchronous=False))
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

    def _llm(self, call: LLMCall) -> httpx.Response:
        return run_sync(llm_flow(self._config, call), self._http)

    def _open_stream(self, call: LLMCall) -> ChatStream:
        return ChatStream(self._llm(call))

    @overload
    def chat(
        self, model: str, messages: Messages, *, stream: Literal[False] = False, user_id: str | None = None,
        app_id: str | None = None, org_id: str | None = None, headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None, approval_timeout: float | None = None,
        on_pending: OnPending | None = None, **options: Any,
    ) -> ChatCompletion: ...

    @overload
    def chat(
        self, model: str, messages: Messages, *, stream: Literal[True], user_id: str | None = None,
        app_id: str | None = None, org_id: str | None = None, headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None, approval_timeout: float | None = None,
        on_pending: OnPending | None = None, **options: Any,
    ) -> ChatStream: ...

    def chat(
        self, model: str, messages: Messages, *, stream: bool = False, user_id: str | None = None,
        app_id: str | None = None, org_id: str | None = None, headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None, approval_timeout: float | None = None,
        on_pending: OnPending | None = None, **options: Any,
    ) -> ChatCompletion | ChatStream:
        """A chat completion through the gateway (``POST /v1/chat/completions``).

        ``messages`` may be a string (one user message), a dict or a list; ``options``
        (``temperature``, ``max_tokens``, ``tools``, ...) go in the body as given. Returns a
        :class:`~ailink.ChatCompletion` (``.content``, ``.usage``, ``.cost_usd``, ``.request_id``);
        with ``stream=True`` a :class:`~ailink.ChatStream` of OpenAI-shaped chunks. Raises the
        typed errors of :meth:`post` (``PolicyDeniedError``, ``RateLimitError``, ...) and follows
        the client's retry policy, with a fresh idempotency key per attempt (an LLM call is a
        computation; pass ``idempotency_key`` to send it as a one-time action instead).
        ``user_id``/``app_id``/``org_id`` override the client's for this call. An approval-gated
        call waits for the decision (``approval_timeout``, ``on_pending``).
        """
        call = chat_call(model, messages, options, stream=stream, user_id=user_id, app_id=app_id, org_id=org_id,
                         headers=headers, idempotency_key=idempotency_key, approval_timeout=approval_timeout,
                         on_pending=on_pending)
        if stream:
            return self._open_stream(call)
        return parse_completion(self._llm(call))

    @overload
    def chat_stream(
        self, model: str, messages: Messages, *, as_chunks: Literal[False] = False, **kwargs: Any
    ) -> Iterator[str]: ...

    @overload
    def chat_stream(
        self, model: str, messages: Messages, *, as_chunks: Literal[True], **kwargs: Any
    ) -> Iterator[StreamChunk]: ...

    def chat_stream(
        self, model: str, messages: Messages, *, as_chunks: bool = False, **kwargs: Any
    ) -> Iterator[str] | Iterator[StreamChunk]:
        """Stream a chat completion: the text piece by piece, or with ``as_chunks=True``
        :class:`~ailink.StreamChunk` objects (text, request id; usage and cost on the last one).

        Takes the keyword arguments of :meth:`chat`. The request is sent when iteration starts;
        errors (before or during the stream) are the typed errors of :meth:`chat`.
        """
        call = chat_call_from(model, messages, kwargs, stream=True)
        return stream_pieces(lambda: self._open_stream(call), as_chunks)

    def completions(self, model: str, messages: Messages, **kwargs: Any) -> dict[str, Any]:
        """A chat completion as the raw OpenAI-shaped dict; takes the keyword arguments of :meth:`chat`."""
        call = chat_call_from(model, messages, kwargs, stream=False)
        return completion_dict(self._llm(call))

    def embeddings(
        self, model: str, input: str | Sequence[Any], *, user_id: str | None = None, app_id: str | None = None,
        org_id: str | None = None, headers: Mapping[str, str] | None = None, **options: Any,
    ) -> EmbeddingsResponse:
        """Embeddings of ``input`` (``POST /v1/embeddings``): ``.data[i].embedding``, ``.usage``, ``.cost_usd``."""
        call = embeddings_call(model, input, options, user_id=user_id, app_id=app_id, org_id=org_id, headers=headers)
        return parse_embeddings(self._llm(call))

    def models(self) -> list[ModelInfo]:
        """The models the gateway serves (``GET /v1/models``), with provider and pricing when it says."""
        return parse_models(self._llm(get_call(MODELS_PATH)))

    def metrics(self, range: str = "24h", *, group_by: str | None = None) -> MetricsResponse:
        """This token's traffic over ``range`` (``"1h"``, ``"24h"``, ``"7d"``, ``"30d"``): totals, a
        breakdown (by provider, model, user, app, org and status, or only ``group_by``) and a
        bucketed timeseries (``GET /v1/metrics``). [ext]"""
        return parse_metrics(self._llm(metrics_call(range, group_by)))

    def me(self) -> MeResponse:
        """The calling token: name, project, policies, scopes and spend so far (``GET /v1/me``). [ext]"""
        return parse_me(self._llm(get_call(ME_PATH)))

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
            close_watchers(self._http)
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
    pricing: _ResourceProperty[AsyncPricingResource] = _ResourceProperty("pricing", "AsyncPricingResource")
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
    def admin(
        cls, admin_key: str | None = None, gateway_url: str | None = None, **options: Any
    ) -> AsyncAdminClient:
        """An async management-API client."""
        return AsyncAdminClient(admin_key, gateway_url, **options)

    async def _adrive(self, flow: Flow[T], /) -> T:
        """Run a sans-I/O flow of the core (requests, resources, tools) on this client's connections."""
        return await run_async(flow, self._http)

    async def _aexecute(self, call: Call[T], /) -> T:
        return await self._adrive(self._call_flow(call))

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """Send a proxied request; see :meth:`AIlinkClient.request`."""
        kwargs = self._with_run_key(method, path, _request_options(method, options))
        return await self._adrive(self._request_flow(method, path, kwargs))

    async def get(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """GET through the gateway (see :meth:`AIlinkClient.request`)."""
        return await self.request("GET", path, **options)

    async def post(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """POST through the gateway (see :meth:`AIlinkClient.post`)."""
        return await self.request("POST", path, **options)

    async def put(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """PUT through the gateway (see :meth:`AIlinkClient.request`)."""
        return await self.request("PUT", path, **options)

    async def patch(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """PATCH through the gateway (see :meth:`AIlinkClient.request`)."""
        return await self.request("PATCH", path, **options)

    async def delete(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """DELETE through the gateway (see :meth:`AIlinkClient.request`)."""
        return await self.request("DELETE", path, **options)

    async def wait_for_approval(
        self,
        approval_id: str,
        timeout: float | None = None,
        *,
        on_pending: OnPending | None = None,
        withdraw_on_timeout: bool = True,
    ) -> ApprovalResult:
        """Wait for the decision on ``approval_id`` (see :meth:`AIlinkClient.wait_for_approval`)."""
        return await self._adrive(self._wait_flow(approval_id, timeout, on_pending, withdraw_on_timeout))

    async def withdraw_approval(self, approval_id: str) -> None:
        """Withdraw a pending request (the approval becomes ``cancelled``)."""
        await self._adrive(withdraw(self._config, approval_id))

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
        client: openai_sdk.AsyncOpenAI = module.AsyncOpenAI(**self._openai_kwargs(kwargs, asynchronous=True))
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

    async def _llm(self, call: LLMCall) -> httpx.Response:
        return await run_async(llm_flow(self._config, call), self._http)

    async def _open_stream(self, call: LLMCall) -> AsyncChatStream:
        return AsyncChatStream(await self._llm(call))

    @overload
    async def chat(
        self, model: str, messages: Messages, *, stream: Literal[False] = False, user_id: str | None = None,
        app_id: str | None = None, org_id: str | None = None, headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None, approval_timeout: float | None = None,
        on_pending: OnPending | None = None, **options: Any,
    ) -> ChatCompletion: ...

    @overload
    async def chat(
        self, model: str, messages: Messages, *, stream: Literal[True], user_id: str | None = None,
        app_id: str | None = None, org_id: str | None = None, headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None, approval_timeout: float | None = None,
        on_pending: OnPending | None = None, **options: Any,
    ) -> AsyncChatStream: ...

    async def chat(
        self, model: str, messages: Messages, *, stream: bool = False, user_id: str | None = None,
        app_id: str | None = None, org_id: str | None = None, headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None, approval_timeout: float | None = None,
        on_pending: OnPending | None = None, **options: Any,
    ) -> ChatCompletion | AsyncChatStream:
        """See :meth:`AIlinkClient.chat`; ``stream=True`` gives an :class:`~ailink.AsyncChatStream`
        (``async for chunk in await client.chat(..., stream=True)``)."""
        call = chat_call(model, messages, options, stream=stream, user_id=user_id, app_id=app_id, org_id=org_id,
                         headers=headers, idempotency_key=idempotency_key, approval_timeout=approval_timeout,
                         on_pending=on_pending)
        if stream:
            return await self._open_stream(call)
        return parse_completion(await self._llm(call))

    @overload
    def chat_stream(
        self, model: str, messages: Messages, *, as_chunks: Literal[False] = False, **kwargs: Any
    ) -> AsyncIterator[str]: ...

    @overload
    def chat_stream(
        self, model: str, messages: Messages, *, as_chunks: Literal[True], **kwargs: Any
    ) -> AsyncIterator[StreamChunk]: ...

    def chat_stream(
        self, model: str, messages: Messages, *, as_chunks: bool = False, **kwargs: Any
    ) -> AsyncIterator[str] | AsyncIterator[StreamChunk]:
        """``async for piece in client.chat_stream(...)``; see :meth:`AIlinkClient.chat_stream`."""
        call = chat_call_from(model, messages, kwargs, stream=True)
        return astream_pieces(lambda: self._open_stream(call), as_chunks)

    async def completions(self, model: str, messages: Messages, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`AIlinkClient.completions`."""
        call = chat_call_from(model, messages, kwargs, stream=False)
        return completion_dict(await self._llm(call))

    async def embeddings(
        self, model: str, input: str | Sequence[Any], *, user_id: str | None = None, app_id: str | None = None,
        org_id: str | None = None, headers: Mapping[str, str] | None = None, **options: Any,
    ) -> EmbeddingsResponse:
        """See :meth:`AIlinkClient.embeddings`."""
        call = embeddings_call(model, input, options, user_id=user_id, app_id=app_id, org_id=org_id, headers=headers)
        return parse_embeddings(await self._llm(call))

    async def models(self) -> list[ModelInfo]:
        """See :meth:`AIlinkClient.models`."""
        return parse_models(await self._llm(get_call(MODELS_PATH)))

    async def metrics(self, range: str = "24h", *, group_by: str | None = None) -> MetricsResponse:
        """See :meth:`AIlinkClient.metrics`. [ext]"""
        return parse_metrics(await self._llm(metrics_call(range, group_by)))

    async def me(self) -> MeResponse:
        """See :meth:`AIlinkClient.me`. [ext]"""
        return parse_me(await self._llm(get_call(ME_PATH)))

    def with_fallback(self, fallback: Any, *, health_timeout: float = 3.0) -> AsyncFallbackChat:
        """``async with client.with_fallback(fallback_oai) as oai``; see :meth:`AIlinkClient.with_fallback`."""
        from ailink._health import AsyncFallbackChat

        return AsyncFallbackChat(self, fallback, health_timeout=health_timeout)

    async def aclose(self) -> None:
        if self._owns_http:
            close_watchers(self._http)
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
