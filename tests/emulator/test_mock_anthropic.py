"""The Anthropic-shaped ``POST /v1/messages`` of the mock LLM, through the gateway."""

from __future__ import annotations

import json

from ailink.testing import EmulatorGateway

from .conftest import bearer, client

MSG = {"model": "claude-3-5-sonnet", "max_tokens": 64, "system": "be brief",
       "messages": [{"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}]}


def sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_messages_echo_is_deterministic(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    with client(ailink_gateway) as c:
        first = c.post("/v1/messages", json=MSG, headers={**bearer(token), "anthropic-version": "2023-06-01"})
        second = c.post("/v1/messages", json=MSG, headers=bearer(token))
    body = first.json()
    assert first.status_code == 200 and body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "Echo: What is 2+2?"}]
    assert body["stop_reason"] == "end_turn" and body["model"] == "claude-3-5-sonnet"
    assert body["id"].startswith("msg_") and body["id"] == second.json()["id"]
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] == 4


def test_messages_scripted_tool_use_and_error(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [
        {"content": "Checking.", "tool_calls": [{"id": "toolu_a", "name": "get_weather",
                                                 "arguments": {"city": "Paris"}}]},
        {"status": 529, "body": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}},
    ])
    with client(ailink_gateway) as c:
        tool = c.post("/v1/messages", json=MSG, headers=bearer(token)).json()
        busy = c.post("/v1/messages", json=MSG, headers=bearer(token, **{"Cache-Control": "no-cache"}))
    assert tool["stop_reason"] == "tool_use"
    assert tool["content"] == [{"type": "text", "text": "Checking."},
                               {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}}]
    assert busy.status_code == 529 and busy.json()["error"]["type"] == "overloaded_error"


def test_messages_stream_events(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"content": "Two plus two", "tool_calls": [{"name": "calc",
                                                                                 "arguments": {"x": 4}}]}])
    with client(ailink_gateway) as c:
        resp = c.post("/v1/messages", json={**MSG, "stream": True}, headers=bearer(token))
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.text)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta"  # type: ignore[index]
                   and d["delta"]["type"] == "text_delta")  # type: ignore[index]
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"  # type: ignore[index]
                      and d["delta"]["type"] == "input_json_delta")  # type: ignore[index]
    assert text == "Two plus two" and json.loads(partial) == {"x": 4}
    assert events[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


def test_messages_bad_input_and_auth(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    with client(ailink_gateway) as c:
        for bad in ({**MSG, "max_tokens": 0}, {**MSG, "messages": []}, {k: v for k, v in MSG.items() if k != "model"},
                    {**MSG, "messages": [{"role": "system", "content": "x"}]}):
            resp = c.post("/v1/messages", json=bad, headers=bearer(token))
            assert resp.status_code == 400 and resp.json()["type"] == "error", bad
            assert resp.json()["error"]["type"] == "invalid_request_error"
        assert c.post("/v1/messages", content=b"{", headers=bearer(token)).status_code == 400
        unauth = c.post("/v1/messages", json=MSG, headers={"x-api-key": token})
    assert unauth.status_code == 401 and unauth.json()["error"]["code"] == "token_not_found"
