"""Talking to upstreams: the in-process mocks or the network, credentials, and what a failure means.

The one question every failure answers is *was the request forwarded?* A connection that was
never established (refused, connect timeout, no pool slot, a URL or header that cannot be sent)
was not; anything after the first byte may have reached the upstream (write or read errors, read
timeouts, a reset or a protocol error mid-answer, a cut body) and is ambiguous.
"""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.types import ASGIApp

from ailink._transport import ssl_context

from ._mock_llm import TOKEN_HEADER

MOCK_HOSTS = ("payments.mock", "llm.mock")
# Request headers copied to the upstream (plus x-mock-* test hooks and, per profile, the key).
FORWARD_HEADERS = ("content-type", "accept", "user-agent", "traceparent", "tracestate")
DROP_RESPONSE_HEADERS = {
    "content-length", "transfer-encoding", "connection", "server", "x-request-id", "x-powered-by",
    "content-encoding", "keep-alive",
}
#: Statuses the real gateway's upstream retries repeat (§1.10 of the wire contract).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_DELAY = 10.0
_NOT_FORWARDED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
                  httpx.LocalProtocolError, httpx.InvalidURL)


class UpstreamFailure(Exception):
    """No complete upstream answer. ``forwarded`` False: nothing reached the upstream."""

    def __init__(self, message: str, *, forwarded: bool, timed_out: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.forwarded = forwarded
        self.timed_out = timed_out


def classify(exc: Exception, *, sending: bool) -> UpstreamFailure:
    """The :class:`UpstreamFailure` for an exception raised while sending (or, if not, reading)."""
    if sending and isinstance(exc, _NOT_FORWARDED):
        return UpstreamFailure(f"Upstream unreachable: {type(exc).__name__}", forwarded=False,
                               timed_out=isinstance(exc, httpx.TimeoutException))
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamFailure("Upstream request timed out", forwarded=True, timed_out=True)
    return UpstreamFailure(f"Upstream request failed: {type(exc).__name__}", forwarded=True)


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


def response_headers(resp: httpx.Response) -> list[list[str]]:
    return [[k, v] for k, v in resp.headers.multi_items() if k.lower() not in DROP_RESPONSE_HEADERS]


def upstream_request_headers(headers: dict[str, str], *, credential: dict[str, Any] | None, token_ref: str,
                             url: str, idempotency_key: str | None, set_headers: dict[str, str] | None = None,
                             remove_headers: list[str] | None = None) -> tuple[list[tuple[bytes, bytes]], str]:
    """The headers sent upstream (as raw bytes: values pass through unchanged) and the final URL.

    ``headers`` are the incoming request's (lower-case names, the virtual token removed). A stored
    credential wins over bring-your-own-key (``X-Real-Authorization``, then ``X-Upstream-Authorization``).
    ``set_headers``/``remove_headers`` are a policy ``transform``'s (lower-case names; never credentials).
    """
    out: dict[str, str] = {k: v for k, v in headers.items() if k in FORWARD_HEADERS or k.startswith("x-mock-")}
    for name in remove_headers or ():
        out.pop(name, None)
    out.update(set_headers or {})
    if idempotency_key is not None:
        out["idempotency-key"] = idempotency_key
    if credential is not None and credential["is_active"]:
        mode, header, secret = credential["injection_mode"], credential["injection_header"], credential["secret"]
        if mode == "bearer":
            out[header.lower()] = f"Bearer {secret}"
        elif mode == "basic":
            out[header.lower()] = "Basic " + base64.b64encode(secret.encode()).decode()
        elif mode == "header":
            out[header.lower()] = secret
        elif mode == "query":
            url += ("&" if "?" in url else "?") + str(httpx.QueryParams({header: secret}))
    elif headers.get("x-real-authorization"):
        out["authorization"] = headers["x-real-authorization"]
    elif headers.get("x-upstream-authorization"):
        out["authorization"] = headers["x-upstream-authorization"]
    if urlsplit(url).hostname in MOCK_HOSTS:
        out[TOKEN_HEADER] = token_ref
    raw = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in out.items()]
    return raw, url


class Upstream:
    """The emulator's HTTP client for upstream calls (one per app, created on first use)."""

    def __init__(self, mocks: dict[str, ASGIApp], *, timeout: float, retry_backoff: float = 0.5) -> None:
        self._mocks = mocks
        self._timeout = timeout
        self._retry_backoff = retry_backoff
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            mocks: dict[str, httpx.AsyncBaseTransport] = {
                host: httpx.ASGITransport(app=app) for host, app in self._mocks.items()
            }
            self._client = httpx.AsyncClient(
                transport=_RoutingTransport(mocks, httpx.AsyncHTTPTransport(verify=ssl_context())),
                timeout=httpx.Timeout(self._timeout, connect=min(5.0, self._timeout)),
                follow_redirects=False,
            )
            del self._client.headers["user-agent"]  # the caller's User-Agent is forwarded, or none
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def open(self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes) -> httpx.Response:
        """Send the request and read the answer's head; the body is left to :meth:`read` or streaming."""
        client = self.client()
        try:
            request = client.build_request(method, url, headers=headers, content=body or None)
        except Exception as exc:  # an URL or header httpx refuses to build: nothing was sent
            raise UpstreamFailure(f"Upstream request could not be built: {type(exc).__name__}",
                                  forwarded=False) from None
        try:
            return await client.send(request, stream=True)
        except Exception as exc:  # httpx errors, and whatever an in-process mock raises
            raise classify(exc, sending=True) from None

    async def read(self, resp: httpx.Response) -> bytes:
        """The whole answer body (then the answer is closed); a cut body is an ambiguous failure."""
        try:
            return await resp.aread()
        except Exception as exc:
            raise classify(exc, sending=False) from None
        finally:
            await resp.aclose()

    async def open_with_retries(self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes,
                                *, retries: int) -> httpx.Response:
        """:meth:`open`, repeated up to ``retries`` times on network errors and :data:`RETRY_STATUSES`.

        This is the real gateway's behaviour for requests it may retry (§1.10): the upstream cannot
        tell the attempts apart, which is exactly what a test of the real profile must see.
        """
        attempt = 0
        while True:
            hint: float | None = None
            try:
                resp = await self.open(method, url, headers, body)
            except UpstreamFailure:
                if attempt >= retries:
                    raise
            else:
                if resp.status_code not in RETRY_STATUSES or attempt >= retries:
                    return resp
                hint = _retry_after(resp.headers.get("retry-after"))
                try:
                    await self.read(resp)
                except UpstreamFailure:
                    pass
            attempt += 1
            await asyncio.sleep(self._delay(attempt, hint))

    def _delay(self, attempt: int, hint: float | None) -> float:
        backoff = min(MAX_RETRY_DELAY, self._retry_backoff * 2 ** (attempt - 1))
        backoff += random.uniform(0, 0.4 * self._retry_backoff)
        return float(max(backoff, min(hint, MAX_RETRY_DELAY))) if hint is not None else backoff


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


__all__ = ["MOCK_HOSTS", "Upstream", "UpstreamFailure", "classify", "response_headers",
           "upstream_request_headers"]
