"""The realtime WebSocket relay: virtual-token auth, the mock session, audit, network upstreams."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ailink.testing import EmulatorGateway

SECRET = "sk-upstream-realtime-secret"


def ws_url(gw: EmulatorGateway, model: str = "gpt-4o-realtime-preview") -> str:
    return gw.url.replace("http://", "ws://") + f"/v1/realtime?model={model}"


def recv(ws: ClientConnection) -> dict[str, Any]:
    event = json.loads(ws.recv(timeout=10))
    assert isinstance(event, dict)
    return event


def send(ws: ClientConnection, event: dict[str, Any]) -> None:
    ws.send(json.dumps(event))


def until_done(ws: ClientConnection) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != "response.done":
        events.append(recv(ws))
    return events


def realtime_audit_rows(gw: EmulatorGateway) -> list[dict[str, Any]]:
    """The relay writes its audit row once it has seen the close; wait (bounded) for it."""
    for _ in range(100):
        rows = [r for r in gw.audit() if r["path"] == "/v1/realtime"]
        if rows:
            return rows
        threading.Event().wait(0.05)
    return []


def test_realtime_session_through_the_gateway(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    headers = {"Authorization": f"Bearer {token}", "X-Session-Id": "voice-1", "X-AIlink-Agent-Name": "voice-bot"}
    with connect(ws_url(ailink_gateway), additional_headers=headers) as ws:
        created = recv(ws)
        assert created["type"] == "session.created" and created["session"]["model"] == "gpt-4o-realtime-preview"
        send(ws, {"type": "session.update", "session": {"instructions": "be brief", "modalities": ["text"]}})
        updated = recv(ws)
        assert updated["type"] == "session.updated" and updated["session"]["instructions"] == "be brief"
        send(ws, {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "hello realtime"}]}})
        assert recv(ws)["type"] == "conversation.item.created"
        send(ws, {"type": "response.create"})
        events = until_done(ws)
        assert [e["type"] for e in events][:3] == ["response.created", "response.output_item.added",
                                                   "response.content_part.added"]
        text = "".join(e["delta"] for e in events if e["type"] == "response.text.delta")
        assert text == "Echo: hello realtime"
        done = events[-1]["response"]
        assert done["status"] == "completed" and done["output"][0]["content"][0]["text"] == text
        send(ws, {"type": "no.such.event", "event_id": "evt_1"})
        error = recv(ws)
        assert error["type"] == "error" and error["error"]["code"] == "unknown_event_type"
        assert error["error"]["event_id"] == "evt_1"
        ws.send("{not json")
        assert recv(ws)["error"]["code"] == "invalid_json"
    (row,) = realtime_audit_rows(ailink_gateway)
    assert row["status_code"] == 101 and row["session_id"] == "voice-1" and row["agent_name"] == "voice-bot"
    assert row["model"] == "gpt-4o-realtime-preview" and row["is_streaming"] is True


def test_realtime_scripted_response(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"content": "scripted words here"}, {"status": 500}])
    with connect(ws_url(ailink_gateway), additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        recv(ws)
        send(ws, {"type": "response.create"})
        deltas = [e["delta"] for e in until_done(ws) if e["type"] == "response.text.delta"]
        assert deltas == ["scripted ", "words ", "here"]
        send(ws, {"type": "response.create"})
        assert until_done(ws)[-1]["response"]["status"] == "failed"


@pytest.mark.parametrize("auth", [None, "Bearer ailink_v1_unknown", "Bearer sk-not-a-virtual-token"])
def test_realtime_refuses_bad_tokens_before_the_upgrade(ailink_gateway: EmulatorGateway, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(ailink_gateway), additional_headers=headers)
    response = info.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "token_not_found"


class _Upstream:
    """A local WebSocket server standing in for a provider's realtime endpoint."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.requests.append({"path": ws.request.path, "headers": dict(ws.request.headers)})
        async for message in ws:
            await ws.send(json.dumps({"type": "upstream.echo", "got": json.loads(message)}))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = self._loop.create_future()
            async with serve(self._handle, "127.0.0.1", 0) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                self._ready.set()
                await self._stop

        self._loop.run_until_complete(main())

    def __enter__(self) -> _Upstream:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    with _Upstream() as server:
        yield server


def test_realtime_relays_to_a_network_upstream_with_the_stored_credential(ailink_gateway: EmulatorGateway,
                                                                          upstream: _Upstream) -> None:
    token = ailink_gateway.create_token(upstream=f"http://127.0.0.1:{upstream.port}", credential_secret=SECRET)
    with connect(ws_url(ailink_gateway, "my-model"), additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        send(ws, {"type": "ping", "n": 1})
        assert recv(ws) == {"type": "upstream.echo", "got": {"type": "ping", "n": 1}}
        ws.send(json.dumps({"type": "ping", "n": 2}))
        assert recv(ws)["got"]["n"] == 2
    (request,) = upstream.requests
    assert request["path"] == "/v1/realtime?model=my-model"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert token not in json.dumps(request)


def test_realtime_upstream_down_is_a_502(ailink_gateway: EmulatorGateway, closed_port_url: str) -> None:
    token = ailink_gateway.create_token(upstream=closed_port_url)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(ailink_gateway), additional_headers={"Authorization": f"Bearer {token}"})
    assert info.value.response.status_code == 502
    assert json.loads(info.value.response.body)["error"]["code"] == "upstream_failed"
    payments = ailink_gateway.create_token(upstream="payments")  # a mock upstream without a realtime endpoint
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(ailink_gateway), additional_headers={"Authorization": f"Bearer {payments}"})
    assert info.value.response.status_code == 502
