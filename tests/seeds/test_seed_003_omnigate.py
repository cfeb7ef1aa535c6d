"""Seed 003, the "OmniGate" client README: every capability, with our names, against the emulator.

Adapted as the README's "Coming from OmniGate" table says: ``omnigate.Client``/``AsyncClient`` →
``ailink.AIlinkClient``/``AsyncClient``, ``base_url`` → ``gateway_url``; signup, provider keys and
extra gateway keys are management calls (an admin stores the provider key with
``credentials.create`` and issues virtual tokens with ``tokens.create``); ``AuthError`` →
``AuthenticationError``, ``ProviderError`` → ``UpstreamError``, ``APIError`` → ``AIlinkError``,
``ConnectionError`` → ``APIConnectionError``. Our gateway streams server-sent events and reports
usage and cost at the end of a stream (OmniGate streams plain text without usage). Scenarios
marked "both" run on the sync and the async client.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import openai
import pytest

import ailink
from ailink import AIlinkClient, AsyncClient, RetryConfig
from ailink.testing import EmulatorGateway

from .conftest import Flavour

FAST = RetryConfig(max_retries=3, backoff_base=0.01, backoff_max=0.05)


# ---------------------------------------------------------------------------------------------- quick start


def test_quick_start_with_a_stored_provider_key(ailink_gateway: EmulatorGateway) -> None:
    admin = ailink_gateway.admin
    # Signup and "set_provider_key" are the admin's job here: store the provider key encrypted in the
    # gateway and issue a virtual token that uses it.
    credential = admin.credentials.create(name="openai-prod", provider="openai", secret="sk-planted-provider-key-0001")
    acct = admin.tokens.create(name="prod", upstream_url="http://llm.mock", credential_id=credential.id)

    client = AIlinkClient(api_key=acct.token_id, gateway_url=ailink_gateway.url, user_id="u-42")

    resp = client.chat(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hi in French"}],
    )
    printed = (resp.content, resp.usage.total_tokens, resp.cost_usd)  # print(...)
    client.close()

    assert printed[0] == "Echo: Say hi in French" and printed[1] == 4 + 5
    assert printed[2] == pytest.approx((4 * 0.00015 + 5 * 0.0006) / 1000)
    (row,) = ailink_gateway.audit()
    assert row["user_id"] == "u-42" and row["provider"] == "openai"


async def test_messages_may_be_a_string_a_dict_or_a_list(ailink_gateway: EmulatorGateway, llm_token: str,
                                                        flavour: Flavour) -> None:
    """Both."""
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url)
    as_string = await flavour(client, "chat", model="gpt-4o-mini", messages="Just a quick question")
    as_dict = await flavour(client, "chat", model="gpt-4o-mini", messages={"role": "user", "content": "one"})
    as_list = await flavour(client, "chat", model="gpt-4o-mini",
                            messages=[{"role": "system", "content": "be brief"}, "two"])
    await flavour.close(client)
    assert [r.content for r in (as_string, as_dict, as_list)] == ["Echo: Just a quick question", "Echo: one",
                                                                   "Echo: two"]


# ---------------------------------------------------------------------------------------------- streaming


async def test_streaming_text_and_chunks(ailink_gateway: EmulatorGateway, llm_token: str, flavour: Flavour) -> None:
    """Both: text pieces by default; ``as_chunks=True`` gives text and request id, usage and cost on the last."""
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url)
    pieces = await flavour.each(client, "chat_stream", model="gpt-4o-mini", messages="Stream me a haiku")
    chunks = await flavour.each(client, "chat_stream", model="gpt-4o-mini", messages="hi", as_chunks=True)
    await flavour.close(client)

    assert "".join(pieces) == "Echo: Stream me a haiku" and all(isinstance(p, str) for p in pieces)
    assert "".join(chunk.text for chunk in chunks) == "Echo: hi"
    rows = ailink_gateway.audit()
    assert {chunk.request_id for chunk in chunks} == {rows[0]["request_id"]}  # the newest row: the second stream
    last = chunks[-1]
    assert last.usage is not None and last.usage.total_tokens == 1 + 2
    assert last.cost_usd == pytest.approx((1 * 0.00015 + 2 * 0.0006) / 1000)
    assert Decimal(rows[0]["estimated_cost_usd"]) == Decimal(str(last.cost_usd))


async def test_a_mid_stream_failure_is_a_typed_provider_error(ailink_gateway: EmulatorGateway, llm_token: str,
                                                             flavour: Flavour) -> None:
    """Both: the provider fails after some text (an ``error`` event): ``UpstreamError``, not a
    half-read iterator; nothing is re-sent once text has reached the caller."""
    ailink_gateway.script_llm(llm_token, [{"content": "partial answer here",
                                           "stream_error": {"message": "model overloaded", "type": "server_error"}}])
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url, retries=FAST)
    received: list[str] = []

    async def consume() -> None:
        if flavour.kind == "sync":
            def run() -> None:
                for piece in client.chat_stream(model="gpt-4o-mini", messages="hi"):
                    received.append(piece)
            await asyncio.to_thread(run)
        else:
            async for piece in client.chat_stream(model="gpt-4o-mini", messages="hi"):
                received.append(piece)

    with pytest.raises(ailink.UpstreamError, match="model overloaded"):
        await consume()
    await flavour.close(client)
    assert "".join(received) == "partial answer here"
    assert len(ailink_gateway.audit()) == 1


async def test_async_client_mirrors_the_sync_one(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    printed: list[str] = []
    limited = ailink_gateway.create_token(upstream="llm", policies=[{
        "name": "one-per-minute", "rules": [{"when": {"always": True}, "then": {
            "action": "rate_limit", "window": "60s", "max_requests": 1, "key": "per_token"}}]}])

    async def main(token: str) -> None:
        async with AsyncClient(api_key=token, gateway_url=ailink_gateway.url, retries=0) as c:
            try:
                async for chunk in c.chat_stream(
                    model="claude-3-5-sonnet-latest",
                    messages=[{"role": "user", "content": "hi"}],
                    as_chunks=True,
                ):
                    printed.append(chunk.text)  # print(chunk.text, end="")
            except ailink.RateLimitError as e:
                printed.append(f"slow down; retry after {e.retry_after}")
            except ailink.BudgetExceededError as e:
                printed.append(f"budget hit: {e.detail}")

    await main(llm_token)
    await main(limited)
    await main(limited)
    assert "".join(printed[:-1]) == "Echo: hiEcho: hi"
    assert printed[-1].startswith("slow down; retry after ")


# ---------------------------------------------------------------------------------------------- errors


async def test_error_classes(ailink_gateway: EmulatorGateway, llm_token: str, flavour: Flavour,
                             dead_gateway_url: str) -> None:
    """Both: 401 from the gateway vs a provider's 401, the base class with status/detail/request id,
    and a network failure after retries."""
    bad = flavour.client(api_key="ailink_v1_nope", gateway_url=ailink_gateway.url)
    with pytest.raises(ailink.AuthenticationError) as gateway_401:
        await flavour(bad, "chat", model="gpt-4o-mini", messages="hi")
    await flavour.close(bad)

    ailink_gateway.script_llm(llm_token, [{"status": 401, "body": {"error": {
        "message": "Incorrect API key provided: sk-planted-provider-key-0001", "type": "invalid_request_error",
        "code": "invalid_api_key"}}}])
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url)
    with pytest.raises(ailink.UpstreamError) as provider_401:
        await flavour(client, "chat", model="gpt-4o-mini", messages="hi")
    await flavour.close(client)

    down = flavour.client(api_key=llm_token, gateway_url=dead_gateway_url, retries=FAST)
    with pytest.raises(ailink.APIConnectionError):
        await flavour(down, "chat", model="gpt-4o-mini", messages="hi")
    await flavour.close(down)

    assert not isinstance(provider_401.value, ailink.AuthenticationError)
    for error in (gateway_401.value, provider_401.value):
        assert isinstance(error, ailink.AIlinkError)  # OmniGate's APIError
        assert error.status_code == 401 and error.detail and error.request_id
    assert "sk-planted" not in str(provider_401.value)  # the provider key is scrubbed from messages


# ---------------------------------------------------------------------------------------------- retries


async def test_retries_and_retry_config(ailink_gateway: EmulatorGateway, llm_token: str, flavour: Flavour) -> None:
    """Both: ``retries=3`` and ``RetryConfig(max_retries=..., backoff_max=...)``; 5xx then success."""
    assert RetryConfig(max_retries=5, backoff_max=20).backoff_cap == 20
    AIlinkClient(api_key=llm_token, gateway_url=ailink_gateway.url, retries=3).close()
    ailink_gateway.script_llm(llm_token, [{"status": 502}, {"status": 500}, {"content": "third"}])
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url, retries=FAST)
    reply = await flavour(client, "chat", model="gpt-4o-mini", messages="go")
    await flavour.close(client)
    assert reply.content == "third"
    assert [row["status_code"] for row in reversed(ailink_gateway.audit())] == [502, 500, 200]


# ---------------------------------------------------------------------------------------------- OpenAI SDK


def test_the_openai_sdk_pointed_at_the_gateway(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    """``client.openai()`` is the official SDK: it keeps its own exceptions (see the README)."""
    client = AIlinkClient(api_key=llm_token, gateway_url=ailink_gateway.url, user_id="u-42")
    oai = client.openai()
    answer = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert answer.choices[0].message.content == "Echo: Hi"
    assert ailink_gateway.audit()[0]["user_id"] == "u-42"
    denied = ailink_gateway.create_token(upstream="llm", policies=[{
        "name": "no-llm", "rules": [{"when": {"always": True}, "then": {"action": "deny"}}]}])
    with pytest.raises(openai.PermissionDeniedError):
        AIlinkClient(api_key=denied, gateway_url=ailink_gateway.url).openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])


async def test_completions_returns_the_raw_dict(ailink_gateway: EmulatorGateway, llm_token: str,
                                                flavour: Flavour) -> None:
    """Both."""
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url)
    raw = await flavour(client, "completions", model="gpt-4o-mini", messages="raw please")
    await flavour.close(client)
    assert isinstance(raw, dict) and raw["choices"][0]["message"]["content"] == "Echo: raw please"
    assert raw["usage"]["total_tokens"] == 2 + 3


# ---------------------------------------------------------------------------------------------- models, metrics


async def test_models_with_provider_and_pricing(ailink_gateway: EmulatorGateway, llm_token: str,
                                                flavour: Flavour) -> None:
    """Both: ``ModelInfo`` cards; ``pricing`` is None for a model without a price."""
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url)
    lines: list[str] = []
    for m in await flavour(client, "models"):
        if m.pricing:
            lines.append(f"{m.id} {m.owned_by} {m.provider} {m.pricing.input_per_1k_usd}")
        else:
            lines.append(f"{m.id} {m.owned_by} (unpriced)")
    ailink_gateway.admin.pricing.set("mock-gpt-mini", input_per_1k_usd=0.5, output_per_1k_usd=1)
    models = {m["id"]: m for m in await flavour(client, "models")}
    await flavour.close(client)
    assert lines == ["mock-gpt ailink-emulator emulator 0.001", "mock-gpt-mini ailink-emulator emulator 0.0001",
                     "mock-embedding ailink-emulator emulator 1e-05"]
    assert models["mock-gpt-mini"]["pricing"]["input_per_1k_usd"] == 0.5


async def test_metrics_totals_equal_the_audit_rows(ailink_gateway: EmulatorGateway, llm_token: str,
                                                   flavour: Flavour) -> None:
    """Both: ``metrics(range="1h")`` totals are the sums of the token's audit rows; the breakdown and the
    timeseries add up to them."""
    ailink_gateway.script_llm(llm_token, [{"status": 500}])
    client = flavour.client(api_key=llm_token, gateway_url=ailink_gateway.url, retries=0, user_id="u-1")
    with pytest.raises(ailink.GatewayError):
        await flavour(client, "chat", model="gpt-4o-mini", messages="fails")
    await flavour(client, "chat", model="gpt-4o-mini", messages="one two three")
    await flavour(client, "chat", model="mock-gpt", messages="four", user_id="u-2")
    await flavour.each(client, "chat_stream", model="gpt-4o-mini", messages="streamed")
    await flavour(client, "embeddings", model="text-embedding-3-small", input=["a b", "c"])
    mx = await flavour(client, "metrics", range="1h")
    await flavour.close(client)

    rows = ailink_gateway.audit()
    assert mx.totals.requests == len(rows) == 5
    assert Decimal(str(mx.totals.cost_usd)) == sum(Decimal(row["estimated_cost_usd"]) for row in rows)
    assert mx.totals.cost_usd > 0
    assert mx.totals.prompt_tokens == sum(row["prompt_tokens"] or 0 for row in rows)
    assert mx.totals.completion_tokens == sum(row["completion_tokens"] or 0 for row in rows)
    assert mx.totals.errors == 1 and mx.totals.error_rate == pytest.approx(1 / 5)
    assert mx.totals.cache_hit_rate == 0.0
    latencies = sorted(row["latency_ms"] for row in rows)
    assert mx.totals.p50_latency_ms == latencies[2] and mx.totals.p95_latency_ms == latencies[4]
    for group in ("provider", "model", "user", "app", "org", "status"):
        part = [row for row in mx.breakdown if row.group == group]
        assert sum(row.requests for row in part) == 5, group
        assert sum(Decimal(str(row.cost_usd)) for row in part) == Decimal(str(mx.totals.cost_usd)), group
    users = {row.key: row.requests for row in mx.breakdown if row.group == "user"}
    assert users == {"u-1": 4, "u-2": 1}
    statuses = {row.key: row.requests for row in mx.breakdown if row.group == "status"}
    assert statuses == {"200": 4, "500": 1}
    assert sum(point.requests for point in mx.timeseries) == 5 and mx.bucket_seconds == 300
    assert len(mx.timeseries) in (12, 13)


async def test_me_and_health(ailink_gateway: EmulatorGateway, flavour: Flavour) -> None:
    """Both: the token's own summary (name, project, policies, spend) and the health dict."""
    token = ailink_gateway.create_token(name="support-bot", upstream="llm", policies=[{
        "name": "business-hours", "rules": [{"when": {"always": True}, "then": {"action": "allow"}}]}])
    client = flavour.client(api_key=token, gateway_url=ailink_gateway.url)
    before = await flavour(client, "me")
    reply = await flavour(client, "chat", model="gpt-4o", messages="hello")
    after = await flavour(client, "me")
    health = await flavour(client, "health")
    await flavour.close(client)
    assert before.name == "support-bot" and before.policies == ["business-hours"] and before.spend.total_usd == 0
    assert before.token_id is not None and token not in before.token_id  # masked
    assert after.spend.total_usd == pytest.approx(reply.cost_usd) and after.spend.today_usd == after.spend.total_usd
    assert after.spend.requests == 1  # the chat: /v1/me and /v1/metrics are answered by the gateway itself
    assert health["status"] == "ok"


def test_gateway_keys_are_virtual_tokens(ailink_gateway: EmulatorGateway) -> None:
    """``create_api_key(name="ci")`` → an admin issues another virtual token (shown once)."""
    key = ailink_gateway.admin.tokens.create(name="ci", upstream_url="http://llm.mock")
    assert key.token_id.startswith("ailink_v1_")
    assert AIlinkClient(api_key=key.token_id, gateway_url=ailink_gateway.url).chat("gpt-4o-mini", "hi").content
