"""The httpx transport that adds session, span, request-id, agent and idempotency headers.

Every client this toolkit builds (the core clients, ``client.openai()``, the framework LLM
classes) sends through :class:`TracingTransport`, so each request carries the current
session context without any call site having to remember it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx

from ailink._config import PREPARED_EXTENSION, ClientConfig
from ailink._flow import LANE_EXTENSION, POLL_LANE, WAIT_LANE
from ailink._headers import Identity, missing_protocol_headers
from ailink._tracing import TraceContext, current_trace
from ailink._version import USER_AGENT

ContextProvider = Callable[[], "TraceContext | None"]

#: Connections per lane (see :data:`~ailink._flow.LANE_EXTENSION`): the approval waits' lane holds the
#: watch's one stream and short requests, on at most four connections.
#: Every connection may stay open for the next request: requests queue for a slot before the pool
#: (see :class:`_GatedTransport`), so the pool cannot see that a connection it frees is wanted.
_LANE_LIMITS: dict[str | None, httpx.Limits] = {
    None: httpx.Limits(max_connections=100, max_keepalive_connections=100),
    WAIT_LANE: httpx.Limits(max_connections=4, max_keepalive_connections=4),
    POLL_LANE: httpx.Limits(max_connections=100, max_keepalive_connections=100),
}


@functools.lru_cache(maxsize=8)
def _cached_ssl_context(verify: bool, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify)


def ssl_context(verify: bool = True) -> ssl.SSLContext:
    """The TLS settings of this toolkit's connections, built once per process (and per
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``): loading the CA bundle costs tens of milliseconds, which
    every new client would otherwise pay."""
    return _cached_ssl_context(verify, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def _pool_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    value = timeout.get("pool") if isinstance(timeout, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


class _ReleasingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An answer's body that gives its connection slot back when it is closed (once)."""

    def __init__(self, stream: Any, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    def _give_back(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._give_back()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._give_back()


#: Connections per httpcore pool: a pool checks each of its connections on every request it starts or
#: ends (an idle one with a system call, to see whether the server closed it), so after a burst has
#: opened many, every later call pays for them; a lane of 100 is twenty pools of 5.
SHARD_CONNECTIONS = 5


class _Shards:
    """Which of a lane's pools a request takes: the least busy (the first of equals, so a quiet
    client keeps reusing the same connections). With at most ``limit`` requests in flight, the least
    busy pool always has a free connection."""

    def __init__(self, limits: httpx.Limits) -> None:
        total = limits.max_connections or 1
        self.count = max(1, -(-total // SHARD_CONNECTIONS))
        self.limit = total
        self.limits = httpx.Limits(max_connections=-(-total // self.count),
                                   max_keepalive_connections=-(-total // self.count))
        self.busy = [0] * self.count

    def take(self) -> int:
        index = min(range(self.count), key=self.busy.__getitem__)
        self.busy[index] += 1
        return index

    def give_back(self, index: int) -> None:
        self.busy[index] -= 1


class _GatedTransport(httpx.BaseTransport):
    """A lane's connection pools; its requests queue for a slot here, in order, before they enter one.

    httpcore's pool does work proportional to its queue on every request it starts or ends, so ten
    thousand requests queued inside it cost seconds of CPU; queued here they cost nothing until their
    turn. The wait honours the request's pool timeout.
    """

    def __init__(self, limits: httpx.Limits, verify: bool) -> None:
        self._shards = _Shards(limits)
        self._pools = [httpx.HTTPTransport(verify=ssl_context(verify), limits=self._shards.limits)
                       for _ in range(self._shards.count)]
        self._slots = threading.BoundedSemaphore(self._shards.limit)
        self._lock = threading.Lock()

    def _release(self, index: int) -> None:
        with self._lock:
            self._shards.give_back(index)
        self._slots.release()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self._slots.acquire(timeout=_pool_timeout(request)):  # None: as long as it takes
            raise httpx.PoolTimeout("no free connection within the pool timeout", request=request)
        with self._lock:
            index = self._shards.take()
        try:
            response = self._pools[index].handle_request(request)
        except BaseException:
            self._release(index)
            raise
        response.stream = _ReleasingStream(response.stream, functools.partial(self._release, index))
        return response

    def close(self) -> None:
        for pool in self._pools:
            pool.close()


class _AsyncGatedTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`_GatedTransport` (one per event loop)."""

    def __init__(self, limits: httpx.Limits, verify: bool) -> None:
        self._shards = _Shards(limits)
        self._pools = [httpx.AsyncHTTPTransport(verify=ssl_context(verify), limits=self._shards.limits)
                       for _ in range(self._shards.count)]
        self._slots = asyncio.BoundedSemaphore(self._shards.limit)

    def _release(self, index: int) -> None:
        self._shards.give_back(index)
        self._slots.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), _pool_timeout(request))
            except asyncio.TimeoutError:
                raise httpx.PoolTimeout("no free connection within the pool timeout", request=request) from None
        else:
            await self._slots.acquire()
        index = self._shards.take()
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._release(index)
            raise
        response.stream = _ReleasingStream(response.stream, functools.partial(self._release, index))
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def lane_of(request: httpx.Request) -> str | None:
    """The lane ``request`` is sent on (``None``: the calls' lane)."""
    lane = request.extensions.get(LANE_EXTENSION)
    return lane if lane in _LANE_LIMITS else None


class _DiscardedCookies(httpx.Cookies):
    """A cookie jar that stores none of the cookies responses set."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _KeepsNoCookies:
    """For the httpx clients this toolkit builds: cookies that responses set are not kept.

    One gateway host fronts many upstream APIs, so a cookie set by one upstream's answer would
    otherwise go out with every later call, to every upstream. (Not storing them also saves
    httpx's per-response cookie parsing.) Cookies set explicitly on the client are still sent.
    """

    _jar: httpx.Cookies
    headers: httpx.Headers

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jar = _DiscardedCookies(kwargs.get("cookies"))
        if "user-agent" not in {name.lower() for name in (kwargs.get("headers") or {})}:
            self.headers["User-Agent"] = USER_AGENT

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: httpx.Cookies | dict[str, str] | None) -> None:
        self._jar = _DiscardedCookies(cookies)


class GatewayHTTPClient(_KeepsNoCookies, httpx.Client):
    """The ``httpx.Client`` every sync client here sends with: it keeps no response cookies and
    says ``User-Agent: ailink-python/<version>``."""


class AsyncGatewayHTTPClient(_KeepsNoCookies, httpx.AsyncClient):
    """The ``httpx.AsyncClient`` every async client here sends with (see :class:`GatewayHTTPClient`)."""


class TracingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps a real transport and adds the protocol §2 headers from the current trace context.

    ``context_provider`` is consulted when no :func:`ailink.trace` block is active: framework
    integrations use it to read their own run context (a LangChain run, a CrewAI execution, a
    LlamaIndex span). Headers the caller set explicitly are never overwritten.

    Without a transport given, it keeps one connection pool per lane (:data:`LANE_EXTENSION`):
    calls, approval waits, per-approval long polls. A transport given (a mock in tests) serves every lane.
    """

    def __init__(
        self,
        *,
        sync_transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        agent_name: str | None = None,
        context_provider: ContextProvider | None = None,
        add_idempotency_keys: bool = True,
        verify: bool = True,
        identity: Identity | None = None,
    ) -> None:
        self._verify = verify
        self._sync = sync_transport
        self._async = async_transport
        self._sync_lanes: dict[str | None, httpx.BaseTransport] = {}
        # httpx connections belong to the event loop that opened them: without a transport given,
        # keep one set of pools per running loop, so a client may serve several ``asyncio.run`` calls.
        self._async_by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str | None, httpx.AsyncBaseTransport]
        ] = weakref.WeakKeyDictionary()
        self.agent_name = agent_name
        self.context_provider = context_provider
        self.add_idempotency_keys = add_idempotency_keys
        #: The client-wide user, app and organisation (``X-User-Id``, ``X-Properties``, ``X-Tenant-Id``).
        self.identity = identity

    def _context(self) -> TraceContext | None:
        context = current_trace()
        if context is None and self.context_provider is not None:
            context = self.context_provider()
        return context

    def prepare(self, request: httpx.Request) -> None:
        """Add the headers to ``request`` (public so tests and custom transports can reuse it)."""
        if request.extensions.get(PREPARED_EXTENSION):
            return  # built by ClientConfig.build_request, which already added every header
        headers = request.headers
        present = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers.raw}
        missing = missing_protocol_headers(
            present,
            request.method,
            context=self._context(),
            agent_name=self.agent_name,
            new_key=self.add_idempotency_keys,
            default_identity=self.identity,
        )
        for name, value in missing.items():
            headers[name] = value

    def _sync_transport(self, lane: str | None) -> httpx.BaseTransport:
        if self._sync is not None:
            return self._sync
        transport = self._sync_lanes.get(lane)
        if transport is None:
            transport = self._sync_lanes.setdefault(lane, _GatedTransport(_LANE_LIMITS[lane], self._verify))
        return transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._sync_transport(lane_of(request))
        self.prepare(request)
        return transport.handle_request(request)

    def _loop_transport(self, lane: str | None) -> httpx.AsyncBaseTransport:
        if self._async is not None:
            return self._async
        loop = asyncio.get_running_loop()
        lanes = self._async_by_loop.get(loop)
        if lanes is None:
            lanes = self._async_by_loop[loop] = {}
        transport = lanes.get(lane)
        if transport is None:
            transport = lanes[lane] = _AsyncGatedTransport(_LANE_LIMITS[lane], self._verify)
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._loop_transport(lane_of(request))
        self.prepare(request)
        return await transport.handle_async_request(request)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
        for transport in list(self._sync_lanes.values()):
            transport.close()
        self._sync_lanes.clear()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        # the pools of the running loop; pools of finished loops go with their loop
        for transport in (self._async_by_loop.pop(asyncio.get_running_loop(), None) or {}).values():
            await transport.aclose()


def http_client(
    config: ClientConfig,
    *,
    context_provider: ContextProvider | None = None,
    transport: httpx.BaseTransport | None = None,
    hold: bool = False,
    headers: Mapping[str, str] | None = None,
) -> httpx.Client:
    """A sync httpx client whose requests carry the session headers (for SDKs such as openai).

    ``hold=True`` sets the read timeout above the approval timeout, for calls the gateway may
    hold while a human decides.
    """
    return GatewayHTTPClient(
        transport=TracingTransport(
            sync_transport=transport,
            agent_name=config.agent_name,
            context_provider=context_provider,
            verify=config.verify_ssl,
            identity=config.identity,
        ),
        timeout=config.http_timeout(hold=hold),
        headers=dict(headers or {}),
    )


def async_http_client(
    config: ClientConfig,
    *,
    context_provider: ContextProvider | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    hold: bool = False,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """The async twin of :func:`http_client`."""
    return AsyncGatewayHTTPClient(
        transport=TracingTransport(
            async_transport=transport,
            agent_name=config.agent_name,
            context_provider=context_provider,
            verify=config.verify_ssl,
            identity=config.identity,
        ),
        timeout=config.http_timeout(hold=hold),
        headers=dict(headers or {}),
    )
