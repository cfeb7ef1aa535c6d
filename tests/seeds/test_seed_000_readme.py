"""Seed 000, the AIlink SDK's README: every snippet as written, against the emulator."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

import ailink
from ailink.testing import EmulatorGateway

from .conftest import CHARGES_NEED_APPROVAL


def test_agent_proxy_usage(llm_token: str) -> None:
    from ailink import AIlinkClient

    # Create a client with your virtual token
    client = AIlinkClient(api_key=llm_token)  # the gateway URL comes from AILINK_GATEWAY_URL

    # Use OpenAI's SDK — requests go through the gateway
    oai = client.openai()
    response = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Hello!"}],
    )

    assert response.choices[0].message.content == "Echo: Hello!"  # the mock LLM's answer, through the gateway


def _two_pending_approvals(gateway: EmulatorGateway, payments_token: Callable[..., str]) -> tuple[ailink.AIlinkClient,
                                                                                                  list[str]]:
    agent = ailink.AIlinkClient(payments_token(CHARGES_NEED_APPROVAL), gateway.url)
    ids = [agent.post("/v1/charges", json={"amount": amount, "currency": "usd"}).json()["approval_id"]
           for amount in (5000, 7000)]
    return agent, ids


def test_admin_management_usage(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    agent, waiting = _two_pending_approvals(gateway_env, payments_token)  # something for the HITL lines to decide

    from ailink import AIlinkClient

    admin = AIlinkClient.admin(admin_key=gateway_env.admin_key)

    # Credentials
    cred = admin.credentials.create(name="prod-openai", provider="openai", secret="sk-seed-test-secret-0000")
    creds = admin.credentials.list()  # → List[Credential]

    # Tokens
    token = admin.tokens.create(
        name="billing-bot",
        credential_id=cred["id"],
        upstream_url="https://api.openai.com",
    )
    api_key = token["token_id"]  # → "ailink_v1_..."

    tokens = admin.tokens.list()           # → List[Token]
    admin.tokens.revoke(api_key)           # Soft-delete

    # Policies (with optional retry config)
    policy = admin.policies.create(
        name="rate-limit-100",
        mode="enforce",
        # Correction: the seed's {"type": "rate_limit", ...} is not the gateway's rule shape (the real
        # gateway cannot load it and fails every request of the token); rules are {"when", "then"}.
        rules=[{"when": {"always": True}, "then": {"action": "rate_limit", "window": "1m", "max_requests": 100}}],
        retry={"max_retries": 3, "base_delay_ms": 500, "max_backoff_ms": 10000},
    )
    admin.policies.update(policy["id"], mode="shadow")
    admin.policies.delete(policy["id"])

    # Audit logs
    logs = admin.audit.list(limit=50)      # → List[AuditLog]

    # HITL approvals
    pending = admin.approvals.list()       # → List[ApprovalRequest]
    admin.approvals.approve(pending[0].id)
    admin.approvals.reject(pending[1].id)

    assert cred["name"] == "prod-openai" and any(c.id == cred["id"] for c in creds)
    assert all(isinstance(c, ailink.Credential) for c in creds)
    assert "sk-seed-test-secret-0000" not in repr(creds) + repr(cred)
    assert api_key.startswith("ailink_v1_") and any(t.name == "billing-bot" for t in tokens)
    with pytest.raises(ailink.AuthenticationError):  # revoked: the gateway refuses it from now on
        AIlinkClient(api_key=api_key).get("/v1/models")
    assert all(p.id != policy["id"] for p in admin.policies.list())  # deleted
    assert {log.path for log in logs} >= {"/v1/charges"} and all(isinstance(log, ailink.AuditLog) for log in logs)
    assert sorted(a.id for a in pending) == sorted(waiting)
    decided = {pending[0].id: "approved", pending[1].id: "rejected"}
    for approval_id, status in decided.items():  # the agent sees each decision
        assert agent.wait_for_approval(approval_id, timeout=10).status.value == status


async def test_async_usage(llm_token: str) -> None:
    from ailink import AsyncClient

    # The management resources use the admin key: AILINK_ADMIN_KEY (set by the gateway_env fixture).
    async with AsyncClient(api_key=llm_token) as client:
        oai = client.openai()
        tokens = await client.tokens.list()

    assert isinstance(oai, openai.AsyncOpenAI) and str(oai.base_url).startswith(client.gateway_url)
    assert [t.name for t in tokens] == ["llm"] and all(isinstance(t, ailink.Token) for t in tokens)


def test_error_handling(gateway_env: EmulatorGateway) -> None:
    AIlinkClient = ailink.AIlinkClient  # the snippet imports it from ailink: same object
    from ailink.exceptions import (
        AIlinkError,  # Base class
        AuthenticationError,  # 401
        GatewayError,  # 5xx
        NotFoundError,  # 404
        RateLimitError,  # 429
        ValidationError,  # 422
    )

    admin = AIlinkClient.admin(admin_key=gateway_env.admin_key)

    printed: list[str] = []
    try:
        admin.tokens.revoke("nonexistent")
    except NotFoundError as e:
        printed.append(f"Token not found: {e.message}")
        printed.append(f"Status: {e.status_code}")
    except AIlinkError as e:
        printed.append(f"Unexpected error: {e}")

    assert printed[1] == "Status: 404" and printed[0].startswith("Token not found: ")
    for error in (AuthenticationError, RateLimitError, ValidationError, GatewayError, NotFoundError):
        assert issubclass(error, AIlinkError)


def test_models_have_the_documented_fields(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    _two_pending_approvals(gateway_env, payments_token)
    admin = ailink.AIlinkClient.admin(admin_key=gateway_env.admin_key)
    admin.credentials.create(name="c", provider="openai", secret="sk-seed-test-secret-0001")
    admin.policies.create(name="p", rules=[{"when": {"always": True}, "then": {"action": "allow"}}])
    fields = {
        "Token": (admin.tokens.list()[0], ["id", "name", "credential_id", "upstream_url", "is_active", "policy_ids",
                                           "scopes"]),
        "Credential": (admin.credentials.list()[0], ["id", "name", "provider", "created_at"]),
        "Policy": (admin.policies.list()[0], ["id", "name", "mode", "rules"]),
        "AuditLog": (admin.audit.list()[0], ["id", "method", "path", "upstream_status", "response_latency_ms",
                                             "agent_name"]),
        "ApprovalRequest": (admin.approvals.list()[0], ["id", "token_id", "status", "request_summary", "expires_at"]),
        "ApprovalDecision": (admin.approvals.approve(admin.approvals.list()[0].id), ["id", "status", "updated"]),
    }
    for model, (item, names) in fields.items():
        assert type(item).__name__ == model
        for name in names:
            assert name in item and item[name] == getattr(item, name)
