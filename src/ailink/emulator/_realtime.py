"""The gateway's realtime relay: ``GET /v1/realtime?model=...`` as a WebSocket, like the real gateway.

The virtual token is checked before the upgrade (``Authorization: Bearer ailink_v1_...``; a bad one is
refused with the HTTP 401 ``token_not_found`` JSON error, or close code 1008 where the server cannot
send a denial response). The upstream is the token's ``upstream_url`` with ``http``→``ws`` plus the
request path and query (the model defaults to the real gateway's); the token's credential (or
``X-Real-Authorization``) is sent as its ``Authorization``. The built-in mock upstreams are reached in
process; any other through the ``websockets`` package. Frames are relayed both ways until one side
closes; one audit row per session (``status_code`` 101, ``is_streaming``). Policies are not evaluated
on realtime sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Message
from starlette.websockets import WebSocket

from ailink._secrets import mask

from ._app import Emulator, GatewayError, TraceContext, error_response, new_request_id
from ._mock_realtime import DEFAULT_MODEL

Frame = str | bytes


class Peer(Protocol):
    async def send(self, data: Frame) -> None: ...
    async def recv(self) -> Frame | None: ...  # None: closed
    async def close(self) -> None: ...


class InProcessWebSocket:
    """A WebSocket connection to an ASGI app in this process (the mock upstreams)."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self._app = app
        self._scope = scope
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> bool:
        async def run() -> None:
            await self._app(self._scope, self._to_app.get, self._from_app.put)

        self._task = asyncio.ensure_future(run())
        await self._to_app.put({"type": "websocket.connect"})
        first = await self._next()
        return first is not None and first["type"] == "websocket.accept"

    async def _next(self) -> Message | None:
        assert self._task is not None
        getter = asyncio.ensure_future(self._from_app.get())
        try:
            await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        return getter.result() if not getter.cancelled() else None

    async def send(self, data: Frame) -> None:
        await self._to_app.put({"type": "websocket.receive", **({"text": data} if isinstance(data, str)
                                                                 else {"bytes": data})})

    async def recv(self) -> Frame | None:
        message = await self._next()
        if message is None or message["type"] != "websocket.send":
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    async def close(self) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 5)


class NetworkWebSocket:
    """A WebSocket connection to a network upstream (the ``websockets`` package)."""

    def __init__(self, connection: Any) -> None:
        self._conn = connection

    @classmethod
    async def open(cls, url: str, headers: dict[str, str], timeout: float) -> NetworkWebSocket:
        from websockets.asyncio.client import connect

        return cls(await connect(url, additional_headers=headers, open_timeout=timeout, max_size=2**24))

    async def send(self, data: Frame) -> None:
        await self._conn.send(data)

    async def recv(self) -> Frame | None:
        from websockets.exceptions import ConnectionClosed

        try:
            data: Frame = await self._conn.recv()
        except ConnectionClosed:
            return None
        return data

    async def close(self) -> None:
        await self._conn.close()


class ClientWebSocket:
    """The agent's side of the relay."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send(self, data: Frame) -> None:
        if isinstance(data, str):
            await self._ws.send_text(data)
        else:
            await self._ws.send_bytes(data)

    async def recv(self) -> Frame | None:
        message = await self._ws.receive()
        if message["type"] != "websocket.receive":
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()


async def relay(a: Peer, b: Peer) -> None:
    """Copy frames both ways until either side closes, then close both."""

    async def pump(source: Peer, sink: Peer) -> None:
        while (data := await source.recv()) is not None:
            await sink.send(data)

    tasks = {asyncio.ensure_future(pump(a, b)), asyncio.ensure_future(pump(b, a))}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for peer in (a, b):
            with contextlib.suppress(Exception):
                await peer.close()


async def _deny(websocket: WebSocket, request_id: str, exc: GatewayError) -> None:
    try:
        await websocket.send_denial_response(error_response(request_id, exc))
    except RuntimeError:  # the server cannot send an HTTP answer to an upgrade request
        await websocket.close(code=1008, reason=exc.code)


def _upstream_headers(emu: Emulator, token: dict[str, Any], websocket: WebSocket) -> dict[str, str]:
    headers: dict[str, str] = {}
    cred = emu.store.get_credential(token["credential_id"]) if token["credential_id"] else None
    if cred is not None and cred["is_active"] and cred["injection_mode"] == "bearer":
        headers[cred["injection_header"]] = f"Bearer {cred['secret']}"
    elif cred is not None and cred["is_active"] and cred["injection_mode"] == "header":
        headers[cred["injection_header"]] = cred["secret"]
    elif websocket.headers.get("x-real-authorization"):
        headers["Authorization"] = websocket.headers["x-real-authorization"]
    if websocket.headers.get("openai-beta"):
        headers["OpenAI-Beta"] = websocket.headers["openai-beta"]
    return headers


def realtime_route(emu: Emulator) -> WebSocketRoute:
    async def realtime(websocket: WebSocket) -> None:
        started = time.monotonic()
        rid = new_request_id()
        try:
            token = emu.auth_token(websocket)  # type: ignore[arg-type]  # reads only the headers
        except GatewayError as exc:
            await _deny(websocket, rid, exc)
            return
        try:
            ctx = TraceContext.from_headers(websocket.headers, emu)
        except GatewayError as exc:
            await _deny(websocket, rid, exc)
            return
        query = dict(websocket.query_params)
        query.setdefault("model", DEFAULT_MODEL)
        base = urlsplit(token["upstream_url"])
        scheme = "wss" if base.scheme == "https" else "ws"
        path = base.path.rstrip("/") + websocket.url.path
        url = f"{scheme}://{base.netloc}{path}?{urlencode(query)}"
        headers = _upstream_headers(emu, token, websocket)
        upstream: Peer
        try:
            mock_app = {"llm.mock": emu.llm.app, "payments.mock": emu.payments.app}.get(base.hostname or "")
            if mock_app is not None:
                in_process = InProcessWebSocket(mock_app, {
                    "type": "websocket", "asgi": {"version": "3.0"}, "scheme": scheme, "path": path,
                    "raw_path": path.encode(), "query_string": urlencode(query).encode(), "root_path": "",
                    "headers": [(b"host", base.netloc.encode()), (emu.llm.token_header.encode(), token["ref"].encode()),
                                *((k.lower().encode(), v.encode()) for k, v in headers.items())],
                    "subprotocols": [], "client": ("127.0.0.1", 0), "server": (base.hostname, 80), "extensions": {},
                })
                if not await in_process.connect():
                    await in_process.close()
                    raise GatewayError(502, "upstream_failed", "The upstream refused the WebSocket")
                upstream = in_process
            else:
                upstream = await NetworkWebSocket.open(url, headers, min(10.0, emu.upstream_timeout))
        except GatewayError as exc:
            await _deny(websocket, rid, exc)
            return
        except Exception as exc:  # connection refused, handshake rejected, no websockets package
            await _deny(websocket, rid, GatewayError(502, "upstream_failed",
                                                     f"Upstream WebSocket failed: {type(exc).__name__}"))
            return
        await websocket.accept(headers=[(b"x-request-id", rid.encode())])
        try:
            await relay(ClientWebSocket(websocket), upstream)
        finally:
            emu.store.add_audit({
                **ctx.audit_fields(), "token_ref": token["ref"], "token_prefix": mask(token["token"]),
                "request_id": rid, "method": "GET", "path": websocket.url.path,
                "upstream_url": f"{scheme}://{base.netloc}{path}", "status_code": 101,
                "latency_ms": int((time.monotonic() - started) * 1000), "policy_result": "allowed",
                "is_streaming": 1, "model": query["model"],
            })

    return WebSocketRoute("/v1/realtime", realtime)


__all__ = ["InProcessWebSocket", "realtime_route", "relay"]
