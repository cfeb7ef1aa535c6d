"""The newer gateway generation (``X-TrueFlow-*`` headers, ``tf_v1_`` tokens) with default client settings.

The ``trueflow`` fixture is the emulator's ``real`` profile in the ``trueflow`` generation: it reads only
the ``X-TrueFlow-`` spellings, mints and accepts only ``tf_v1_`` tokens, and holds approval-gated requests.
A client that sent only the ``X-AIlink-`` spellings would lose its agent name (the gateway would fall back
to ``User-Agent``), its approval re-attach key (a re-send would create a second approval) and its
per-request guardrails here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

import ailink
from ailink import AIlinkClient, AsyncClient
from ailink.testing import EmulatorGateway

APPROVE_CHARGES = {"name": "charges-need-approval", "rules": [{
    "when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
    "then": {"action": "require_approval", "timeout": "30s"}}]}
CHARGE = {"amount": 4200, "currency": "usd", "customer": "cus_001"}


def test_tokens_of_each_generation(ailink_gateway_trueflow: EmulatorGateway, ailink_gateway: EmulatorGateway) -> None:
    tf_token = ailink_gateway_trueflow.create_token()
    ailink_token = ailink_gateway.create_token()
    assert tf_token.startswith("tf_v1_") and ailink_token.startswith("ailink_v1_")
    with AIlinkClient(tf_token, ailink_gateway_trueflow.url) as client:
        assert client.get("/v1/customers/cus_001").json()["name"] == "Ada Lovelace"
        assert tf_token not in repr(client) and "tf_v1_" in repr(client)  # masked, recognisable
    for token, gateway in ((ailink_token, ailink_gateway_trueflow), (tf_token, ailink_gateway)):
        with AIlinkClient(token, gateway.url) as client, pytest.raises(ailink.AuthenticationError) as caught:
            client.get("/v1/customers/cus_001")  # each generation refuses the other's tokens
        assert token not in str(caught.value) and token not in repr(caught.value)


def test_agent_attribution(ailink_gateway_trueflow: EmulatorGateway) -> None:
    token = ailink_gateway_trueflow.create_token()
    with AIlinkClient(token, ailink_gateway_trueflow.url, agent_name="billing-bot") as client:
        client.get("/v1/customers/cus_001")
    with AIlinkClient(token, ailink_gateway_trueflow.url) as anonymous:
        anonymous.get("/v1/customers/cus_002")
    by_path = {row["path"]: row for row in ailink_gateway_trueflow.audit()}
    assert by_path["/v1/customers/cus_001"]["agent_name"] == "billing-bot"
    # without an agent name the gateway falls back to User-Agent, which the client sets to itself
    assert by_path["/v1/customers/cus_002"]["agent_name"] == f"ailink-python/{ailink.__version__}"


@pytest.mark.parametrize("how", ["per-request", "client-default"])
def test_per_request_guardrails(ailink_gateway_trueflow: EmulatorGateway, how: str) -> None:
    token = ailink_gateway_trueflow.create_token()
    guardrails = {"X-AIlink-Guardrails": "pii_redaction"}  # the caller names one spelling; both are sent
    options: dict[str, Any] = {"headers": guardrails} if how == "client-default" else {}
    with AIlinkClient(token, ailink_gateway_trueflow.url, **options) as client:
        kwargs: dict[str, Any] = {"headers": guardrails} if how == "per-request" else {}
        charge = client.post("/v1/charges", json={**CHARGE, "description": "mail ada@example.org"}, **kwargs)
    assert charge.json()["description"] == "mail [REDACTED_EMAIL]"


async def test_approval_reattach_after_the_caller_gave_up(ailink_gateway_trueflow: EmulatorGateway) -> None:
    """A held call whose caller gave up (task cancelled: its connection closed) and the same call sent
    again with the same key: one approval, one execution."""
    gateway = ailink_gateway_trueflow
    token = gateway.create_token(policies=[APPROVE_CHARGES])
    async with AsyncClient(token, gateway.url, agent_name="billing-bot") as client:
        first = asyncio.create_task(client.post("/v1/charges", json=CHARGE, idempotency_key="charge-42"))
        await asyncio.to_thread(_wait_until, lambda: len(gateway.pending_approvals()) == 1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        [approval] = gateway.pending_approvals()
        assert approval["idempotency_key"] == "charge-42"
        approver = gateway.approve_when_pending(count=1)
        again = await client.post("/v1/charges", json=CHARGE, idempotency_key="charge-42")
    assert await asyncio.to_thread(approver.join) == [approval["id"]]
    assert again.status_code == 200 and again.json()["amount"] == CHARGE["amount"]
    assert len(gateway.approvals()) == 1 and gateway.payments_stats()["charges"] == 1
    assert {row["agent_name"] for row in gateway.audit()} == {"billing-bot"}


def test_branded_response_headers(ailink_gateway_trueflow: EmulatorGateway) -> None:
    token = ailink_gateway_trueflow.create_token()
    with httpx.Client(base_url=ailink_gateway_trueflow.url) as raw:
        answer = raw.get("/v1/customers/cus_001", headers={"Authorization": f"Bearer {token}"})
    # the token's circuit breaker (on by default) is closed: the answer came from the upstream
    assert answer.headers["x-trueflow-cb-state"] == "closed" and "x-ailink-cb-state" not in answer.headers


def _wait_until(condition: Any, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting for the gateway"
        time.sleep(0.02)
