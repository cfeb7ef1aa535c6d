"""The LLM calls of the core clients, offline: the event-stream state machine, typed errors (before
and during a stream), repeatable retries with fresh keys, identity headers and input checks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

import ailink
from ailink._llm import ChatStreamState, SSEDecoder, SSEEvent
from ailink._retry import REPEATABLE_EXTENSION, is_write, mark_repeatable, rekeyed

from .helpers import GATEWAY, SECRETS, Driver, Recorder, advertise, gateway_error, sent_keys

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def chunk(content: str | None = None, *, finish: str | None = None, usage: dict[str, Any] | None = None,
          choices: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                           "choices": []}
    if choices:
        doc["choices"] = [{"index": 0, "delta": {"content": content} if content is not None else {},
                           "finish_reason": finish}]
    if usage is not None:
        doc["usage"] = usage
    return doc


def sse(*events: dict[str, Any] | str) -> bytes:
    return b"".join(
        (f"data: {e}\n\n" if isinstance(e, str) else f"data: {json.dumps(e)}\n\n").encode() for e in events
    )


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "cost_usd": 0.0000075}
FULL_STREAM = sse(chunk(""), chunk("Hel"), chunk("lo"), chunk(finish="stop"), chunk(choices=False, usage=USAGE),
                  "[DONE]")
#: The marker of an answer written by the upstream (not the gateway).
UPSTREAM = {"x-ailink-cb-state": "closed"}
SSE_HEADERS = {"content-type": "text/event-stream", "x-request-id": "req_" + "a" * 32}


class Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in the given pieces, then optionally cut (a transport error)."""

    def __init__(self, pieces: list[bytes], cut: bool = False) -> None:
        self.pieces = pieces
        self.cut = cut

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces
        if self.cut:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.cut:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def stream_answer(body: bytes, *, cut: bool = False, size: int = 7) -> httpx.Response:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return httpx.Response(200, headers=SSE_HEADERS, stream=Pieces(pieces, cut))


async def call(driver: Driver, client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    result = getattr(client, method)(*args, **kwargs)
    return result if driver.kind == "sync" else await result


async def drain(driver: Driver, iterable: Any) -> list[Any]:
    if driver.kind == "sync":
        return list(iterable)
    return [item async for item in iterable]


def state_for(body: bytes, sizes: int) -> tuple[ChatStreamState, list[Any]]:
    response = httpx.Response(200, headers=SSE_HEADERS, request=httpx.Request("POST", GATEWAY + "/v1/chat/completions"))
    state = ChatStreamState(response)
    out: list[Any] = []
    for i in range(0, len(body), sizes):
        out += state.feed(body[i:i + sizes])
    out += state.end()
    return state, out


# -- the event-stream decoder ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 1000])
def test_sse_decoder_gives_the_same_events_whatever_the_piece_size(size: int) -> None:
    body = ("\ufeff: comment\r\nevent: ping\r\ndata: {}\r\n\r\ndata: line one\ndata: line two\n\n"
            "id: 7\rdata: cr only\r\rdata: last without a blank line").encode()
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for i in range(0, len(body), size):
        events += decoder.feed(body[i:i + size])
    events += decoder.end()
    assert events == [
        SSEEvent("ping", "{}"),
        SSEEvent("message", "line one\nline two"),
        SSEEvent("message", "cr only", "7"),
        SSEEvent("message", "last without a blank line", "7"),
    ]


def test_sse_decoder_refuses_an_endless_line() -> None:
    decoder = SSEDecoder()
    with pytest.raises(ValueError, match="longer than"):
        for _ in range(20):
            decoder.feed(b"x" * (1024 * 1024))


@pytest.mark.parametrize("size", [1, 4, 64, 10_000])
def test_stream_state_reads_chunks_usage_and_cost(size: int) -> None:
    state, chunks = state_for(FULL_STREAM, size)
    assert [c.text for c in chunks if c.choices] == ["", "Hel", "lo", ""]
    assert state.text == "Hello" and state.finish_reason == "stop" and state.done
    assert state.usage is not None and state.usage.total_tokens == 5
    assert state.cost_usd == pytest.approx(0.0000075)
    assert state.request_id == "req_" + "a" * 32


def test_stream_state_raises_the_providers_error_event() -> None:
    body = sse(chunk("Hel"), {"error": {"message": "The server had an error", "type": "server_error"}})
    with pytest.raises(ailink.UpstreamError, match="middle of the stream: The server had an error") as info:
        state_for(body, 5)
    assert info.value.details["mid_stream"] is True and not info.value.ambiguous


def test_stream_state_maps_a_gateway_error_event_by_its_code() -> None:
    body = b"event: error\ndata: " + json.dumps(
        {"error": {"code": "rate_limit_exceeded", "message": "slow down", "type": "rate_limit_error", "status": 429}}
    ).encode() + b"\n\n"
    with pytest.raises(ailink.RateLimitError):
        state_for(body, 3)


def test_a_stream_cut_before_its_end_is_a_connection_error() -> None:
    with pytest.raises(ailink.APIConnectionError, match="ended before it was complete"):
        state_for(sse(chunk("Hel"), chunk("lo")), 4)


def test_a_stream_that_finished_without_done_is_complete() -> None:
    state, chunks = state_for(sse(chunk("Hi"), chunk(finish="stop")), 4)
    assert state.text == "Hi" and len(chunks) == 2


def test_data_that_is_not_a_chunk_is_malformed() -> None:
    with pytest.raises(ailink.MalformedResponseError):
        state_for(b"data: [1, 2]\n\n", 100)
    with pytest.raises(ailink.MalformedResponseError):
        state_for(b"data: {\"choices\": \"nope\"}\n\n", 100)


def test_a_whole_completion_answer_becomes_chunks() -> None:
    response = httpx.Response(200, json=COMPLETION, request=httpx.Request("POST", GATEWAY + "/v1/chat/completions"))
    state = ChatStreamState(response)
    chunks = [*state.feed(response.content), *state.end()]
    assert [c.text for c in chunks if c.choices] == ["hello"]
    assert state.usage is not None and state.usage.total_tokens == 4 and state.finish_reason == "stop"


# -- repeatable requests ------------------------------------------------------------------------


def test_a_repeatable_request_is_not_a_write_and_is_rekeyed() -> None:
    request = httpx.Request("POST", GATEWAY + "/v1/chat/completions",
                            headers={"X-AIlink-Idempotency-Key": "k1", "X-TrueFlow-Idempotency-Key": "k1"})
    assert is_write(request)
    assert rekeyed(request) is request  # only repeatable requests are re-keyed
    mark_repeatable(request)
    assert request.extensions[REPEATABLE_EXTENSION] and not is_write(request)
    again = rekeyed(request)
    new = again.headers["x-ailink-idempotency-key"]
    assert new != "k1" and again.headers["x-trueflow-idempotency-key"] == new
    assert request.headers["x-ailink-idempotency-key"] == "k1" and again.extensions[REPEATABLE_EXTENSION]


@pytest.mark.parametrize("storing", [False, True], ids=["real-gateway", "storing-gateway"])
async def test_chat_is_retried_on_503_with_a_fresh_key_per_attempt(driver: Driver, storing: bool) -> None:
    if storing:
        advertise()
    upstream_503 = httpx.Response(503, json={"error": {"message": "overloaded"}}, headers=UPSTREAM)
    recorder = Recorder(script=[upstream_503, httpx.ConnectTimeout("slow"), httpx.Response(200, json=COMPLETION)])
    client = driver.client(recorder, retries=ailink.RetryConfig(max_retries=2, backoff_base=0.0001))
    answer = await call(driver, client, "chat", "gpt-4o-mini", "hi")
    assert answer.content == "hello"
    keys = sent_keys(recorder)
    assert len(keys) == 3 and len(set(keys)) == 3 and all(keys)


async def test_chat_with_its_own_key_is_an_action_not_retried_after_a_5xx(driver: Driver) -> None:
    upstream_502 = httpx.Response(502, json={"error": {"message": "bad"}}, headers=UPSTREAM)
    recorder = Recorder(script=[upstream_502], default=httpx.Response(200, json=COMPLETION))
    client = driver.client(recorder)
    with pytest.raises(ailink.UpstreamError) as info:
        await call(driver, client, "chat", "gpt-4o-mini", "hi", idempotency_key="my-key")
    assert len(recorder.requests) == 1 and info.value.ambiguous and info.value.idempotency_key == "my-key"


async def test_chat_errors_after_retries_are_typed_and_not_ambiguous(driver: Driver) -> None:
    recorder = Recorder(default=gateway_error(500, "internal_server_error"))
    client = driver.client(recorder)
    with pytest.raises(ailink.GatewayError) as info:
        await call(driver, client, "chat", "gpt-4o-mini", "hi")
    assert len(recorder.requests) == 3 and not info.value.ambiguous


@pytest.mark.parametrize(("answer", "error"), [
    (gateway_error(403, "policy_denied", "Request blocked by policy 'no-llm': not today"), ailink.PolicyDeniedError),
    (gateway_error(401, "token_not_found"), ailink.AuthenticationError),
    (gateway_error(402, "spend_cap_reached", "Spend cap reached: daily spend cap of $5 exceeded (current: $5.25)."),
     ailink.BudgetExceededError),
    (gateway_error(429, "rate_limit_exceeded", headers={"Retry-After": "600"}), ailink.RateLimitError),
    (gateway_error(400, "invalid_json"), ailink.BadRequestError),
    (httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}}, headers=UPSTREAM),
     ailink.UpstreamError),
], ids=["policy", "auth", "budget", "rate-limit", "bad-request", "provider-401"])
@pytest.mark.parametrize("method", ["chat", "completions", "embeddings", "models"])
async def test_every_llm_call_raises_the_typed_errors_of_post(
    driver: Driver, method: str, answer: httpx.Response, error: type[Exception]
) -> None:
    recorder = Recorder(default=answer)
    client = driver.client(recorder)
    args: tuple[Any, ...] = () if method == "models" else ("gpt-4o-mini", "hi")
    with pytest.raises(error) as info:
        await call(driver, client, method, *args)
    if isinstance(info.value, ailink.PolicyDeniedError):
        assert info.value.policy_name == "no-llm"
    if isinstance(info.value, ailink.BudgetExceededError):
        assert (info.value.limit, info.value.current) == (5.0, 5.25)
    if isinstance(info.value, ailink.RateLimitError):
        assert info.value.retry_after == 600 and len(recorder.requests) == 1  # too long to wait: raised at once
    assert not any(secret in str(info.value) for secret in SECRETS)


# -- streams -----------------------------------------------------------------------------------


async def test_chat_stream_true_never_yields_a_chunk_without_choices(driver: Driver) -> None:
    recorder = Recorder(default=lambda request: stream_answer(FULL_STREAM))
    client = driver.client(recorder)
    stream = await call(driver, client, "chat", "gpt-4o-mini", "hi", stream=True)
    printed = [c.choices[0].delta.content for c in await drain(driver, stream) if c.choices[0].delta.content]
    assert printed == ["Hel", "lo"]
    assert stream.usage.total_tokens == 5 and stream.cost_usd == pytest.approx(0.0000075)
    sent = json.loads(recorder.requests[0].content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_chat_stream_yields_text_or_stream_chunks(driver: Driver) -> None:
    recorder = Recorder(default=lambda request: stream_answer(FULL_STREAM, size=3))
    client = driver.client(recorder)
    assert await drain(driver, client.chat_stream("gpt-4o-mini", "hi")) == ["Hel", "lo"]
    pieces = await drain(driver, client.chat_stream("gpt-4o-mini", "hi", as_chunks=True))
    assert [p.text for p in pieces] == ["Hel", "lo", "", ""]
    assert {p.request_id for p in pieces} == {"req_" + "a" * 32}
    assert pieces[-1].usage is not None and pieces[-1].cost_usd == pytest.approx(0.0000075)
    assert all(p.usage is None for p in pieces[:-1])


async def test_chat_stream_sends_nothing_until_iterated(driver: Driver) -> None:
    recorder = Recorder(default=lambda request: stream_answer(FULL_STREAM))
    client = driver.client(recorder)
    pieces = client.chat_stream("gpt-4o-mini", "hi")
    assert recorder.requests == []
    assert await drain(driver, pieces) == ["Hel", "lo"]
    assert len(recorder.requests) == 1


async def test_a_stream_cut_mid_body_raises_a_connection_error_and_is_not_resent(driver: Driver) -> None:
    body = sse(chunk("Hel"), chunk("lo"))
    recorder = Recorder(default=lambda request: stream_answer(body, cut=True))
    client = driver.client(recorder)
    seen: list[str] = []
    with pytest.raises(ailink.APIConnectionError) as info:
        if driver.kind == "sync":
            for piece in client.chat_stream("gpt-4o-mini", "hi"):
                seen.append(piece)
        else:
            async for piece in client.chat_stream("gpt-4o-mini", "hi"):
                seen.append(piece)
    assert seen == ["Hel", "lo"] and len(recorder.requests) == 1
    assert not info.value.ambiguous


@pytest.mark.parametrize("size", [7, 100_000], ids=["small-pieces", "one-piece"])
async def test_a_mid_stream_error_event_is_a_typed_provider_error(driver: Driver, size: int) -> None:
    body = sse(chunk("Hel"), chunk("lo"), {"error": {"message": "overloaded", "type": "server_error",
                                                     "code": "overloaded"}})
    recorder = Recorder(default=lambda request: stream_answer(body, size=size))
    client = driver.client(recorder)
    stream = await call(driver, client, "chat", "gpt-4o-mini", "hi", stream=True)
    seen: list[str] = []
    with pytest.raises(ailink.UpstreamError, match="overloaded") as info:
        if driver.kind == "sync":
            for piece in stream:
                seen.append(piece.text)
        else:
            async for piece in stream:
                seen.append(piece.text)
    assert seen == ["Hel", "lo"]  # what came before the error is delivered first
    assert info.value.code == "overloaded" and len(recorder.requests) == 1


async def test_a_stream_refused_before_it_starts_is_retried_then_typed(driver: Driver) -> None:
    recorder = Recorder(script=[gateway_error(503, "all_upstreams_exhausted")],
                        default=lambda request: stream_answer(FULL_STREAM))
    client = driver.client(recorder)
    assert await drain(driver, client.chat_stream("gpt-4o-mini", "hi")) == ["Hel", "lo"]
    assert len(recorder.requests) == 2
    denied = Recorder(default=gateway_error(403, "policy_denied", "Request blocked by policy 'p': no"))
    with pytest.raises(ailink.PolicyDeniedError):
        await drain(driver, driver.client(denied).chat_stream("gpt-4o-mini", "hi"))


# -- answers, identity, input -----------------------------------------------------------------


async def test_chat_answer_has_content_usage_cost_and_request_id(driver: Driver) -> None:
    answer = httpx.Response(200, json=COMPLETION, headers={"x-ailink-cost-usd": "0.0000125", "x-request-id": "req_1"})
    client = driver.client(Recorder(default=answer))
    reply = await call(driver, client, "chat", "gpt-4o-mini", [{"role": "user", "content": "hi"}], temperature=0.2)
    assert reply.content == "hello" and reply["model"] == "gpt-4o-mini" and reply.usage.total_tokens == 4
    assert reply.cost_usd == pytest.approx(0.0000125) and reply.request_id == "req_1"
    assert reply.choices[0].message.content == "hello" and dict(reply)["id"] == "chatcmpl-1"


async def test_models_are_model_infos_indexable_like_dicts(driver: Driver) -> None:
    page = {"object": "list", "data": [
        {"id": "gpt-4o", "object": "model", "owned_by": "openai", "provider": "openai",
         "pricing": {"input_per_1k_usd": 0.0025, "output_per_1k_usd": 0.01, "currency": "USD"}},
        {"id": "local-model", "object": "model", "owned_by": "me"},
    ]}
    client = driver.client(Recorder(default=httpx.Response(200, json=page)))
    models = await call(driver, client, "models")
    assert [m["id"] for m in models] == ["gpt-4o", "local-model"]
    assert models[0].pricing.input_per_1k_usd == 0.0025 and models[1].pricing is None and models[1].provider is None


async def test_an_answer_of_the_wrong_shape_is_malformed(driver: Driver) -> None:
    client = driver.client(Recorder(default=httpx.Response(200, json={"choices": "no"})))
    with pytest.raises(ailink.MalformedResponseError):
        await call(driver, client, "chat", "gpt-4o-mini", "hi")
    client = driver.client(Recorder(default=httpx.Response(200, text="<html>")))
    with pytest.raises(ailink.MalformedResponseError):
        await call(driver, client, "models")


async def test_identity_headers_client_level_per_call_and_trace(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(200, json=COMPLETION))
    client = driver.client(recorder, user_id="u-client", app_id="app-client", org_id="org-client")
    await call(driver, client, "chat", "gpt-4o-mini", "hi")
    await call(driver, client, "chat", "gpt-4o-mini", "hi", user_id="u-call", app_id="app-call", org_id="org-call")
    with ailink.trace("s1", user_id="u-trace", properties={"node": "n1"}):
        await call(driver, client, "chat", "gpt-4o-mini", "hi")
    first, second, third = recorder.requests
    assert (first.headers["x-user-id"], first.headers["x-tenant-id"]) == ("u-client", "org-client")
    assert json.loads(first.headers["x-properties"]) == {"app_id": "app-client"}
    assert (second.headers["x-user-id"], second.headers["x-tenant-id"]) == ("u-call", "org-call")
    assert json.loads(second.headers["x-properties"]) == {"app_id": "app-call"}
    assert third.headers["x-user-id"] == "u-trace" and third.headers["x-session-id"] == "s1"
    assert json.loads(third.headers["x-properties"]) == {"node": "n1", "app_id": "app-client"}


def test_sdk_http_clients_carry_the_client_identity() -> None:
    """``client.openai()`` (and the framework LLMs) send through ``ailink.http_client(config)``."""
    recorder = Recorder(default=httpx.Response(200, json=COMPLETION))
    client = ailink.AIlinkClient("ailink_v1_x", GATEWAY, user_id="u-42", org_id="acme", app_id="bot")
    with ailink.http_client(client.settings, transport=recorder.transport) as http:
        http.post(GATEWAY + "/v1/chat/completions", json={"model": "m", "messages": []})
    sent = recorder.requests[-1]
    assert sent.headers["x-user-id"] == "u-42" and sent.headers["x-tenant-id"] == "acme"
    assert json.loads(sent.headers["x-properties"]) == {"app_id": "bot"}


@pytest.mark.parametrize(("args", "kwargs", "error"), [
    (("", "hi"), {}, ValueError),
    (("gpt-4o-mini", None), {}, TypeError),
    (("gpt-4o-mini", []), {}, ValueError),
    (("gpt-4o-mini", [42]), {}, TypeError),
    (("gpt-4o-mini", "hi"), {"user_id": ""}, ValueError),
    (("gpt-4o-mini", "hi"), {"idempotency_key": "has space"}, ValueError),
])
async def test_bad_chat_input_is_refused_before_sending(
    driver: Driver, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    with pytest.raises(error):
        await call(driver, client, "chat", *args, **kwargs)
    with pytest.raises(ValueError):
        await call(driver, client, "metrics", range="2h")
    with pytest.raises(ValueError):
        await call(driver, client, "metrics", group_by="colour")
    assert recorder.requests == []
