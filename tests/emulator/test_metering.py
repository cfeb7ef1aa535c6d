"""The emulator's LLM metering on the wire (``_metering``): the cost header, ``usage.cost_usd`` in the
stream's usage chunk, Anthropic streams, the models list, the stored replay, and both profiles."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from ailink.emulator._metering import cost_usd, decimal_text, price_of, provider_of
from ailink.emulator._store import Store
from ailink.testing import EmulatorGateway

from .conftest import bearer, client

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}]}
GPT_4O_MINI = (Decimal("0.00015"), Decimal("0.0006"))


def expected(prompt: int, completion: int, price: tuple[Decimal, Decimal] = GPT_4O_MINI) -> Decimal:
    return (price[0] * prompt + price[1] * completion) / 1000


def data_events(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def test_a_buffered_chat_answer_says_its_cost_and_the_audit_keeps_it(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    with client(ailink_gateway) as c:
        answer = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token, **{"X-AIlink-Idempotency-Key": "k1"}))
        replay = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token, **{"X-AIlink-Idempotency-Key": "k1"}))
    usage = answer.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (3, 4)
    assert Decimal(answer.headers["x-ailink-cost-usd"]) == expected(3, 4)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["x-ailink-cost-usd"] == answer.headers["x-ailink-cost-usd"]  # stored as sent
    first, replayed = reversed(ailink_gateway.audit())
    assert (first["prompt_tokens"], first["completion_tokens"], first["provider"]) == (3, 4, "openai")
    assert Decimal(first["estimated_cost_usd"]) == expected(3, 4)
    assert replayed["policy_result"] == "replayed" and replayed["estimated_cost_usd"] == "0"  # billed once


def test_the_usage_chunk_of_a_stream_carries_the_cost(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with client(ailink_gateway) as c:
        answer = c.post("/v1/chat/completions", json=body, headers=bearer(token))
    events = data_events(answer.text)
    assert answer.text.rstrip().endswith("data: [DONE]") and "x-ailink-cost-usd" not in answer.headers
    (usage_chunk,) = [e for e in events if e.get("usage")]
    assert usage_chunk["choices"] == [] and Decimal(str(usage_chunk["usage"]["cost_usd"])) == expected(3, 4)
    assert all("cost_usd" not in (e.get("usage") or {}) for e in events if e is not usage_chunk)
    (row,) = ailink_gateway.audit()
    assert row["is_streaming"] and Decimal(row["estimated_cost_usd"]) == expected(3, 4)


def test_an_anthropic_stream_is_priced_from_both_usage_events(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    message = {"model": "claude-3-5-sonnet-latest", "max_tokens": 64, "stream": True,
               "messages": [{"role": "user", "content": "one two three"}]}
    with client(ailink_gateway) as c:
        streamed = c.post("/v1/messages", json=message, headers=bearer(token))
        whole = c.post("/v1/messages", json={**message, "stream": False}, headers=bearer(token))
    usage = whole.json()["usage"]
    price = (Decimal("0.003"), Decimal("0.015"))
    assert Decimal(whole.headers["x-ailink-cost-usd"]) == expected(usage["input_tokens"], usage["output_tokens"], price)
    costs = [e.get("usage", e.get("message", {}).get("usage", {})).get("cost_usd") for e in data_events(streamed.text)]
    assert Decimal(str([c for c in costs if c is not None][-1])) == Decimal(whole.headers["x-ailink-cost-usd"])
    stream_row, whole_row = reversed(ailink_gateway.audit())
    assert stream_row["estimated_cost_usd"] == whole_row["estimated_cost_usd"] != "0"
    assert stream_row["prompt_tokens"] == usage["input_tokens"] and stream_row["provider"] == "anthropic"


def test_errors_and_other_paths_cost_nothing(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"status": 500}])
    with client(ailink_gateway) as c:
        failed = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        embedded = c.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": ["a b c"]},
                          headers=bearer(token))
    assert failed.status_code == 500 and "x-ailink-cost-usd" not in failed.headers
    assert Decimal(embedded.headers["x-ailink-cost-usd"]) == expected(3, 0, (Decimal("0.00002"), Decimal(0)))
    embed_row, failed_row = ailink_gateway.audit()
    assert failed_row["estimated_cost_usd"] == "0" and failed_row["prompt_tokens"] is None
    assert embed_row["completion_tokens"] == 0


def test_the_models_list_is_enriched_only_in_the_default_profile(
    ailink_gateway: EmulatorGateway, ailink_gateway_real: EmulatorGateway
) -> None:
    for gateway, enriched in ((ailink_gateway, True), (ailink_gateway_real, False)):
        token = gateway.create_token(upstream="llm")
        with client(gateway) as c:
            models = c.get("/v1/models", headers=bearer(token)).json()["data"]
            chat = c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        by_id = {m["id"]: m for m in models}
        if enriched:
            assert by_id["mock-gpt"]["pricing"] == {"input_per_1k_usd": 0.001, "output_per_1k_usd": 0.002,
                                                    "currency": "USD"}
            assert by_id["mock-gpt"]["provider"] == "emulator"
            assert "x-ailink-cost-usd" in chat.headers
        else:
            assert "pricing" not in by_id["mock-gpt"] and "x-ailink-cost-usd" not in chat.headers
        chat_row = next(r for r in gateway.audit() if r["path"] == "/v1/chat/completions")
        assert Decimal(chat_row["estimated_cost_usd"]) == expected(3, 4)  # both profiles meter the audit


@pytest.mark.parametrize(("model", "resolved"), [
    ("gpt-4o", "gpt-4o"), ("gpt-4o-2024-08-06", "gpt-4o"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"), ("gpt-4o2", None), ("unknown", None), ("", None),
])
def test_price_resolution(model: str, resolved: str | None) -> None:
    store = Store()
    from ailink.emulator import _metering

    _metering.install(store)
    entry = price_of(store, model)
    assert (entry["model"] if entry else None) == resolved


def test_cost_arithmetic_and_decimal_text() -> None:
    price = {"input_per_1k_usd": 0.00015, "output_per_1k_usd": 0.0006}
    assert Decimal(str(cost_usd(price, 1000, 1000))) == Decimal("0.00075")
    assert cost_usd(None, 10, 10) == 0.0 and cost_usd(price, 0, 0) == 0.0
    assert decimal_text(1e-7) == "0.0000001" and decimal_text(0.0) == "0" and decimal_text(None) == "0"
    assert provider_of("claude-3-opus") == "anthropic" and provider_of("my-model") is None


APPROVE_CHATS: dict[str, Any] = {
    "name": "chats-need-approval",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/chat/completions"},
               "then": {"action": "require_approval", "timeout": "10m"}}],
}


@pytest.mark.parametrize("stream", [False, True])
def test_an_approved_llm_call_the_gateway_performs_is_priced_once(ailink_gateway: EmulatorGateway,
                                                                   stream: bool) -> None:
    """An approved call performed by the gateway from its store (the 202 flow) is metered like a proxied one."""
    token = ailink_gateway.create_token(upstream="llm", policies=[APPROVE_CHATS])
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}} if stream else CHAT
    with client(ailink_gateway) as c:
        parked = c.post("/v1/chat/completions", json=body, headers=bearer(token, Prefer="respond-async"))
        assert parked.status_code == 202
        approval_id = parked.json()["approval_id"]
        ailink_gateway.decide(approval_id, "approved")
        result = c.get(f"/v1/approvals/{approval_id}/result", headers=bearer(token))
        again = c.get(f"/v1/approvals/{approval_id}/result", headers=bearer(token))
    assert result.status_code == 200 and again.content == result.content
    if stream:
        (usage_chunk,) = [e for e in data_events(result.text) if e.get("usage")]
        assert Decimal(str(usage_chunk["usage"]["cost_usd"])) == expected(3, 4)
    else:
        assert Decimal(result.headers["x-ailink-cost-usd"]) == expected(3, 4)
    executed = [row for row in ailink_gateway.audit() if row["policy_result"] == "approved"]
    assert len(executed) == 1  # performed, and billed, once
    (row,) = executed
    assert (row["prompt_tokens"], row["completion_tokens"], row["provider"], row["model"]) == \
        (3, 4, "openai", "gpt-4o-mini")
    assert Decimal(row["estimated_cost_usd"]) == expected(3, 4)
