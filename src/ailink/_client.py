"""The clients: one shared base of sans-I/O flows, a sync driver and an async driver."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from ailink._approval import (
    ApprovalResult,
    PendingApproval,
    is_pending_response,
    wait_for_decision,
)
from ailink._config import HOLD_MARGIN_SECONDS, ApprovalMode, ClientConfig
from ailink._errors import error_from_response
from ailink._flow import Flow, run_async, run_sync
from ailink._retry import RetryConfig, send_with_retries
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
    import openai as openai_sdk

    from ailink._resources import AdminClient, AsyncAdminClient

__all__ = ["AIlinkClient", "AsyncClient", "normalize_messages"]

_Self = TypeVar("_Self", bound="_ClientBase")
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


class _TraceScope:
    """``with client.trace(...) as t`` / ``async with``: a trace block that yields the client."""

    def __init__(self, client: _ClientBase, kwargs: dict[str, Any]) -> None:
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


class _ClientBase:
    """Configuration, request flows and derived clients, shared by both drivers."""

    _config: ClientConfig
    _owns_http: bool

    def __init__(
        self,
        api_key: str | None = None,
        gateway_url: str | None = None,
        *,
        agent_name: str | None = None,
        timeout: float = 30.0,
        retries: int | RetryConfig = 2,
        verify_ssl: bool = True,
        approval_mode: ApprovalMode = "async",
        approval_timeout: float = 300.0,
        headers: Mapping[str, str] | None = None,
        admin_key: str | None = None,
    ) -> None:
        self._config = ClientConfig.from_env(
            api_key,
            gateway_url,
            agent_name=agent_name,
            timeout=timeout,
            retries=retries,
            verify_ssl=verify_ssl,
            approval_mode=approval_mode,
            approval_timeout=approval_timeout,
            headers=headers,
            admin_key=admin_key,
        )
        self._owns_http = True

    # -- configuration ---------------------------------------------------------------------
    @property
    def config(self) -> ClientConfig:
        """The immutable configuration of this client."""
        return self._config

    @property
    def gateway_url(self) -> str:
        return self._config.gateway_url

    @property
    def agent_name(self) -> str | None:
        return self._config.agent_name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(gateway_url={scrub(self._config.gateway_url)!r}, "
            f"api_key={mask(self._config.api_key)!r}, agent_name={self._config.agent_name!r})"
        )

    def _derive(self: _Self, config: ClientConfig) -> _Self:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._config = config
        clone._owns_http = False
        clone.__dict__.pop("_openai", None)
        return clone

    def with_upstream_key(self: _Self, key: str) -> _Self:
        """A client sharing this one's connections that brings its own upstream key (BYOK).

        The key goes in ``X-Real-Authorization`` (``Bearer`` is added when no scheme is given);
        it is used only when the token has no stored credential.
        """
        value = key if " " in key.strip() else f"Bearer {key.strip()}"
        return self._derive(self._config.with_headers({"X-Real-Authorization": value}))

    def with_guardrails(self: _Self, guardrails: Iterable[str]) -> _Self:
        """A client sharing this one's connections whose requests ask for these guardrails."""
        names = ",".join(g.strip() for g in guardrails if g.strip())
        return self._derive(self._config.with_headers({"X-AIlink-Guardrails": names}))

    def trace(
        self,
        session_id: str | None = None,
        *,
        properties: Mapping[str, Any] | None = None,
        parent_span_id: str | None = None,
        user_id: str | None = None,
        name: str | None = None,
    ) -> _TraceScope:
        """A trace block (``with`` or ``async with``): every request inside, from any client of
        this toolkit including ``client.openai()``, carries the session id and a span under it."""
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
        read_timeout = None
        if config.approval_mode == "blocking":
            read_timeout = max(config.timeout, approval_timeout + HOLD_MARGIN_SECONDS)
        request = config.build_request(
            method,
            path,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idempotency_key,
            read_timeout=read_timeout,
        )
        response = yield from send_with_retries(request, config.retry)
        if wait_for_approval and is_pending_response(response):
            pending = PendingApproval.from_response(response)
            result = yield from wait_for_decision(
                config, pending.approval_id, timeout=approval_timeout, pending=pending, on_pending=on_pending
            )
            response = result.raise_for_status()
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _wait_flow(
        self, approval_id: str, timeout: float | None, on_pending: OnPending | None
    ) -> Flow[ApprovalResult]:
        return wait_for_decision(
            self._config, approval_id, timeout=timeout or self._config.approval_timeout, on_pending=on_pending
        )

    def _simple_flow(self, method: str, path: str, **kwargs: Any) -> Flow[httpx.Response]:
        request = self._config.build_request(method, path, may_hold=False, **kwargs)
        response = yield from send_with_retries(request, self._config.retry)
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _openai_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "api_key": self._config.api_key or "missing-ailink-token",
            "base_url": self._config.gateway_url + "/v1",
            "max_retries": 0,
            "default_headers": dict(self._config.default_headers),
            **kwargs,
        }


class AIlinkClient(_ClientBase):
    """Synchronous client for the AIlink gateway.

    Reads ``AILINK_API_KEY``, ``AILINK_GATEWAY_URL`` and ``AILINK_ADMIN_KEY`` when not given.
    Proxied calls return the ``httpx.Response`` (202 included, in async approval mode) and
    raise a typed :class:`ailink.AIlinkError` for an error answer.
    """

    def __init__(
        self,
        api_key: str | None = None,
        gateway_url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, gateway_url, **options)
        self._setup(transport)

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
        client._setup(transport)
        return client

    @classmethod
    def admin(
        cls, admin_key: str | None = None, gateway_url: str | None = None, **options: Any
    ) -> AdminClient:
        """A management-API client (``X-Admin-Key``): tokens, credentials, policies, approvals, ..."""
        from ailink._resources import AdminClient

        return AdminClient(admin_key=admin_key, gateway_url=gateway_url, **options)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a proxied request; see :meth:`post` for the keyword arguments."""
        return run_sync(self._request_flow(method, path, **kwargs), self._http)

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
        self, approval_id: str, timeout: float | None = None, *, on_pending: OnPending | None = None
    ) -> ApprovalResult:
        """Wait for the decision on ``approval_id``; raises :class:`ApprovalTimeoutError` at the deadline."""
        return run_sync(self._wait_flow(approval_id, timeout, on_pending), self._http)

    def withdraw_approval(self, approval_id: str) -> None:
        """Withdraw a pending request (the approval becomes ``cancelled``)."""
        run_sync(self._simple_flow("DELETE", f"/v1/approvals/{approval_id}"), self._http)

    def is_healthy(self) -> bool:
        """True when the gateway answers ``/healthz`` below 500."""
        try:
            return self._http.get(self._config.gateway_url + "/healthz", timeout=5.0).status_code < 500
        except httpx.HTTPError:
            return False

    def openai(self, **kwargs: Any) -> openai_sdk.OpenAI:
        """The official openai SDK pointed at ``{gateway}/v1`` with ``max_retries=0`` and session headers."""
        module = _import_openai()
        client: openai_sdk.OpenAI = module.OpenAI(
            http_client=http_client(self._config, hold=True), **self._openai_kwargs(kwargs)
        )
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

    def with_fallback(self, fallback: Any) -> FallbackChat:
        """Chat through the gateway, falling back to ``fallback`` (an ``openai.OpenAI``) when the
        gateway is unreachable or failing (connection errors and 5xx; never policy answers)."""
        return FallbackChat(self._cached_openai(), fallback)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> AIlinkClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """Asynchronous client for the AIlink gateway; mirrors :class:`AIlinkClient`."""

    def __init__(
        self,
        api_key: str | None = None,
        gateway_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, gateway_url, **options)
        self._setup(transport)

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
        client._setup(transport)
        return client

    @classmethod
    def admin(
        cls, admin_key: str | None = None, gateway_url: str | None = None, **options: Any
    ) -> AsyncAdminClient:
        """An async management-API client."""
        from ailink._resources import AsyncAdminClient

        return AsyncAdminClient(admin_key=admin_key, gateway_url=gateway_url, **options)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await run_async(self._request_flow(method, path, **kwargs), self._http)

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
        self, approval_id: str, timeout: float | None = None, *, on_pending: OnPending | None = None
    ) -> ApprovalResult:
        return await run_async(self._wait_flow(approval_id, timeout, on_pending), self._http)

    async def withdraw_approval(self, approval_id: str) -> None:
        await run_async(self._simple_flow("DELETE", f"/v1/approvals/{approval_id}"), self._http)

    async def is_healthy(self) -> bool:
        try:
            response = await self._http.get(self._config.gateway_url + "/healthz", timeout=5.0)
        except httpx.HTTPError:
            return False
        return response.status_code < 500

    def openai(self, **kwargs: Any) -> openai_sdk.AsyncOpenAI:
        """The official async openai SDK pointed at the gateway (``max_retries=0``, session headers)."""
        module = _import_openai()
        client: openai_sdk.AsyncOpenAI = module.AsyncOpenAI(
            http_client=async_http_client(self._config, hold=True), **self._openai_kwargs(kwargs)
        )
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

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class FallbackChat:
    """Chat completions through the gateway, with a fallback openai client for outages."""

    def __init__(self, primary: Any, fallback: Any) -> None:
        self.primary = primary
        self.fallback = fallback
        self.used_fallback = False

    def chat(self, model: str, messages: str | Mapping[str, Any] | Sequence[Any], **kwargs: Any) -> Any:
        module = _import_openai()
        outage = (module.APIConnectionError, module.InternalServerError)
        try:
            self.used_fallback = False
            return self.primary.chat.completions.create(model=model, messages=_messages(messages), **kwargs)
        except outage:
            self.used_fallback = True
            return self.fallback.chat.completions.create(model=model, messages=_messages(messages), **kwargs)
