"""Realtime API sessions: a WebSocket to ``{gateway}/v1/realtime?model=...`` with the virtual token.

Needs the ``websockets`` package (``pip install 'ailink-sdk[realtime]'``), imported on first use.
Events are dicts, sent and received as JSON text frames. A handshake the gateway refuses raises
the same typed error an HTTP call would (``AuthenticationError``, ``PolicyDeniedError``, ...).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ailink._config import ClientConfig
from ailink._errors import AIlinkError, APIConnectionError, MalformedResponseError, error_from_response
from ailink._tracing import current_trace, trace_headers

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection as AsyncConnection
    from websockets.sync.client import ClientConnection as SyncConnection

__all__ = [
    "DEFAULT_REALTIME_MODEL",
    "AsyncRealtimeConnect",
    "AsyncRealtimeResource",
    "AsyncRealtimeSession",
    "RealtimeResource",
    "RealtimeSession",
]

DEFAULT_REALTIME_MODEL = "gpt-4o-realtime-preview-2024-12-17"


def _websockets() -> Any:
    try:
        import websockets
        import websockets.asyncio.client
        import websockets.sync.client
    except ImportError as exc:
        raise ImportError("client.realtime needs the websockets package: pip install 'ailink-sdk[realtime]'") from exc
    return websockets


def _target(
    config: ClientConfig, model: str, additional_headers: Mapping[str, str] | None
) -> tuple[str, dict[str, str]]:
    """The WebSocket URL and the handshake headers (token, session headers, caller's headers)."""
    base = config.gateway_url
    scheme, rest = base.split("://", 1) if "://" in base else ("http", base)
    url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/v1/realtime?model={quote(model, safe='')}"
    headers = {**config.auth_headers(), **config.default_headers}
    headers.update(trace_headers(current_trace(), agent_name=config.agent_name))
    headers.update(additional_headers or {})
    return url, headers


def _handshake_error(exc: BaseException, url: str) -> AIlinkError:
    """The typed error for a WebSocket that could not be opened."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        raw_headers = getattr(response, "headers", None)
        headers = list(raw_headers.raw_items()) if raw_headers is not None else []
        answer = httpx.Response(status, headers=headers, content=bytes(getattr(response, "body", b"") or b""))
        answer.read()
        return error_from_response(answer)
    where = url.split("?", 1)[0]
    return APIConnectionError(f"Could not open the realtime WebSocket at {where}: {type(exc).__name__}")


def _event(message: str | bytes) -> dict[str, Any]:
    try:
        event = json.loads(message)
    except ValueError as exc:
        raise MalformedResponseError("The realtime gateway sent a frame that is not JSON") from exc
    if not isinstance(event, dict):
        raise MalformedResponseError("The realtime gateway sent a JSON frame that is not an object")
    return event


class RealtimeSession:
    """A blocking realtime session: ``send(event)``, ``recv() -> event``, iteration, ``close()``."""

    def __init__(self, connection: SyncConnection, model: str) -> None:
        self._connection = connection
        self.model = model

    def __repr__(self) -> str:
        return f"RealtimeSession(model={self.model!r})"

    def send(self, event: Mapping[str, Any]) -> None:
        """Send one event (a dict, sent as JSON)."""
        self._connection.send(json.dumps(dict(event)))

    def recv(self) -> dict[str, Any]:
        """The next event."""
        return _event(self._connection.recv())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Events until the gateway closes the session."""
        closed = _websockets().exceptions.ConnectionClosed
        while True:
            try:
                yield self.recv()
            except closed:
                return

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> RealtimeSession:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncRealtimeSession:
    """An asyncio realtime session: ``await send(event)``, ``await recv()``, ``async for``, ``await close()``."""

    def __init__(self, connection: AsyncConnection, model: str) -> None:
        self._connection = connection
        self.model = model

    def __repr__(self) -> str:
        return f"AsyncRealtimeSession(model={self.model!r})"

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send one event (a dict, sent as JSON)."""
        await self._connection.send(json.dumps(dict(event)))

    async def recv(self) -> dict[str, Any]:
        """The next event."""
        return _event(await self._connection.recv())

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        """Events until the gateway closes the session."""
        closed = _websockets().exceptions.ConnectionClosed
        while True:
            try:
                yield await self.recv()
            except closed:
                return

    async def close(self) -> None:
        await self._connection.close()

    async def __aenter__(self) -> AsyncRealtimeSession:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


class AsyncRealtimeConnect:
    """An asyncio session about to open: ``async with`` it (closed at the end) or ``await`` it."""

    def __init__(self, config: ClientConfig, model: str, additional_headers: Mapping[str, str] | None) -> None:
        self._config = config
        self._model = model
        self._additional_headers = dict(additional_headers or {})
        self._session: AsyncRealtimeSession | None = None

    async def _open(self) -> AsyncRealtimeSession:
        websockets = _websockets()
        url, headers = _target(self._config, self._model, self._additional_headers)
        try:
            connection = await websockets.asyncio.client.connect(
                url, additional_headers=headers, open_timeout=self._config.timeout
            )
        except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
            raise _handshake_error(exc, url) from None
        return AsyncRealtimeSession(connection, self._model)

    def __await__(self) -> Generator[Any, None, AsyncRealtimeSession]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncRealtimeSession:
        self._session = await self._open()
        return self._session

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class RealtimeResource:
    """``client.realtime``: ``connect(model)`` opens a blocking session; ``client.realtime(model)``
    gives an asyncio one (``async with client.realtime(model) as ws``)."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config

    def __repr__(self) -> str:
        return "<RealtimeResource>"

    def connect(
        self, model: str = DEFAULT_REALTIME_MODEL, additional_headers: Mapping[str, str] | None = None
    ) -> RealtimeSession:
        """Open a blocking session (also a context manager)."""
        websockets = _websockets()
        url, headers = _target(self._config, model, additional_headers)
        try:
            connection = websockets.sync.client.connect(
                url, additional_headers=headers, open_timeout=self._config.timeout
            )
        except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
            raise _handshake_error(exc, url) from None
        return RealtimeSession(connection, model)

    def __call__(
        self, model: str = DEFAULT_REALTIME_MODEL, additional_headers: Mapping[str, str] | None = None
    ) -> AsyncRealtimeConnect:
        """An asyncio session to ``async with`` (or ``await``)."""
        return AsyncRealtimeConnect(self._config, model, additional_headers)


class AsyncRealtimeResource:
    """``client.realtime`` of an :class:`~ailink.AsyncClient`: ``async with client.realtime.connect(model)``
    (or ``client.realtime(model)``) opens a session."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config

    def __repr__(self) -> str:
        return "<AsyncRealtimeResource>"

    def connect(
        self, model: str = DEFAULT_REALTIME_MODEL, additional_headers: Mapping[str, str] | None = None
    ) -> AsyncRealtimeConnect:
        """An asyncio session to ``async with`` (or ``await``)."""
        return AsyncRealtimeConnect(self._config, model, additional_headers)

    __call__ = connect
