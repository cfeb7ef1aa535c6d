"""The mock LLM: echo, per-token scripting (text, tool calls, errors), streaming, embeddings, models."""

from __future__ import annotations

import json

import pytest

from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client

MSG = {"model": "mock-gpt", "messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": "What is 2+2?"}]}


def test_echo_by_default_and_deterministic(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    with client(ailink_gateway) as c:
        first = c.post("/v1/chat/completions", json=MSG, headers=bearer(token)).json()
        again = c.post("/v1/chat/completions", json=MSG, headers=bearer(token, **{"Cache-Control": "no-cache"})).json()
    assert first["object"] == "chat.completion"
    assert first["choices"][0]["message"] == {"role": "assistant", "content": "Echo: What is 2+2?", "refusal": None}
    assert first["choices"][0]["finish_reason"] == "stop"
    assert again["choices"] == first["choices"] and again["usage"] == first["usage"]  # the same answer,
    assert again["id"] != first["id"]  # under a fresh id (a cache hit would repeat it)
    usage = first["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_scripted_responses_per_token(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    other = ailink_gateway.create_token(name="other", upstream="llm")
    ailink_gateway.script_llm(token, [
        {"tool_calls": [{"id": "call_a", "name": "stripe_api", "arguments": {"amount": 5000}}]},
        {"content": "Charged."},
    ])
    uncached = {"Cache-Control": "no-cache"}  # the same request twice: the gateway's cache would answer it
    with client(ailink_gateway) as c:
        tool = c.post("/v1/chat/completions", json={**MSG, "tools": [{"type": "function", "function": {
            "name": "stripe_api", "parameters": {"type": "object"}}}]}, headers=bearer(token)).json()
        unaffected = c.post("/v1/chat/completions", json=MSG, headers=bearer(other)).json()
        text = c.post("/v1/chat/completions", json=MSG, headers=bearer(token, **uncached)).json()
        echo = c.post("/v1/chat/completions", json=MSG, headers=bearer(token, **uncached)).json()
    choice = tool["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["id"] == "call_a" and call["type"] == "function"
    assert call["function"]["name"] == "stripe_api" and json.loads(call["function"]["arguments"]) == {"amount": 5000}
    assert unaffected["choices"][0]["message"]["content"].startswith("Echo:")
    assert text["choices"][0]["message"]["content"] == "Charged."
    assert echo["choices"][0]["message"]["content"] == "Echo: What is 2+2?"


def test_scripted_error_and_bad_script(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"status": 429, "body": {"error": {"message": "slow down",
                                                                          "type": "rate_limit"}}}])
    with client(ailink_gateway) as c:
        resp = c.post("/v1/chat/completions", json=MSG, headers=bearer(token))
    assert resp.status_code == 429 and resp.json()["error"]["message"] == "slow down"
    with admin(ailink_gateway) as a:
        assert a.post("/api/v1/emulator/llm/script", json={"token_id": "nope", "responses": []}).status_code == 422
        assert a.post("/api/v1/emulator/llm/script", json={"token_id": token, "responses": [{}]}).status_code == 422


def test_streamed_tool_calls(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"tool_calls": [{"name": "lookup", "arguments": {"id": "cus_001"}}]}])
    with client(ailink_gateway) as c:
        resp = c.post("/v1/chat/completions", json={**MSG, "stream": True}, headers=bearer(token))
    events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in ch for ch in chunks)  # no include_usage → no usage chunk
    args = "".join(tc["function"].get("arguments", "") for ch in chunks
                   for tc in ch["choices"][0]["delta"].get("tool_calls", []))
    assert json.loads(args) == {"id": "cus_001"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_embeddings_and_models(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    with client(ailink_gateway) as c:
        one = c.post("/v1/embeddings", json={"model": "mock-embedding", "input": "hello"}, headers=bearer(token)).json()
        batch = c.post("/v1/embeddings", json={"model": "m", "input": ["hello", "world"], "dimensions": 16},
                       headers=bearer(token)).json()
        models = c.get("/v1/models", headers=bearer(token)).json()
    vec = one["data"][0]["embedding"]
    assert len(vec) == 8 and abs(sum(v * v for v in vec) - 1) < 1e-3
    assert [len(d["embedding"]) for d in batch["data"]] == [16, 16]
    assert batch["data"][0]["embedding"][:8] != batch["data"][1]["embedding"][:8]
    assert {m["id"] for m in models["data"]} >= {"mock-gpt"}


def test_openai_sdk_against_the_emulator(ailink_gateway: EmulatorGateway) -> None:
    openai = pytest.importorskip("openai")
    token = ailink_gateway.create_token(upstream="llm")
    sdk = openai.OpenAI(base_url=ailink_gateway.url + "/v1", api_key=token, max_retries=0)
    answer = sdk.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Echo: hi"
    stream = sdk.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "a b c"}],
                                         stream=True, stream_options={"include_usage": True})
    parts, usage = [], None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts) == "Echo: a b c" and usage is not None and usage.total_tokens > 0
    emb = sdk.embeddings.create(model="mock-embedding", input="x")
    assert len(emb.data[0].embedding) == 8
