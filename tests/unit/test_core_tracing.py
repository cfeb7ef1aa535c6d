"""Protocol §2: headers added at the transport, from contextvars, across threads, tasks and openai."""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import threading
from typing import Any

import httpx
import openai
import pytest
import respx

import ailink
from ailink._tracing import trace_headers, trace_id_for

from .helpers import GATEWAY, TOKEN, UPSTREAM_KEY, Driver, Recorder

REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
SPAN = re.compile(r"^[0-9a-f]{16}$")


def _traceparent(request: httpx.Request) -> tuple[str, str]:
    match = TRACEPARENT.match(request.headers["traceparent"])
    assert match, request.headers["traceparent"]
    return match.group(1), match.group(2)


async def test_headers_without_trace(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder, agent_name="billing-agent")
    await driver.call(client, "GET", "/v1/customers")
    await driver.call(client, "GET", "/v1/customers")
    first, second = recorder.requests
    assert first.headers["x-ailink-agent-name"] == "billing-agent"
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert REQUEST_ID.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    for name in ("x-session-id", "traceparent", "x-parent-span-id", "x-properties"):
        assert name not in first.headers


async def test_user_agent_and_both_header_generations(driver: Driver) -> None:
    """Every request says ``User-Agent: ailink-python/<version>`` (the real gateway's agent-name
    fallback) unless the caller names one; caller-set branded headers go out in both spellings."""
    recorder = Recorder()
    client = driver.client(recorder, agent_name="billing-agent")
    await driver.call(client, "POST", "/v1/charges", json={}, headers={"X-AIlink-Guardrails": "pii_redaction",
                                                                         "x-ailink-no-cache": "true"})
    await driver.call(client, "GET", "/v1/customers", headers={"user-agent": "my-agent/2"})
    plain, own = recorder.requests
    assert plain.headers.get_list("user-agent") == [f"ailink-python/{ailink.__version__}"]
    assert own.headers.get_list("user-agent") == ["my-agent/2"]  # the caller's, once
    for generation in ("ailink", "trueflow"):
        assert plain.headers[f"x-{generation}-agent-name"] == "billing-agent"
        assert plain.headers[f"x-{generation}-guardrails"] == "pii_redaction"
        assert plain.headers[f"x-{generation}-no-cache"] == "true"
        assert plain.headers[f"x-{generation}-idempotency-key"]
    assert "idempotency-key" not in plain.headers  # the real gateway's retry switch (protocol §10.2)


async def test_trace_block_headers(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder, agent_name="billing-agent")
    with ailink.trace("conv-abc123", properties={"env": "prod", "n": 1}, user_id="user-7") as ctx:
        await driver.call(client, "POST", "/v1/charges", json={})
        await driver.call(client, "GET", "/v1/customers")
    a, b = recorder.requests
    for request in (a, b):
        assert request.headers["x-session-id"] == "conv-abc123"
        assert request.headers["x-parent-span-id"] == ctx.parent_span_id
        assert SPAN.match(request.headers["x-parent-span-id"])
        assert json.loads(request.headers["x-properties"]) == {"env": "prod", "n": 1}
        assert request.headers["x-user-id"] == "user-7"
        assert request.headers["x-ailink-agent-name"] == "billing-agent"
        assert REQUEST_ID.match(request.headers["x-request-id"])
    (trace_a, span_a), (trace_b, span_b) = _traceparent(a), _traceparent(b)
    assert trace_a == trace_b == trace_id_for("conv-abc123")
    assert span_a != span_b
    assert span_a != ctx.parent_span_id


async def test_client_trace_scope_yields_the_client(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    with client.trace(session_id="conv-1", properties={"env": "prod"}) as traced:
        assert traced is client
        await driver.call(traced, "GET", "/v1/customers")
    async with client.trace(session_id="conv-2") as traced:
        await driver.call(traced, "GET", "/v1/customers")
    await driver.call(client, "GET", "/v1/customers")
    assert recorder.header("x-session-id") == ["conv-1", "conv-2", None]
    assert json.loads(recorder.requests[0].headers["x-properties"]) == {"env": "prod"}


async def test_nested_trace_blocks(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    with ailink.trace("sess-outer", properties={"env": "prod", "step": "plan"}) as outer:
        with ailink.trace(properties={"step": "act", "tool": "payments"}) as inner:
            assert inner.session_id == "sess-outer"
            assert inner.parent_span_id != outer.parent_span_id
            await driver.call(client, "GET", "/inner")
            with ailink.trace(parent_span_id="00000000000000aa") as pinned:
                assert pinned.parent_span_id == "00000000000000aa"
                await driver.call(client, "GET", "/pinned")
        await driver.call(client, "GET", "/outer")
        with ailink.trace("sess-other") as other:
            assert other.session_id == "sess-other"
            await driver.call(client, "GET", "/other")
    inner_req, pinned_req, outer_req, other_req = recorder.requests
    assert inner_req.headers["x-session-id"] == outer_req.headers["x-session-id"] == "sess-outer"
    inner_props = json.loads(inner_req.headers["x-properties"])
    # the inner block records its ancestry (outer span, then its own): the session view nests it
    assert inner_props.pop("span_path") == [[outer.parent_span_id, "trace"], [inner.parent_span_id, "trace"]]
    assert inner_props == {"env": "prod", "step": "act", "tool": "payments"}
    pinned_path = json.loads(pinned_req.headers["x-properties"])["span_path"]
    assert [span for span, _ in pinned_path] == [outer.parent_span_id, inner.parent_span_id, "00000000000000aa"]
    assert json.loads(outer_req.headers["x-properties"]) == {"env": "prod", "step": "plan"}  # single: no path
    assert "span_path" not in json.loads(other_req.headers.get("x-properties", "{}"))  # another session
    assert inner_req.headers["x-parent-span-id"] == inner.parent_span_id
    assert pinned_req.headers["x-parent-span-id"] == "00000000000000aa"
    assert outer_req.headers["x-parent-span-id"] == outer.parent_span_id
    assert _traceparent(inner_req)[0] == _traceparent(outer_req)[0] == trace_id_for("sess-outer")
    assert _traceparent(other_req)[0] == trace_id_for("sess-other")
    assert ailink.current_trace() is None


def test_trace_without_session_generates_one() -> None:
    with ailink.trace() as ctx:
        assert ctx.session_id and ctx.session_id.startswith("sess_")
        assert ailink.current_trace() is ctx
    assert ailink.current_trace() is None


def test_trace_context_survives_exceptions() -> None:
    with pytest.raises(RuntimeError), ailink.trace("s1"):
        raise RuntimeError("x")
    assert ailink.current_trace() is None


def test_across_threads_with_context_copies() -> None:
    recorder = Recorder()
    client = ailink.AIlinkClient(TOKEN, GATEWAY, transport=recorder.transport)
    seen: dict[str, Any] = {}

    def worker(label: str) -> None:
        client.get(f"/{label}")

    with ailink.trace("thread-session", properties={"k": "v"}) as ctx:
        copied = threading.Thread(target=contextvars.copy_context().run, args=(worker, "copied"))
        copied.start()
        copied.join()
        seen["span"] = ctx.parent_span_id
    plain = threading.Thread(target=worker, args=("plain",))
    plain.start()
    plain.join()
    by_path = {r.url.path: r for r in recorder.requests}
    assert by_path["/copied"].headers["x-session-id"] == "thread-session"
    assert by_path["/copied"].headers["x-parent-span-id"] == seen["span"]
    assert "x-session-id" not in by_path["/plain"].headers


async def test_async_tasks_keep_their_sessions_apart() -> None:
    both_started = asyncio.Event()
    started: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        started.append(request.url.path)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 5)  # both requests are in flight together
        return httpx.Response(200, json={"session": request.headers.get("x-session-id")})

    client = ailink.AsyncClient(TOKEN, GATEWAY, transport=httpx.MockTransport(handler))

    async def task(session: str) -> tuple[str, str]:
        with ailink.trace(session, properties={"task": session}):
            await asyncio.sleep(0)
            first = await client.get(f"/{session}/1")
            second = await client.get(f"/{session}/2")
        return first.json()["session"], second.json()["session"]

    results = await asyncio.gather(task("session-a"), task("session-b"))
    assert results == [("session-a", "session-a"), ("session-b", "session-b")]
    assert ailink.current_trace() is None


def test_explicit_headers_are_not_overwritten() -> None:
    recorder = Recorder()
    client = ailink.AIlinkClient(TOKEN, GATEWAY, transport=recorder.transport, agent_name="a")
    with ailink.trace("s"):
        client.get("/x", headers={"X-Request-Id": "req_mine", "X-Session-Id": "explicit", "X-AIlink-Agent-Name": "b"})
    request = recorder.requests[0]
    assert request.headers["x-request-id"] == "req_mine"
    assert request.headers["x-session-id"] == "explicit"
    assert request.headers["x-ailink-agent-name"] == "b"


def test_context_provider_is_used_without_a_trace_block() -> None:
    recorder = Recorder()
    provided = ailink.TraceContext(session_id="from-framework", parent_span_id="1234567890abcdef",
                                   properties={"framework": "x"}, tool_name="payments_api")
    config = ailink.AIlinkClient(TOKEN, GATEWAY, agent_name="agent").settings
    with ailink.http_client(config, context_provider=lambda: provided, transport=recorder.transport) as http:
        http.get(GATEWAY + "/a")
        with ailink.trace("block-wins"):
            http.get(GATEWAY + "/b")
    a, b = recorder.requests
    assert a.headers["x-session-id"] == "from-framework"
    assert a.headers["x-parent-span-id"] == "1234567890abcdef"
    assert a.headers["x-ailink-tool-name"] == "payments_api"
    assert a.headers["x-ailink-agent-name"] == "agent"
    assert b.headers["x-session-id"] == "block-wins"


def test_trace_headers_are_ascii_and_bounded() -> None:
    context = ailink.TraceContext(session_id="sé" * 300, properties={"big": "x" * 5000}, agent_name="agént")
    headers = trace_headers(context)
    assert all(value.isascii() for value in headers.values())
    assert len(headers["X-Session-Id"]) <= 255
    assert "X-Properties" not in headers  # too large: dropped rather than sent truncated (invalid JSON)
    small = trace_headers(ailink.TraceContext(session_id="s", properties={"emoji": "✓"}))
    assert json.loads(small["X-Properties"]) == {"emoji": "✓"}


def test_span_ids() -> None:
    assert SPAN.match(ailink.new_span_id())
    assert ailink.new_span_id() != ailink.new_span_id()
    assert ailink.span_id_from("run-1") == ailink.span_id_from("run-1")
    assert ailink.span_id_from("run-1") != ailink.span_id_from("run-2")
    assert SPAN.match(ailink.span_id_from("run-1"))


async def test_derived_clients_add_headers_and_share_connections(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    byok = client.with_upstream_key(UPSTREAM_KEY)
    guarded = client.with_guardrails(["pii_redaction", " prompt_injection "])
    await driver.call(byok, "POST", "/v1/chat/completions", json={})
    await driver.call(guarded, "GET", "/v1/models")
    await driver.call(client, "GET", "/v1/models")
    a, b, c = recorder.requests
    assert a.headers["x-real-authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert a.headers["authorization"] == f"Bearer {TOKEN}"
    assert b.headers["x-ailink-guardrails"] == "pii_redaction,prompt_injection"
    assert "x-real-authorization" not in c.headers and "x-ailink-guardrails" not in c.headers
    assert byok._http is client._http
    assert UPSTREAM_KEY not in repr(byok) and TOKEN not in repr(byok)


# -- client.openai() ------------------------------------------------------------------------

_COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def test_openai_sync_carries_session_headers() -> None:
    client = ailink.AIlinkClient(TOKEN, GATEWAY, agent_name="llm-agent", approval_timeout=120)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(GATEWAY + "/v1/chat/completions").mock(return_value=httpx.Response(200, json=_COMPLETION))
        oai = client.openai()
        assert oai.max_retries == 0
        with ailink.trace("llm-session", properties={"node": "agent"}) as ctx:
            answer = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
            client.chat("gpt-4o-mini", "again")
    assert answer.choices[0].message.content == "hi"
    first, second = (call.request for call in route.calls)
    for request in (first, second):
        assert request.headers["x-session-id"] == "llm-session"
        assert request.headers["x-parent-span-id"] == ctx.parent_span_id
        assert json.loads(request.headers["x-properties"]) == {"node": "agent"}
        assert request.headers["x-ailink-agent-name"] == "llm-agent"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert REQUEST_ID.match(request.headers["x-request-id"])
        assert request.headers["x-trueflow-idempotency-key"] == request.headers["x-ailink-idempotency-key"]
        assert "idempotency-key" not in request.headers
        assert request.extensions["timeout"]["read"] > 120  # may be held while a human decides
    assert _traceparent(first)[1] != _traceparent(second)[1]
    assert json.loads(second.content)["messages"] == [{"role": "user", "content": "again"}]


def test_openai_does_not_retry_408_or_500() -> None:
    client = ailink.AIlinkClient(TOKEN, GATEWAY)
    with respx.mock() as mock:
        route = mock.post(GATEWAY + "/v1/chat/completions").mock(
            return_value=gateway_408()
        )
        with pytest.raises(openai.APIStatusError):
            client.openai().chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert route.call_count == 1


def gateway_408() -> httpx.Response:
    return httpx.Response(408, json={"error": {"code": "approval_timeout", "message": "no decision",
                                               "type": "timeout_error"}})


async def test_openai_async_carries_session_headers_per_task() -> None:
    client = ailink.AsyncClient(TOKEN, GATEWAY, agent_name="llm-agent")
    with respx.mock() as mock:
        route = mock.post(GATEWAY + "/v1/chat/completions").mock(return_value=httpx.Response(200, json=_COMPLETION))
        oai = client.openai()
        assert oai.max_retries == 0

        async def one(session: str) -> None:
            with ailink.trace(session):
                await oai.chat.completions.create(model="m", messages=[{"role": "user", "content": session}])

        await asyncio.gather(one("s-1"), one("s-2"))
    sessions = {json.loads(c.request.content)["messages"][0]["content"]: c.request.headers["x-session-id"]
                for c in route.calls}
    assert sessions == {"s-1": "s-1", "s-2": "s-2"}
    assert all(c.request.headers["x-ailink-agent-name"] == "llm-agent" for c in route.calls)
