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
