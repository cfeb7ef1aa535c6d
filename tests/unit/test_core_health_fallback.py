"""Health pollers (thread and asyncio task) and the chat fallback for gateway outages."""

from __future__ import annotations

import asyncio
import threading

import httpx
import openai
import pytest
import respx

import ailink

GATEWAY = "http://gateway.test"
TOKEN = "ailink_v1_health_token_0000"
COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "from fallback"}}],
}


def _gateway(statuses: list[int]) -> tuple[httpx.MockTransport, threading.Event]:
    """A gateway whose /healthz answers ``statuses`` in turn (then the last one); ``seen`` is set
    once every status was answered."""
    seen = threading.Event()
    answered: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/healthz"
        status = statuses[min(len(answered), len(statuses) - 1)]
        answered.append(status)
        if len(answered) >= len(statuses):
            seen.set()
        return httpx.Response(status, text="ok")

    return httpx.MockTransport(handler), seen


def test_health_poller_thread_follows_the_gateway() -> None:
    transport, seen = _gateway([200, 503])
    client = ailink.AIlinkClient(TOKEN, GATEWAY, transport=transport)
    with ailink.HealthPoller(client, interval=0.01) as poller:
        assert seen.wait(5)
        thread = poller._thread
        assert thread is not None and thread.is_alive()
    assert poller.healthy is False  # the last answer was 503
    assert poller._thread is None and not thread.is_alive()  # stopped and joined


async def test_async_health_poller_task_follows_the_gateway() -> None:
    transport, seen = _gateway([200, 200, 503])
    client = ailink.AsyncClient(TOKEN, GATEWAY, transport=transport)
    async with ailink.AsyncHealthPoller(client, interval=0.01) as poller:
        for _ in range(500):
            if seen.is_set():
                break
            await asyncio.sleep(0.01)
        assert seen.is_set()
    assert poller.healthy is False and poller._task is None
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    await client.aclose()


@respx.mock
def test_with_fallback_uses_the_fallback_only_for_outages() -> None:
    primary = respx.post(f"{GATEWAY}/v1/chat/completions")
    backup = respx.post("http://fallback.test/v1/chat/completions").respond(200, json=COMPLETION)
    fallback = openai.OpenAI(api_key="sk-fallback-test-key", base_url="http://fallback.test/v1", max_retries=0)
    chat = ailink.AIlinkClient(TOKEN, GATEWAY).with_fallback(fallback)

    primary.respond(200, json={**COMPLETION, "choices": [{**COMPLETION["choices"][0],
                                                          "message": {"role": "assistant", "content": "gateway"}}]})
    assert chat.chat("gpt-4o-mini", "hi").choices[0].message.content == "gateway"
    assert chat.used_fallback is False and backup.call_count == 0

    primary.respond(503, json={"error": {"code": "all_upstreams_exhausted", "message": "down", "type": "x"}})
    assert chat.chat("gpt-4o-mini", "hi").choices[0].message.content == "from fallback"
    assert chat.used_fallback is True and backup.call_count == 1

    # a policy answer is the gateway working as intended: never routed around
    primary.respond(403, json={"error": {"code": "policy_denied", "message": "no", "type": "x"}})
    with pytest.raises(openai.PermissionDeniedError):
        chat.chat("gpt-4o-mini", "hi")
    assert backup.call_count == 1
