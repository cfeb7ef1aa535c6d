"""Seed 002, the "LLM Gateway SDK" README: every capability, with our names, against the emulator.

The snippets are the seed's, adapted as the README's "Coming from LLM Gateway SDK" table says:
``LLMGateway``/``AsyncLLMGateway`` → ``AIlinkClient``/``AsyncClient``, ``base_url`` →
``gateway_url``, ``api_key`` is a virtual token, ``llm_gateway_sdk.exceptions`` → ``ailink``.
Every other change carries a comment. Scenarios marked "both" run on the sync and the async client.
A 402 (spend caps are not emulated) and a gateway 400/422 on a chat call are exercised offline in
``tests/unit/test_llm.py``; here the emulator produces every other answer of the error snippet.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

import ailink
from ailink import AIlinkClient, AsyncClient
from ailink.testing import EmulatorGateway

from .conftest import Flavour

NO_GPT_4 = {
    "name": "no-gpt-4",
    "rules": [{"when": {"field": "request.body.model", "op": "eq", "value": "gpt-4"},
               "then": {"action": "deny", "message": "gpt-4 is not allowed here"}}],
}
ONE_PER_MINUTE = {
    "name": "one-chat-per-minute",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/chat/completions"},
               "then": {"action": "rate_limit", "window": "60s", "max_requests": 1, "key": "per_token"}}],
}
FAST_RETRIES = ailink.RetryConfig(max_retries=2, backoff_base=0.01, backoff_max=0.05)


def chat_rows(gateway: EmulatorGateway) -> list[dict[str, Any]]:
    return [row for row in gateway.audit() if row["path"] == "/v1/chat/completions"]


# ---------------------------------------------------------------------------------------------- quick start


def test_quick_start(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    client = AIlinkClient(
        gateway_url=ailink_gateway.url,
        api_key=llm_token,
        app_id="my-app",
    )

    # Chat completion
    response = client.chat(
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"}
        ],
        model="gpt-4",
        temperature=0.7,
    )

    assert response.choices[0].message.content == "Echo: Hello!"  # print(...)
    (row,) = chat_rows(ailink_gateway)
    assert row["properties"] == {"app_id": "my-app"} and row["model"] == "gpt-4"


def test_synchronous_client(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    with AIlinkClient(llm_token, gateway_url=ailink_gateway.url) as client:  # the seed's client needs no key
        # Chat completion
        response = client.chat(
            messages=[{"role": "user", "content": "What is Python?"}],
            model="gpt-4",
            max_tokens=100,
        )
        answer = response.choices[0].message.content

        # Embeddings
        embeddings = client.embeddings(
            input="Hello, world!",
            model="text-embedding-ada-002",
        )
        dimension = len(embeddings.data[0].embedding)  # print(f"Embedding dimension: ...")

        # List available models
        models = client.models()
        listed = [model["id"] for model in models]  # print(f"- {model['id']}")

    assert answer == "Echo: What is Python?" and dimension == 8
    assert listed == ["mock-gpt", "mock-gpt-mini", "mock-embedding"]
    assert [row["model"] for row in chat_rows(ailink_gateway)] == ["gpt-4"]


async def test_asynchronous_client(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    async def main() -> str:
        async with AsyncClient(llm_token, gateway_url=ailink_gateway.url) as client:
            response = await client.chat(
                messages=[{"role": "user", "content": "Hello!"}],
                model="gpt-4",
            )
            return str(response.choices[0].message.content)

    assert await main() == "Echo: Hello!"


# ---------------------------------------------------------------------------------------------- streaming


def test_streaming(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    client = AIlinkClient(llm_token, gateway_url=ailink_gateway.url)
    printed: list[str] = []

    # Stream chat completion
    for chunk in client.chat(
        messages=[{"role": "user", "content": "Write a short story."}],
        model="gpt-4",
        stream=True,
    ):
        if chunk.choices[0].delta.content:
            printed.append(chunk.choices[0].delta.content)  # print(..., end="", flush=True)

    assert "".join(printed) == "Echo: Write a short story." and len(printed) > 1
    (row,) = chat_rows(ailink_gateway)
    assert row["is_streaming"] and row["prompt_tokens"] == 4 and row["completion_tokens"] == 5


async def test_async_streaming(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    printed: list[str] = []

    async def main() -> None:
        async with AsyncClient(llm_token, gateway_url=ailink_gateway.url) as client:
            async for chunk in await client.chat(
                messages=[{"role": "user", "content": "Write a poem."}],
                model="gpt-4",
                stream=True,
            ):
                if chunk.choices[0].delta.content:
                    printed.append(chunk.choices[0].delta.content)  # print(..., end="", flush=True)

    await main()
    assert "".join(printed) == "Echo: Write a poem."


async def test_the_streaming_loop_over_a_stream_that_reports_usage(
    ailink_gateway: EmulatorGateway, llm_token: str, flavour: Flavour
) -> None:
    """Both: the final chunk with usage and empty ``choices`` never reaches the seed's loop; usage and
    cost are on the stream object."""
    client = flavour.client(llm_token, ailink_gateway.url)
    if flavour.kind == "sync":
        stream = client.chat(messages=[{"role": "user", "content": "count to three"}], model="gpt-4", stream=True)
        chunks = await asyncio.to_thread(list, stream)
    else:
        stream = await client.chat(messages=[{"role": "user", "content": "count to three"}], model="gpt-4",
                                   stream=True)
        chunks = [chunk async for chunk in stream]
    printed = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(printed) == "Echo: count to three"
    assert stream.usage is not None and stream.usage.total_tokens == 3 + 4
    assert stream.cost_usd == pytest.approx((3 * 0.03 + 4 * 0.06) / 1000)  # gpt-4's default price
    await flavour.close(client)


# ---------------------------------------------------------------------------------------------- errors


async def test_error_handling(ailink_gateway: EmulatorGateway, flavour: Flavour) -> None:
    """Both: the seed's except-chain around ``chat()`` catches what the gateway answers."""
    denied = ailink_gateway.create_token(upstream="llm", policies=[NO_GPT_4])
    limited = ailink_gateway.create_token(upstream="llm", policies=[ONE_PER_MINUTE])
    caught: list[str] = []

    async def attempt(token: str) -> None:
        client = flavour.client(token, ailink_gateway.url, retries=0)
        try:
            await flavour(client, "chat", messages=[{"role": "user", "content": "Hello"}], model="gpt-4")
        except ailink.AuthenticationError as e:
            caught.append(f"Auth failed: {e}")
        except ailink.RateLimitError as e:
            caught.append(f"Rate limited. Retry after: {e.retry_after}s")
        except ailink.PolicyDeniedError as e:
            caught.append(f"Policy denied: {e.policy_name}")
        except ailink.BudgetExceededError as e:
            caught.append(f"Budget exceeded: {e.limit} vs {e.current}")
        except ailink.ValidationError as e:
            caught.append(f"Invalid request: {e}")
        else:
            caught.append("ok")
        finally:
            await flavour.close(client)

    await attempt("ailink_v1_not_a_real_token")
    await attempt(denied)
    await attempt(limited)
    await attempt(limited)
    assert caught[0].startswith("Auth failed: Invalid or missing API token")
    assert caught[1] == "Policy denied: no-gpt-4"
    assert caught[2] == "ok"
    assert caught[3].startswith("Rate limited. Retry after: ") and float(caught[3].split(": ")[1][:-1]) > 0


async def test_a_503_then_200_is_retried_once(ailink_gateway: EmulatorGateway, llm_token: str,
                                              flavour: Flavour) -> None:
    """Both: the client's retry policy applies to ``chat()``, with a fresh idempotency key per attempt
    (the gateway stored the 503 under the first key and would replay it)."""
    ailink_gateway.script_llm(llm_token, [{"status": 503, "body": {"error": {"message": "overloaded"}}},
                                          {"content": "second time lucky"}])
    client = flavour.client(llm_token, ailink_gateway.url, retries=FAST_RETRIES)
    response = await flavour(client, "chat", messages="Hello", model="gpt-4")
    await flavour.close(client)
    assert response.content == "second time lucky"
    rows = chat_rows(ailink_gateway)
    assert sorted(row["status_code"] for row in rows) == [200, 503]
    assert len({row["idempotency_key"] for row in rows}) == 2


async def test_without_retries_the_503_is_a_typed_upstream_error(ailink_gateway: EmulatorGateway, llm_token: str,
                                                                 flavour: Flavour) -> None:
    ailink_gateway.script_llm(llm_token, [{"status": 503, "body": {"error": {"message": "overloaded"}}}])
    client = flavour.client(llm_token, ailink_gateway.url, retries=0)
    with pytest.raises(ailink.UpstreamError) as info:
        await flavour(client, "chat", messages="Hello", model="gpt-4")
    await flavour.close(client)
    assert info.value.status_code == 503 and "overloaded" in info.value.detail and not info.value.ambiguous


# ---------------------------------------------------------------------------------------------- app, org, headers


async def test_app_and_org_at_client_level_and_per_request(ailink_gateway: EmulatorGateway, llm_token: str,
                                                           flavour: Flavour) -> None:
    """Both: ``app_id``/``org_id`` (and ``user_id``) reach the audit rows and the metrics breakdown."""
    # Set app_id and org_id at client level
    client = flavour.client(
        gateway_url=ailink_gateway.url,
        api_key=llm_token,
        app_id="my-application",
        org_id="my-organization",
    )

    await flavour(client, "chat", messages=[{"role": "user", "content": "Hello"}], model="gpt-4")
    # Or override per request
    await flavour(client, "chat",
                  messages=[{"role": "user", "content": "Hello"}],
                  model="gpt-4",
                  app_id="different-app",
                  )
    metrics = await flavour(client, "metrics", range="1h")
    await flavour.close(client)

    first, second = sorted(chat_rows(ailink_gateway), key=lambda row: row["created_at"])
    assert first["properties"] == {"app_id": "my-application"} and first["tenant_id"] == "my-organization"
    assert second["properties"] == {"app_id": "different-app"} and second["tenant_id"] == "my-organization"
    apps = {row.key: row.requests for row in metrics.breakdown if row.group == "app"}
    orgs = {row.key: row.requests for row in metrics.breakdown if row.group == "org"}
    assert apps == {"my-application": 1, "different-app": 1} and orgs == {"my-organization": 2}


def test_custom_headers(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    client = AIlinkClient(
        llm_token,
        gateway_url=ailink_gateway.url,
        headers={
            "X-Custom-Header": "custom-value",
            "X-Request-ID": "req-123",
        },
    )
    client.chat(messages="Hello", model="gpt-4")
    (row,) = chat_rows(ailink_gateway)
    assert row["external_request_id"] == "req-123"


# ---------------------------------------------------------------------------------------------- reference


async def test_health_and_close(ailink_gateway: EmulatorGateway, llm_token: str, flavour: Flavour) -> None:
    client = flavour.client(llm_token, ailink_gateway.url, timeout=60)
    report = await flavour(client, "health")
    await flavour.close(client)
    assert report["status"] == "ok" and report["gateway_url"] == ailink_gateway.url


async def test_cost_of_a_call_is_its_usage_times_the_price_table(ailink_gateway: EmulatorGateway, llm_token: str,
                                                                 flavour: Flavour) -> None:
    """Both: ``resp.cost_usd`` = prompt tokens × input price + completion tokens × output price (per
    1,000), for the default table and for a price the admin set; the audit row and the session agree."""
    admin = ailink_gateway.admin
    client = flavour.client(llm_token, ailink_gateway.url)
    price = admin.pricing.get("gpt-4")
    with ailink.trace(session_id=f"cost-{flavour.kind}"):
        first = await flavour(client, "chat", messages="What does this cost?", model="gpt-4")
        admin.pricing.set("gpt-4", input_per_1k_usd=1.5, output_per_1k_usd=4.0)
        second = await flavour(client, "chat", messages="And now?", model="gpt-4")
    await flavour.close(client)

    def expected(reply: Any, input_price: float, output_price: float) -> Decimal:
        return (Decimal(str(input_price)) * reply.usage.prompt_tokens
                + Decimal(str(output_price)) * reply.usage.completion_tokens) / 1000

    assert first.usage.prompt_tokens == 4 and first.usage.completion_tokens == 5
    assert Decimal(str(first.cost_usd)) == expected(first, price.input_per_1k_usd, price.output_per_1k_usd)
    assert Decimal(str(second.cost_usd)) == expected(second, 1.5, 4.0)
    rows = sorted(chat_rows(ailink_gateway), key=lambda row: row["created_at"])
    assert [Decimal(row["estimated_cost_usd"]) for row in rows] == [Decimal(str(first.cost_usd)),
                                                                     Decimal(str(second.cost_usd))]
    session = ailink_gateway.session(f"cost-{flavour.kind}")
    assert Decimal(session["total_cost_usd"]) == Decimal(str(first.cost_usd)) + Decimal(str(second.cost_usd))
    assert session["total_prompt_tokens"] == 4 + 2 and session["total_completion_tokens"] == 5 + 3
