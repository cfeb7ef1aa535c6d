"""Seed 001, the AIlink SDK's Python docs page: every snippet as written, against the emulator.

``https://gateway.ailink.dev`` is the emulator's URL, ``ailink_v1_...`` a token it issued, and the
direct provider clients of the fallback patterns point at the emulator too (the suite never leaves
127.0.0.1). Snippets that need management endpoints or mock upstreams other helpers are adding
(batches, fine-tuning, realtime, circuit breakers, config-as-code) say so in their docstring.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import ailink
from ailink.testing import EmulatorGateway

from .conftest import CHARGES_NEED_APPROVAL

BLOCK_CHARGES = {
    "name": "block-charges",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
               "then": {"action": "deny", "message": "charges are frozen"}}],
}


@pytest.fixture
def fallback_key(gateway_env: EmulatorGateway, monkeypatch: pytest.MonkeyPatch) -> str:
    """``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` of the seeds' "direct provider" client: a second
    emulator token, so a fallback answer is recognisable and stays on loopback."""
    key = gateway_env.create_token(name="direct-provider", upstream="llm")
    gateway_env.script_llm(key, [{"content": "from the fallback"}] * 4)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", gateway_env.url + "/v1")  # where openai.OpenAI() goes by default
    return key


# ---------------------------------------------------------------------------------------------- quick start


def test_quick_start_openai_drop_in(gateway_env: EmulatorGateway, llm_token: str) -> None:
    from ailink import AIlinkClient

    # One line to get a policy-enforced, audited OpenAI client
    client = AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url)
    oai = client.openai()

    # Use exactly like openai.Client — no other changes needed
    response = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Summarise this contract."}],
    )

    # Anthropic Claude — gateway translates OpenAI format → Messages API automatically
    claude = oai.chat.completions.create(
        model="claude-3-5-sonnet-20241022",
        messages=[{"role": "user", "content": "Summarise this contract."}],
    )

    # Google Gemini — gateway translates to generateContent API automatically
    gemini = oai.chat.completions.create(
        model="gemini-2.0-flash",
        messages=[{"role": "user", "content": "Summarise this contract."}],
    )

    for answer, model in ((response, "gpt-4o"), (claude, "claude-3-5-sonnet-20241022"), (gemini, "gemini-2.0-flash")):
        assert answer.choices[0].message.content == "Echo: Summarise this contract." and answer.model == model
    assert [row.path for row in ailink.AIlinkClient.admin().audit.list()].count("/v1/chat/completions") == 3


def test_streaming(gateway_env: EmulatorGateway, llm_token: str) -> None:
    oai = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url).openai()
    printed: list[str] = []

    stream = oai.chat.completions.create(
        model="claude-3-5-sonnet-20241022",
        messages=[{"role": "user", "content": "Write a poem."}],
        stream=True,
    )
    for chunk in stream:
        printed.append(chunk.choices[0].delta.content or "")  # print(..., end="", flush=True)

    assert "".join(printed) == "Echo: Write a poem." and len(printed) > 1


async def test_async_openai(gateway_env: EmulatorGateway, llm_token: str) -> None:
    from ailink import AsyncClient

    async with AsyncClient(api_key=llm_token, gateway_url=gateway_env.url) as client:
        oai = client.openai()
        response = await oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Hello"}],
        )

    assert response.choices[0].message.content == "Echo: Hello"


# ---------------------------------------------------------------------------------------------- batches, realtime


def test_batches_and_fine_tuning(gateway_env: EmulatorGateway, llm_token: str) -> None:
    """Needs the mock LLM's ``/v1/batches`` and ``/v1/fine_tuning/jobs`` (emulator work of helper E2)."""
    client = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url)
    oai = client.openai()
    # Correction: the seed's "file-xyz"/"file-abc" stand for files uploaded earlier; the emulator,
    # like OpenAI, refuses ids of files that do not exist, so upload two first.
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    line = json.dumps({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": chat})
    example = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
    file_xyz = oai.files.create(file=("batch.jsonl", line.encode() + b"\n"), purpose="batch").id
    file_abc = oai.files.create(file=("train.jsonl", example.encode() + b"\n"), purpose="fine-tune").id

    # Create a batch
    batch = oai.batches.create(
        input_file_id=file_xyz,
        endpoint="/v1/chat/completions",
        completion_window="24h"
    )

    # Start a fine-tuning job
    job = oai.fine_tuning.jobs.create(
        training_file=file_abc,
        model="gpt-4o-mini-2024-07-18"
    )

    assert batch.input_file_id == file_xyz and batch.endpoint == "/v1/chat/completions"
    assert job.training_file == file_abc and job.model.startswith("gpt-4o-mini")
    # the same through the SDK's own resources
    assert client.batches.retrieve(batch.id)["id"] == batch.id
    assert client.fine_tuning.get_job(job.id)["id"] == job.id


async def test_realtime_websocket(gateway_env: EmulatorGateway, llm_token: str) -> None:
    """Needs the emulator's ``/v1/realtime`` WebSocket (helper E2)."""
    client = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url)

    async with client.realtime("gpt-4o-realtime-preview") as ws:
        await ws.send({"type": "session.update", "session": {"modalities": ["text"]}})  # "..." filled in
        event = await ws.recv()

    assert isinstance(event.get("type"), str) and event["type"] != "error"


# ---------------------------------------------------------------------------------------------- action gateway


def test_action_gateway(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    from ailink import AIlinkClient

    client = AIlinkClient(
        api_key=payments_token(),
        gateway_url=gateway_env.url,
        agent_name="billing-agent",  # shows up in audit logs
    )

    # GET request
    customers = client.get("/v1/customers")

    # POST request
    charge = client.post("/v1/charges", json={
        "amount": 5000,
        "currency": "usd",
        "customer": "cus_abc123",
    })

    assert {c["id"] for c in customers.json()["data"]} >= {"cus_001"}
    assert charge.json()["amount"] == 5000 and gateway_env.payments_stats()["charges"] == 1
    assert {row["agent_name"] for row in gateway_env.audit()} == {"billing-agent"}


# ---------------------------------------------------------------------------------------------- integrations


def test_langchain_tool(gateway_env: EmulatorGateway, payments_token: Callable[..., str], llm_token: str) -> None:
    from langchain_ailink import ChatAIlink

    stripe_token = payments_token()
    gateway_env.script_llm(llm_token, [
        {"tool_calls": [{"id": "call_1", "name": "stripe_api", "arguments": {"method": "GET",
                                                                            "path": "/v1/customers/cus_001"}}]},
        {"content": "cus_001 is Ada Lovelace."},
    ])
    llm = ChatAIlink(model="gpt-4o", token=llm_token, gateway_url=gateway_env.url)  # the seed leaves `llm` to you

    from ailink.integrations import langchain_tool

    stripe_tool = langchain_tool(
        token=stripe_token,
        gateway_url=gateway_env.url,
        name="stripe_api",
        description="Make Stripe API calls for billing operations",
        methods=["GET", "POST"],
    )

    # Correction: langchain.agents.create_react_agent no longer exists (LangChain 1.x); create_agent is
    # its successor with the same (model, tools) arguments.
    from langchain.agents import create_agent as create_react_agent
    agent = create_react_agent(llm, tools=[stripe_tool])

    result = agent.invoke({"messages": [("user", "Who is customer cus_001?")]})
    assert result["messages"][-1].content == "cus_001 is Ada Lovelace."
    assert "Ada Lovelace" in result["messages"][-2].content  # the tool's answer, through the gateway


def test_crewai_tool(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    from ailink.integrations import crewai_tool

    github_tool = crewai_tool(
        token=payments_token(),
        gateway_url=gateway_env.url,
        name="github_api",
        description="Interact with GitHub repositories",
    )

    from crewai import Agent
    # Correction: CrewAI's Agent requires goal and backstory (the seed gives only role and tools).
    dev_agent = Agent(role="Developer", goal="Ship the fix", backstory="A careful engineer.", tools=[github_tool])

    assert [t.name for t in dev_agent.tools] == ["github_api"]
    assert github_tool.run(method="GET", path="/v1/customers/cus_001")  # the tool reaches the gateway
    assert [row["path"] for row in gateway_env.audit()] == ["/v1/customers/cus_001"]


def test_sdk_model_one_liners_take_the_client(gateway_env: EmulatorGateway, llm_token: str) -> None:
    from ailink.integrations import crewai_llm, langchain_chat, langchain_embeddings, llamaindex_llm

    client = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url, agent_name="one-liner")
    assert langchain_chat(client, model="gpt-4o-mini").invoke("hi").content == "Echo: hi"
    assert len(langchain_embeddings(client, model="text-embedding-3-small").embed_query("hi")) == 8
    assert llamaindex_llm(client, model="gpt-4o-mini").complete("hi").text == "Echo: hi"
    assert crewai_llm(client, model="gpt-4o-mini").call("hi") == "Echo: hi"
    assert {row["agent_name"] for row in gateway_env.audit()} == {"one-liner"}


# ---------------------------------------------------------------------------------------------- HITL


def _client_for_charges(gateway: EmulatorGateway, payments_token: Callable[..., str], cls: Any) -> Any:
    return cls(api_key=payments_token(CHARGES_NEED_APPROVAL), gateway_url=gateway.url)


def test_hitl_async_mode(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    client = _client_for_charges(gateway_env, payments_token, ailink.AIlinkClient)
    approver = gateway_env.approve_when_pending(1, "approved")
    printed: list[str] = []

    response = client.post("/v1/charges", json={"amount": 50000})

    if response.status_code == 202:
        request_id = response.json()["request_id"]
        # Correction: the seed awaits this call on a sync client; AIlinkClient waits without await
        # (the async variant is below).
        result = client.wait_for_approval(request_id, timeout=300)
        if result.approved:
            printed.append(f"Approved! Response: {result.response.json()}")
        else:
            printed.append(f"Rejected: {result.reason}")

    approver.join()
    assert response.status_code == 202 and printed[0].startswith("Approved! Response: {")
    assert gateway_env.payments_stats()["charges"] == 1  # sent once, after the approval


async def test_hitl_async_mode_on_the_async_client(gateway_env: EmulatorGateway,
                                                   payments_token: Callable[..., str]) -> None:
    client = _client_for_charges(gateway_env, payments_token, ailink.AsyncClient)
    approver = gateway_env.approve_when_pending(1, "rejected", reason="over budget")
    printed: list[str] = []

    response = await client.post("/v1/charges", json={"amount": 50000})  # the await the seed leaves out

    if response.status_code == 202:
        request_id = response.json()["request_id"]
        result = await client.wait_for_approval(request_id, timeout=300)
        if result.approved:
            printed.append(f"Approved! Response: {result.response.json()}")
        else:
            printed.append(f"Rejected: {result.reason}")

    approver.join()
    assert printed == ["Rejected: over budget"] and gateway_env.payments_stats()["charges"] == 0


def test_hitl_sync_mode(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    client = _client_for_charges(gateway_env, payments_token, ailink.AIlinkClient)
    approver = gateway_env.approve_when_pending(1, "approved")

    response = client.post(
        "/v1/charges",
        json={"amount": 50000},
        wait_for_approval=True,
        approval_timeout=300,
    )

    approver.join()
    assert response.status_code == 200 and response.json()["amount"] == 50000


def test_idempotency_keys(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    client = ailink.AIlinkClient(api_key=payments_token(), gateway_url=gateway_env.url)
    responses = []
    for _ in range(2):  # the same call twice: the charge runs once
        response = client.post(
            "/v1/charges",
            json={"amount": 5000},
            idempotency_key="charge-order-12345",
        )
        responses.append(response)

    assert responses[0].json() == responses[1].json()
    assert responses[1].headers["idempotent-replayed"] == "true"
    assert gateway_env.payments_stats()["charges"] == 1


# ---------------------------------------------------------------------------------------------- errors


def test_error_handling(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    from ailink import AIlinkError, ApprovalTimeoutError, PolicyDeniedError

    def run_snippet(client: ailink.AIlinkClient) -> list[str]:
        printed: list[str] = []
        try:
            response = client.post("/v1/charges", json={"amount": 5000})
            printed.append(f"status {response.status_code}")
        except PolicyDeniedError as e:
            printed.append(f"Blocked by policy: {e.policy_name} — {e.reason}")
        except ApprovalTimeoutError as e:
            printed.append(f"Approval timed out after {e.timeout}s")
        except AIlinkError as e:
            printed.append(f"Gateway error: {e}")
        return printed

    denied = ailink.AIlinkClient(api_key=payments_token(BLOCK_CHARGES), gateway_url=gateway_env.url)
    assert run_snippet(denied) == ["Blocked by policy: block-charges — charges are frozen"]

    quick_approval = {**CHARGES_NEED_APPROVAL, "rules": [{**CHARGES_NEED_APPROVAL["rules"][0],  # type: ignore[dict-item]
                                                          "then": {"action": "require_approval", "timeout": "1s"}}]}
    # The seed's client talks to a gateway that holds approval-gated requests (the real gateway's way);
    # approval_mode="blocking" makes ours do the same, so the plain post can time out as the seed expects.
    held = ailink.AIlinkClient(api_key=payments_token(quick_approval), gateway_url=gateway_env.url,
                               approval_mode="blocking")
    (printed,) = run_snippet(held)
    assert printed.startswith("Approval timed out after ") and gateway_env.payments_stats()["charges"] == 0


def test_response_cache_bypass(gateway_env: EmulatorGateway, llm_token: str) -> None:
    client = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url)

    # Bypass cache for this request
    response = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},  # the seed's {...}
        headers={"x-ailink-no-cache": "true"}
    )

    assert response.status_code == 200 and response.headers.get("x-ailink-cache") != "HIT"


# ---------------------------------------------------------------------------------------------- resilience


def _oai_answer(oai: Any) -> str:
    content: str = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "ping"}]) \
        .choices[0].message.content
    return content


@pytest.mark.parametrize("gateway_up", [True, False], ids=["gateway-up", "gateway-down"])
def test_fallback_pattern_1_one_time_check(gateway_env: EmulatorGateway, llm_token: str, fallback_key: str,
                                           dead_gateway_url: str, monkeypatch: pytest.MonkeyPatch,
                                           gateway_up: bool) -> None:
    if not gateway_up:
        monkeypatch.setenv("AILINK_GATEWAY_URL", dead_gateway_url)
    printed: list[str] = []

    import os

    import openai

    from ailink import AIlinkClient

    client       = AIlinkClient(api_key=llm_token)
    fallback_oai = openai.OpenAI(api_key=os.environ["OPENAI_API_KEY"])

    if client.is_healthy():
        oai = client.openai()
    else:
        oai = fallback_oai
        printed.append("⚠️  AIlink gateway unreachable — running without policy enforcement")

    response = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "ping"}])

    expected = "Echo: ping" if gateway_up else "from the fallback"
    assert response.choices[0].message.content == expected and bool(printed) is not gateway_up


@pytest.mark.parametrize("gateway_up", [True, False], ids=["gateway-up", "gateway-down"])
def test_fallback_pattern_2_automatic(gateway_env: EmulatorGateway, llm_token: str, fallback_key: str,
                                      dead_gateway_url: str, gateway_up: bool) -> None:
    client = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url if gateway_up else dead_gateway_url)
    fallback_oai = openai.OpenAI(api_key=os.environ["OPENAI_API_KEY"])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with client.with_fallback(fallback_oai) as oai:
            response = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "ping"}])

    assert response.choices[0].message.content == ("Echo: ping" if gateway_up else "from the fallback")
    assert any("bypass policy enforcement" in str(w.message) for w in caught) is not gateway_up


def test_fallback_pattern_3_background_polling(gateway_env: EmulatorGateway, llm_token: str,
                                               fallback_key: str) -> None:
    client = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url)
    fallback = openai.OpenAI(api_key=os.environ["OPENAI_API_KEY"])

    def incoming_messages() -> Iterator[str]:
        yield from ("first", "second")

    answers = []

    from ailink import HealthPoller

    with HealthPoller(client, interval=15) as poller:
        for user_message in incoming_messages():
            oai = client.openai() if poller.is_healthy else fallback
            response = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": user_message}])
            answers.append(response.choices[0].message.content)

    assert answers == ["Echo: first", "Echo: second"]


@pytest.mark.parametrize("gateway_up", [True, False], ids=["gateway-up", "gateway-down"])
async def test_fallback_pattern_4_async(gateway_env: EmulatorGateway, llm_token: str, fallback_key: str,
                                        dead_gateway_url: str, gateway_up: bool) -> None:
    from ailink import AsyncClient, AsyncHealthPoller

    client   = AsyncClient(api_key=llm_token, gateway_url=gateway_env.url if gateway_up else dead_gateway_url)
    fallback = openai.AsyncOpenAI(api_key=os.environ["OPENAI_API_KEY"])

    async with AsyncHealthPoller(client, interval=15) as poller:
        await poller.poll_once()  # the seed's first request may race the first poll; this test waits for it
        oai = client.openai() if poller.is_healthy else fallback
        response = await oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "ping"}])

    assert response.choices[0].message.content == ("Echo: ping" if gateway_up else "from the fallback")


# ---------------------------------------------------------------------------------------------- headers


def test_passthrough_bring_your_own_key(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    from ailink import AIlinkClient

    client = AIlinkClient(api_key=payments_token(), gateway_url=gateway_env.url)  # a token without credential

    with client.with_upstream_key("sk-my-openai-key") as byok:
        # The payments mock's /v1/echo shows what reached the upstream (the seed posts to /v1/chat/completions).
        resp = byok.post("/v1/echo", json={
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "Hello"}],
        })

    assert resp.json()["headers"]["authorization"] == "Bearer sk-my-openai-key"


async def test_passthrough_on_the_async_client(gateway_env: EmulatorGateway,
                                               payments_token: Callable[..., str]) -> None:
    client = ailink.AsyncClient(api_key=payments_token(), gateway_url=gateway_env.url)
    async with client.with_upstream_key("sk-my-openai-key") as byok:
        resp = await byok.post("/v1/echo", json={"model": "gpt-4o", "messages": []})
    assert resp.json()["headers"]["authorization"] == "Bearer sk-my-openai-key"


def test_session_tracing(gateway_env: EmulatorGateway, llm_token: str) -> None:
    client = ailink.AIlinkClient(api_key=llm_token, gateway_url=gateway_env.url)
    messages = [{"role": "user", "content": "step"}]  # the seed's [...]

    with client.trace(session_id="conv-abc123", properties={"env": "prod"}) as t:
        t.post("/v1/chat/completions", json={"messages": messages})
        t.post("/v1/chat/completions", json={"messages": messages})

    session = ailink.AIlinkClient.admin().sessions.get("conv-abc123")
    assert len(session.requests) == 2
    assert all((r.properties or {}).get("env") == "prod" for r in session.requests)


def test_per_request_guardrails(gateway_env: EmulatorGateway) -> None:
    # The emulator does not run guardrails; a shadow policy on the header shows the gateway received it.
    saw_header = {"name": "saw-guardrails", "mode": "shadow", "rules": [{
        "when": {"field": "request.headers.x-ailink-guardrails", "op": "contains", "value": "pii_redaction"},
        "then": {"action": "deny"}}]}
    client = ailink.AIlinkClient(api_key=gateway_env.create_token(upstream="llm", policies=[saw_header]),
                                 gateway_url=gateway_env.url)

    with client.with_guardrails(["pii_redaction", "prompt_injection"]) as g:
        response = g.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])

    assert response.choices[0].message.content == "Echo: x"
    assert "saw-guardrails" in (gateway_env.audit()[0].get("deny_reason") or "")


# ---------------------------------------------------------------------------------------------- admin features


def test_circuit_breaker(gateway_env: EmulatorGateway) -> None:
    """Needs the emulator's circuit-breaker endpoints and ``/api/v1/health/upstreams`` (helper E2)."""
    from ailink import AIlinkClient

    admin = AIlinkClient.admin(admin_key=gateway_env.admin_key)

    token = admin.tokens.create(
        name="prod-gpt",
        upstream_url="https://api.openai.com/v1",
        credential_id=admin.credentials.create(name="c", provider="openai", secret="sk-seed-test-secret-0002")["id"],
        circuit_breaker={"enabled": True, "failure_threshold": 5, "recovery_cooldown_secs": 60},
    )

    # Read/update at runtime
    config = admin.tokens.get_circuit_breaker(token["token_id"])
    admin.tokens.set_circuit_breaker(token["token_id"], enabled=True, failure_threshold=3)

    # Check upstream health
    health = admin.tokens.upstream_health()

    assert config["failure_threshold"] == 5 and config["recovery_cooldown_secs"] == 60
    assert admin.tokens.get_circuit_breaker(token["token_id"])["failure_threshold"] == 3
    assert isinstance(health, list)


def test_configuration(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    from ailink import AIlinkClient

    client = AIlinkClient(
        api_key=payments_token(),
        gateway_url=gateway_env.url,
        agent_name="my-agent",
        timeout=30,
        retries=3,
        verify_ssl=True,
    )

    assert client.get("/v1/customers/cus_001").json()["name"] == "Ada Lovelace"
    assert client.settings.retry.max_retries == 3 and client.settings.timeout == 30


def test_config_as_code(gateway_env: EmulatorGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Needs the emulator's ``/api/v1/config/export`` and ``/import`` (helper E2)."""
    monkeypatch.chdir(tmp_path)
    from ailink import AIlinkClient

    admin = AIlinkClient.admin(admin_key=gateway_env.admin_key)
    admin.policies.create(name="block-refunds", rules=[{"when": {"always": True}, "then": {"action": "deny"}}])

    yaml_config = admin.config.export()
    with open("ailink_config.yaml", "w") as f:
        f.write(yaml_config)

    with open("ailink_config.yaml") as f:
        admin.config.import_yaml(f.read())

    assert isinstance(yaml_config, str) and "block-refunds" in yaml_config
    assert [p.name for p in admin.policies.list()].count("block-refunds") == 1  # matched by name, not duplicated


def test_service_registry(gateway_env: EmulatorGateway, payments_token: Callable[..., str]) -> None:
    admin = ailink.AIlinkClient.admin(admin_key=gateway_env.admin_key)
    stripe_key = admin.credentials.create(name="stripe", provider="stripe", secret="sk-seed-test-secret-0003")

    admin.services.create(
        name="stripe",
        base_url="http://payments.mock",  # the emulator's mock payments API stands in for api.stripe.com
        service_type="generic",
        credential_id=stripe_key["id"],
    )

    from ailink import AIlinkClient

    agent = AIlinkClient(api_key=payments_token(), agent_name="billing-bot")
    charges = agent.post("/v1/proxy/services/stripe/v1/charges", json={"amount": 2000, "currency": "usd"})

    assert charges.json()["amount"] == 2000 and gateway_env.payments_stats()["charges"] == 1
