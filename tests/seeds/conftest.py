"""Fixtures of the seed suite: the AIlink SDK's own README (seed 000) and docs page (seed 001), run as
written against the emulator. Each test changes only the gateway URL, the keys and the amounts the
emulator's policies need; any other change carries a comment saying why."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from ailink.testing import EmulatorGateway

#: Charges above 1,000 wait for a human (the seeds' HITL snippets charge 50,000).
CHARGES_NEED_APPROVAL = {
    "name": "charges-over-1000",
    "rules": [{"when": {"all": [{"field": "request.path", "op": "eq", "value": "/v1/charges"},
                                {"field": "request.body.amount", "op": "gt", "value": 1000}]},
               "then": {"action": "require_approval", "timeout": "5m"}}],
}


@pytest.fixture
def gateway_env(ailink_gateway: EmulatorGateway, monkeypatch: pytest.MonkeyPatch) -> EmulatorGateway:
    """The emulator as the default gateway of every client (``AILINK_GATEWAY_URL``, ``AILINK_ADMIN_KEY``):
    snippets that leave the URL or the admin key out then reach it."""
    monkeypatch.setenv("AILINK_GATEWAY_URL", ailink_gateway.url)
    monkeypatch.setenv("AILINK_ADMIN_KEY", ailink_gateway.admin_key)
    monkeypatch.delenv("AILINK_API_KEY", raising=False)
    return ailink_gateway


@pytest.fixture
def llm_token(gateway_env: EmulatorGateway) -> str:
    """A token whose upstream is the emulator's OpenAI-compatible mock LLM."""
    return gateway_env.create_token(name="llm", upstream="llm")


@pytest.fixture
def payments_token(gateway_env: EmulatorGateway) -> Callable[..., str]:
    """``payments_token(*policies)``: a token on the mock payments API with these policies."""

    def make(*policies: dict[str, Any]) -> str:
        return gateway_env.create_token(name="payments", upstream="payments", policies=list(policies))

    return make


@pytest.fixture
def dead_gateway_url() -> str:
    """A loopback URL nobody listens on (a gateway outage)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class Flavour:
    """One seed scenario on the sync client (in a worker thread, as any caller would) or the async one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def client(self, *args: Any, **options: Any) -> Any:
        import ailink

        cls = ailink.AsyncClient if self.kind == "async" else ailink.AIlinkClient
        return cls(*args, **options)

    async def __call__(self, client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<method>(...)``, awaited on the async client."""
        import asyncio

        if self.kind == "async":
            return await getattr(client, method)(*args, **kwargs)
        return await asyncio.to_thread(getattr(client, method), *args, **kwargs)

    async def each(self, client: Any, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Everything a streaming call yields (``chat(stream=True)`` or ``chat_stream``), in order."""
        import asyncio
        import inspect

        if self.kind == "sync":
            return await asyncio.to_thread(lambda: list(getattr(client, method)(*args, **kwargs)))
        result = getattr(client, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return [item async for item in result]

    async def close(self, client: Any) -> None:
        if self.kind == "async":
            await client.aclose()
        else:
            client.close()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return Flavour(request.param)
