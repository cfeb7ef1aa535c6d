"""Realtime sessions over a loopback WebSocket server: handshake headers, JSON events, typed refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.server import Server, ServerConnection, serve

import ailink
from ailink.resources.realtime import AsyncRealtimeSession, RealtimeSession

from .helpers import TOKEN


def _handshake(connection: ServerConnection, request: Any) -> Any:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        body = json.dumps({"error": {"code": "token_not_found", "message": "Invalid token", "type": "x"}})
        response = connection.respond(401, body)
        response.headers["Content-Type"] = "application/json"
        return response
    return None


def _echo(connection: ServerConnection) -> None:
    request = connection.request
    assert request is not None
    handshake = {"path": request.path, "authorization": request.headers.get("Authorization"),
                 "session": request.headers.get("X-Session-Id"), "agent": request.headers.get("X-AIlink-Agent-Name"),
                 "extra": request.headers.get("X-Extra")}
    connection.send(json.dumps({"type": "session.created", "handshake": handshake}))
    for message in connection:
        event = json.loads(message)
        if event.get("type") == "bye":
            connection.close()
            return
        connection.send(json.dumps({"type": "echo", "received": event}))


@pytest.fixture
def realtime_gateway() -> Iterator[str]:
    server: Server = serve(_echo, "127.0.0.1", 0, process_request=_handshake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    finally:
        server.shutdown()


def test_sync_session_sends_and_receives_json_events(realtime_gateway: str) -> None:
    client = ailink.AIlinkClient(TOKEN, realtime_gateway, agent_name="voice-bot")
    with client.trace("call-1"), client.realtime.connect("gpt-4o-realtime-preview",
                                                          additional_headers={"X-Extra": "1"}) as session:
        assert isinstance(session, RealtimeSession)
        created = session.recv()
        session.send({"type": "session.update", "session": {"modalities": ["text"]}})
        echoed = session.recv()
        session.send({"type": "bye"})
        rest = list(session)  # ends when the gateway closes the session
    handshake = created["handshake"]
    assert handshake["path"] == "/v1/realtime?model=gpt-4o-realtime-preview"
    assert handshake["authorization"] == f"Bearer {TOKEN}" and handshake["agent"] == "voice-bot"
    assert handshake["session"] == "call-1" and handshake["extra"] == "1"
    assert echoed == {"type": "echo", "received": {"type": "session.update", "session": {"modalities": ["text"]}}}
    assert rest == []


async def test_async_sessions_in_both_spellings(realtime_gateway: str) -> None:
    for client in (ailink.AIlinkClient(TOKEN, realtime_gateway), ailink.AsyncClient(TOKEN, realtime_gateway)):
        async with client.realtime("gpt-4o-realtime-preview") as ws:  # seed 001's spelling
            assert isinstance(ws, AsyncRealtimeSession)
            assert (await ws.recv())["type"] == "session.created"
            await ws.send({"type": "response.create"})
            assert await ws.recv() == {"type": "echo", "received": {"type": "response.create"}}
    session = await ailink.AsyncClient(TOKEN, realtime_gateway).realtime.connect()  # awaited, closed by hand
    try:
        created = await session.recv()
        assert created["handshake"]["path"].endswith("model=gpt-4o-realtime-preview-2024-12-17")
        await session.send({"type": "bye"})
        assert [event async for event in session] == []
    finally:
        await session.close()


async def test_refused_handshake_is_a_typed_error(realtime_gateway: str) -> None:
    bad = "ailink_v1_PLANTEDwrongTOKEN0000000000"
    with pytest.raises(ailink.AuthenticationError) as refused:
        ailink.AIlinkClient(bad, realtime_gateway).realtime.connect()
    assert refused.value.status_code == 401 and bad not in str(refused.value)
    with pytest.raises(ailink.AuthenticationError):
        async with ailink.AsyncClient(bad, realtime_gateway).realtime.connect():
            pass


def test_unreachable_gateway_is_a_connection_error() -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ailink.APIConnectionError, match="realtime"):
        ailink.AIlinkClient(TOKEN, f"http://127.0.0.1:{port}", timeout=2).realtime.connect()
