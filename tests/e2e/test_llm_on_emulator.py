"""LLM calls through the emulator where it matters end to end: a provider stream cut mid-body, an
approval-gated chat, the ``real`` profile (cost in the audit only), the price table's management API
and the token-scoped endpoints' refusals."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

import ailink
from ailink import AIlinkClient, AsyncClient
from ailink.testing import EmulatorGateway

NEEDS_APPROVAL = {
    "name": "gpt-4-needs-approval",
    "rules": [{"when": {"field": "request.body.model", "op": "eq", "value": "gpt-4"},
               "then": {"action": "require_approval", "timeout": "30s"}}],
}


def _chunk(text: str) -> bytes:
    doc = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    data = f"data: {json.dumps(doc)}\n\n".encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class CuttingProvider:
    """A loopback OpenAI-like provider whose chat stream sends two chunks, then resets the connection."""

    def __init__(self) -> None:
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                             + _chunk("Hel") + _chunk("lo"))
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def cutting_provider() -> Iterator[CuttingProvider]:
    provider = CuttingProvider()
    yield provider
    provider.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_provider_stream_cut_mid_body_is_a_connection_error(
    ailink_gateway: EmulatorGateway, cutting_provider: CuttingProvider, kind: str
) -> None:
    token = ailink_gateway.create_token(upstream=cutting_provider.url)
    received: list[str] = []
    retries = ailink.RetryConfig(max_retries=2, backoff_base=0.01)
    if kind == "sync":
        def run() -> None:
            with AIlinkClient(token, ailink_gateway.url, retries=retries) as client:
                for piece in client.chat_stream("gpt-4o-mini", "hi"):
                    received.append(piece)
        with pytest.raises(ailink.APIConnectionError) as info:
            await asyncio.to_thread(run)
    else:
        async with AsyncClient(token, ailink_gateway.url, retries=retries) as client:
            with pytest.raises(ailink.APIConnectionError) as info:
                async for piece in client.chat_stream("gpt-4o-mini", "hi"):
                    received.append(piece)
    assert received == ["Hel", "lo"]
    assert cutting_provider.requests == 1  # never re-sent once text reached the caller
    assert not info.value.ambiguous
    (row,) = ailink_gateway.audit()
    assert row["is_streaming"] and row["estimated_cost_usd"] == "0"  # no usage was reported


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_approval_gated_chat_waits_for_the_decision(ailink_gateway: EmulatorGateway, kind: str) -> None:
    token = ailink_gateway.create_token(upstream="llm", policies=[NEEDS_APPROVAL])
    approver = ailink_gateway.approve_when_pending(count=2)
    pending: list[str] = []
    if kind == "sync":
        def run() -> tuple[str, str]:
            with AIlinkClient(token, ailink_gateway.url) as client:
                reply = client.chat("gpt-4", "may I?", on_pending=lambda p: pending.append(p.approval_id))
                streamed = "".join(client.chat_stream("gpt-4", "and stream?"))
            return reply.content, streamed
        content, streamed = await asyncio.to_thread(run)
    else:
        async with AsyncClient(token, ailink_gateway.url) as client:
            reply = await client.chat("gpt-4", "may I?", on_pending=lambda p: pending.append(p.approval_id))
            content = reply.content
            streamed = "".join([p async for p in client.chat_stream("gpt-4", "and stream?")])
    approver.join()
    assert content == "Echo: may I?" and streamed == "Echo: and stream?" and len(pending) == 1


async def test_the_real_profile_meters_the_audit_but_adds_no_extension(ailink_gateway_real: EmulatorGateway) -> None:
    gateway = ailink_gateway_real
    token = gateway.create_token(upstream="llm")
    async with AsyncClient(token, gateway.url) as client:
        reply = await client.chat("gpt-4o-mini", "hello there", user_id="u-9", org_id="acme")
        with pytest.raises(ailink.UpstreamError):  # no /v1/metrics on the real gateway: proxied, the mock 404s
            await client.metrics("1h")
        models = await client.models()
    assert reply.cost_usd is None and reply.content == "Echo: hello there"
    assert all(m.pricing is None and m.provider is None for m in models)
    chat = next(row for row in gateway.audit() if row["path"] == "/v1/chat/completions")
    expected = (Decimal("0.00015") * 2 + Decimal("0.0006") * 3) / 1000
    assert Decimal(chat["estimated_cost_usd"]) == expected
    assert (chat["user_id"], chat["tenant_id"]) == ("u-9", "acme")


def test_price_table_management(ailink_gateway: EmulatorGateway) -> None:
    admin = ailink_gateway.admin
    table = {entry.model: entry for entry in admin.pricing.list()}
    assert table["gpt-4o"].input_per_1k_usd == 0.0025 and table["gpt-4o"].source == "default"
    assert admin.pricing.get("gpt-4o-2024-08-06").model == "gpt-4o"  # a dated name resolves
    assert admin.pricing.get("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"  # the longest priced prefix
    custom = admin.pricing.set("my-finetune", input_per_1k_usd=0.2, output_per_1k_usd=0.4, provider="in-house")
    assert (custom.source, custom.provider) == ("custom", "in-house")
    assert admin.pricing.get("my-finetune").output_per_1k_usd == 0.4
    admin.pricing.set("gpt-4o", input_per_1k_usd=1, output_per_1k_usd=2)
    assert admin.pricing.get("gpt-4o-2024-08-06").input_per_1k_usd == 1
    assert admin.pricing.delete("gpt-4o").source == "default"  # back to the built-in price
    with pytest.raises(ailink.NotFoundError):
        admin.pricing.delete("gpt-4o")
    with pytest.raises(ailink.NotFoundError):
        admin.pricing.get("unheard-of-model")
    for bad in ({"input_per_1k_usd": -1, "output_per_1k_usd": 1}, {"input_per_1k_usd": "x", "output_per_1k_usd": 1},
                {"input_per_1k_usd": 1}, {"input_per_1k_usd": 1e9, "output_per_1k_usd": 1}):
        answer = httpx.put(f"{ailink_gateway.url}/api/v1/pricing/m", json=bad,
                           headers={"X-Admin-Key": ailink_gateway.admin_key})
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"
    token = ailink_gateway.create_token(upstream="llm")
    answer = httpx.put(f"{ailink_gateway.url}/api/v1/pricing/m", json={"input_per_1k_usd": 0, "output_per_1k_usd": 0},
                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401  # a virtual token never manages prices


def test_the_token_endpoints_refuse_bad_input_and_other_tokens(ailink_gateway: EmulatorGateway) -> None:
    url = ailink_gateway.url
    mine = ailink_gateway.create_token(name="mine", upstream="llm")
    other = ailink_gateway.create_token(name="other", upstream="llm")
    AIlinkClient(other, url).chat("gpt-4o-mini", "someone else's traffic")
    for path in ("/v1/metrics", "/v1/me"):
        assert httpx.get(url + path).status_code == 401
        assert httpx.get(url + path, headers={"Authorization": "Bearer ailink_v1_nope"}).status_code == 401
    for query in ("range=2h", "range=1h&group_by=colour"):
        answer = httpx.get(f"{url}/v1/metrics?{query}", headers={"Authorization": f"Bearer {mine}"})
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"
    with AIlinkClient(mine, url) as client:
        assert client.metrics("30d").totals.requests == 0 and client.me().spend.requests == 0
        assert len(client.metrics("30d").timeseries) in (30, 31)
        assert [row.group for row in client.metrics("24h", group_by="model").breakdown] == []
