"""The LLM calls of both clients: chat, streams, embeddings, models, metrics and the token summary.

Every call here is an ordinary proxied request: built by :meth:`ClientConfig.build_request`
(session, identity and idempotency headers), sent by :func:`~ailink._approval.proxied_call`
(retries, approval waits) and typed by the same error mapping as ``client.post``. LLM calls are
computations, not actions: they are marked *repeatable* (retried like reads, each retry with a
fresh idempotency key, never reported as "outcome unknown"), unless the caller gives an
``idempotency_key`` of their own.

Streams are read by thin sync and async iterators around one pure state machine
(:class:`SSEDecoder` → :class:`ChatStreamState`): bytes in, chunks out, and a typed error for an
``error`` event or a stream that ends before it is complete. Nothing is retried once the stream
has been handed to the caller.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ailink._approval import PendingApproval, proxied_call
from ailink._config import ClientConfig
from ailink._errors import (
    GATEWAY_ERROR_CODES,
    AIlinkError,
    APIConnectionError,
    MalformedResponseError,
    UpstreamError,
    cap_text,
    json_or_none,
)
from ailink._flow import SEND_FAILURES, Flow
from ailink._headers import Identity
from ailink._llm_models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    EmbeddingsResponse,
    MeResponse,
    MetricsResponse,
    ModelInfo,
    StreamChunk,
    Usage,
)
from ailink._retry import answer_error, failure_error

__all__ = [
    "METRIC_RANGES",
    "AsyncChatStream",
    "ChatStream",
    "ChatStreamState",
    "LLMCall",
    "SSEDecoder",
    "SSEEvent",
    "chat_call",
    "chat_call_from",
    "embeddings_call",
    "llm_flow",
    "normalize_messages",
]

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
MODELS_PATH = "/v1/models"
METRICS_PATH = "/v1/metrics"
ME_PATH = "/v1/me"
#: Where the gateway says what a call cost (USD), in both header generations. [ext]
COST_HEADERS = ("x-ailink-cost-usd", "x-trueflow-cost-usd")
METRIC_RANGES = ("1h", "24h", "7d", "30d")
METRIC_GROUPS = ("provider", "model", "user", "app", "org", "status")
#: The longest single line an event stream may send before the client gives up on it.
MAX_EVENT_BYTES = 16 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)
Messages = str | Mapping[str, Any] | Sequence[Any]


# ---------------------------------------------------------------------------------------- requests


def normalize_messages(messages: Messages) -> list[dict[str, Any]]:
    """Chat messages from a string (one user message), a dict (one message) or a list of either.

    Anything else is refused with a :class:`TypeError` before anything is sent.
    """
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping):
        return [dict(messages)]
    if isinstance(messages, (bytes, bytearray)) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a string, a message dict or a list of them")
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, str):
            out.append({"role": "user", "content": message})
        elif isinstance(message, Mapping):
            out.append(dict(message))
        elif isinstance(message, BaseModel):
            out.append(message.model_dump(exclude_none=True))
        else:
            raise TypeError(f"each message must be a string or a dict, not {type(message).__name__}")
    if not out:
        raise ValueError("messages must not be empty")
    return out


def _check_model(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model must be a non-empty string")
    return model


@dataclass(frozen=True)
class LLMCall:
    """One LLM request as both clients send it."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    identity: Identity | None = None
    headers: Mapping[str, str] | None = None
    idempotency_key: str | None = None
    approval_timeout: float | None = None
    on_pending: Callable[[PendingApproval], Any] | None = field(default=None, compare=False)
    stream: bool = False


def _identity(user_id: str | None, app_id: str | None, org_id: str | None) -> Identity | None:
    return Identity(user_id, app_id, org_id) or None


def chat_call(
    model: str,
    messages: Messages,
    options: Mapping[str, Any],
    *,
    stream: bool = False,
    user_id: str | None = None,
    app_id: str | None = None,
    org_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    approval_timeout: float | None = None,
    on_pending: Callable[[PendingApproval], Any] | None = None,
) -> LLMCall:
    """A ``POST /v1/chat/completions``; ``options`` (temperature, tools, ...) go in the body as given.

    A stream asks for usage (``stream_options.include_usage``) unless the caller said otherwise.
    """
    body: dict[str, Any] = {"model": _check_model(model), "messages": normalize_messages(messages), **options}
    body.pop("stream", None)
    if stream:
        body["stream"] = True
        given = options.get("stream_options")
        body["stream_options"] = {"include_usage": True, **(given if isinstance(given, Mapping) else {})}
    return LLMCall("POST", CHAT_PATH, json=body, identity=_identity(user_id, app_id, org_id), headers=headers,
                   idempotency_key=idempotency_key, approval_timeout=approval_timeout, on_pending=on_pending,
                   stream=stream)


#: Keyword arguments of the chat calls that configure the request rather than go in its body.
CALL_SETTINGS = ("user_id", "app_id", "org_id", "headers", "idempotency_key", "approval_timeout", "on_pending")


def chat_call_from(model: str, messages: Messages, kwargs: Mapping[str, Any], *, stream: bool) -> LLMCall:
    """:func:`chat_call` from one set of keyword arguments (the call settings, the rest is body)."""
    settings = {name: kwargs[name] for name in CALL_SETTINGS if name in kwargs}
    options = {name: value for name, value in kwargs.items() if name not in CALL_SETTINGS}
    return chat_call(model, messages, options, stream=stream, **settings)


def embeddings_call(
    model: str,
    input: str | Sequence[Any],
    options: Mapping[str, Any],
    *,
    user_id: str | None = None,
    app_id: str | None = None,
    org_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> LLMCall:
    """A ``POST /v1/embeddings``."""
    if not isinstance(input, (str, Sequence)) or isinstance(input, (bytes, bytearray)):
        raise TypeError("input must be a string or a list of strings (or token lists)")
    body = {"model": _check_model(model), "input": input if isinstance(input, str) else list(input), **options}
    return LLMCall("POST", EMBEDDINGS_PATH, json=body, identity=_identity(user_id, app_id, org_id), headers=headers)


def metrics_call(range: str, group_by: str | None) -> LLMCall:
    """A ``GET /v1/metrics?range=`` [ext]."""
    if range not in METRIC_RANGES:
        raise ValueError(f"range must be one of {', '.join(METRIC_RANGES)}")
    if group_by is not None and group_by not in METRIC_GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(METRIC_GROUPS)}")
    return LLMCall("GET", METRICS_PATH, params={"range": range, "group_by": group_by})


def get_call(path: str) -> LLMCall:
    return LLMCall("GET", path)


def llm_flow(config: ClientConfig, call: LLMCall) -> Flow[httpx.Response]:
    """Send ``call`` as a proxied request (approval waits included) and return the final answer.

    A stream call returns an event-stream answer with its body unread; the caller closes it.
    """
    approval_timeout = call.approval_timeout or config.approval_timeout
    request = config.build_request(
        call.method, call.path, params=call.params, json=call.json, headers=call.headers,
        idempotency_key=call.idempotency_key, approval_timeout=approval_timeout, identity=call.identity,
        repeatable=call.idempotency_key is None,
    )
    return (
        yield from proxied_call(config, request, wait=True, approval_timeout=approval_timeout,
                                on_pending=call.on_pending, stream=call.stream)
    )


# ---------------------------------------------------------------------------------------- answers


def request_id_of(response: httpx.Response) -> str | None:
    """The gateway's id of the request (``X-Request-Id`` of the answer), else the one the client sent."""
    value = response.headers.get("x-request-id") or response.request.headers.get("x-request-id")
    return str(value) if value else None


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def cost_of(response: httpx.Response) -> float | None:
    """The cost (USD) the gateway put on ``response`` (``X-AIlink-Cost-Usd``), if any. [ext]"""
    for name in COST_HEADERS:
        if name in response.headers:
            return _finite(response.headers[name])
    return None


def _unexpected(response: httpx.Response, what: str) -> MalformedResponseError:
    return MalformedResponseError(
        f"The gateway's answer to {response.request.method} {response.request.url.path} {what}",
        status_code=response.status_code, response=response, request_id=request_id_of(response),
    )


def read_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or :class:`MalformedResponseError`."""
    data = json_or_none(response.content)
    if not isinstance(data, dict):
        raise _unexpected(response, "is not a JSON object")
    return data


def _validate(model: type[M], data: Any, response: httpx.Response) -> M:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise _unexpected(response, f"does not have the expected shape ({exc.error_count()} problems)") from None


def parse_completion(response: httpx.Response) -> ChatCompletion:
    completion = _validate(ChatCompletion, read_object(response), response)
    completion.request_id = request_id_of(response)
    completion.cost_usd = cost_of(response)
    if completion.cost_usd is None and completion.usage is not None:
        completion.cost_usd = completion.usage.cost_usd
    return completion


def parse_embeddings(response: httpx.Response) -> EmbeddingsResponse:
    answer = _validate(EmbeddingsResponse, read_object(response), response)
    answer.request_id = request_id_of(response)
    answer.cost_usd = cost_of(response)
    return answer


def parse_models(response: httpx.Response) -> list[ModelInfo]:
    data = json_or_none(response.content)
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise _unexpected(response, "is not a list of models")
    return [_validate(ModelInfo, item, response) for item in items]


def parse_metrics(response: httpx.Response) -> MetricsResponse:
    return _validate(MetricsResponse, read_object(response), response)


def parse_me(response: httpx.Response) -> MeResponse:
    return _validate(MeResponse, read_object(response), response)


# ---------------------------------------------------------------------------------------- event streams


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event: its type (``message`` when unnamed) and its data lines joined."""

    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    """Server-sent events from bytes, fed in pieces of any size (the WHATWG parsing rules).

    Lines end in CR, LF or CRLF (a CR at the end of a piece waits for the next one); a blank line
    ends an event; ``:`` lines are comments; ``event``, ``data`` and ``id`` fields are read, others
    ignored. :meth:`end` also delivers an event the stream did not close with a blank line.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._started = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        """The events completed by ``data`` (linear in its size: a piece may hold thousands of events)."""
        buffer = self._buffer + data if self._buffer else data
        events: list[SSEEvent] = []
        start = 0
        next_cr = buffer.find(b"\r")
        while True:
            if 0 <= next_cr < start:
                next_cr = buffer.find(b"\r", start)
            cut, skip = self._line_end(buffer, start, next_cr)
            if cut < 0:
                break
            event = self._line(buffer[start:cut])
            start = cut + skip
            if event is not None:
                events.append(event)
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise ValueError(f"an event stream line is longer than {MAX_EVENT_BYTES} bytes")
        return events

    def end(self) -> list[SSEEvent]:
        """The events still buffered when the stream ended."""
        events: list[SSEEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer.rstrip(b"\r"), b""
            event = self._line(line)
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    @staticmethod
    def _line_end(buffer: bytes, start: int, cr: int) -> tuple[int, int]:
        """Where the line starting at ``start`` ends and how long its end is (``cr``: the first CR
        at or after ``start``, or -1)."""
        lf = buffer.find(b"\n", start)
        if cr < 0 or (0 <= lf < cr):
            return lf, 1
        if cr + 1 == len(buffer):
            return -1, 0  # a CR at the end: its LF may be in the next piece
        return cr, 2 if buffer[cr + 1:cr + 2] == b"\n" else 1

    def _line(self, raw: bytes) -> SSEEvent | None:
        line = raw.decode("utf-8", "replace")
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(self._event or "message", "\n".join(self._data), self._id)
        self._event = ""
        self._data = []
        return event


def stream_error(payload: Any, response: httpx.Response) -> AIlinkError:
    """The typed error for an ``error`` event of a stream: the gateway's own code maps as in an
    error answer; anything else is the provider failing mid-stream (:class:`UpstreamError`)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {"message": str(payload)[:500]}
    code = error.get("code")
    status = error.get("status") or error.get("status_code")
    status = status if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599 else 502
    if isinstance(code, str) and code in GATEWAY_ERROR_CODES:
        synthetic = httpx.Response(status, json={"error": error}, request=response.request,
                                   headers={"x-request-id": request_id_of(response) or ""})
        return answer_error(synthetic)
    message = error.get("message")
    text = message if isinstance(message, str) and message else "no message"
    return UpstreamError(
        f"The provider failed in the middle of the stream: {cap_text(text, 800)}",
        status_code=status, code=code if isinstance(code, str) else None, request_id=request_id_of(response),
        response=response, details={"upstream": True, "mid_stream": True},
    )


class ChatStreamState:
    """Reads a chat completion stream: bytes in, OpenAI-shaped chunks out (pure, no I/O).

    Keeps what the stream said about the whole call: ``usage``, ``cost_usd`` (the gateway's price,
    on the usage chunk), ``model``, ``finish_reason`` and the text so far. Raises the typed error of
    an ``error`` event, :class:`MalformedResponseError` for data that is not a chunk, and, from
    :meth:`end`, :class:`APIConnectionError` for a stream cut before its end (``[DONE]`` or a
    finish reason). An answer that is not an event stream (a whole completion) becomes chunks too.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.request_id = request_id_of(response)
        self.usage: Usage | None = None
        self.cost_usd: float | None = cost_of(response)
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.done = False
        self._parts: list[str] = []
        self._decoder = SSEDecoder()
        self._whole: list[bytes] | None = (
            None if response.headers.get("content-type", "").startswith("text/event-stream") else []
        )

    @property
    def text(self) -> str:
        """The text streamed so far (first choice)."""
        return "".join(self._parts)

    def feed(self, data: bytes) -> Iterator[ChatCompletionChunk]:
        """The chunks completed by ``data``, one by one (an error event raises once the chunks
        before it have been taken)."""
        if self._whole is not None:
            self._whole.append(data)
            return
        try:
            events = self._decoder.feed(data)
        except ValueError as exc:
            raise _unexpected(self.response, f"is not a readable event stream ({exc})") from None
        for event in events:
            yield from self._event(event)

    def end(self) -> Iterator[ChatCompletionChunk]:
        """The last chunks, once the body has ended; raises if the stream was cut short."""
        if self._whole is not None:
            yield from self._from_completion(b"".join(self._whole))
            return
        for event in self._decoder.end():
            yield from self._event(event)
        if not self.done and self.finish_reason is None:
            request = self.response.request
            raise APIConnectionError(
                f"The answer stream of {request.method} {request.url.path} ended before it was complete "
                f"(after {len(self._parts)} pieces): the connection was cut",
                request_id=self.request_id,
            )

    def _event(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        if self.done:
            return []
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        payload = json_or_none(event.data.encode())
        if event.event == "error" or (isinstance(payload, dict) and "error" in payload and "choices" not in payload):
            raise stream_error(payload if payload is not None else {"error": {"message": event.data}}, self.response)
        if event.event not in ("message", "chunk"):
            return []  # keep-alives and events of other kinds
        if not isinstance(payload, dict):
            raise _unexpected(self.response, "holds an event whose data is not a JSON object")
        return [self._chunk(_validate(ChatCompletionChunk, payload, self.response))]

    def _chunk(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk:
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage
            if chunk.usage.cost_usd is not None:
                self.cost_usd = chunk.usage.cost_usd
        for choice in chunk.choices:
            if choice.index == 0 and choice.delta.content:
                self._parts.append(choice.delta.content)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return chunk

    def _from_completion(self, body: bytes) -> list[ChatCompletionChunk]:
        """A whole completion (an upstream that does not stream) as chunks: one per choice, then usage."""
        data = json_or_none(body)
        if not isinstance(data, dict):
            raise _unexpected(self.response, "is neither an event stream nor a JSON completion")
        completion = _validate(ChatCompletion, data, self.response)
        chunks = [
            ChatCompletionChunk(
                id=completion.id, created=completion.created, model=completion.model,
                choices=[ChunkChoice(index=c.index, finish_reason=c.finish_reason or "stop",
                                     delta=Delta(role=c.message.role, content=c.message.content,
                                                 tool_calls=c.message.tool_calls))],
            )
            for c in completion.choices
        ]
        if completion.usage is not None:
            chunks.append(ChatCompletionChunk(id=completion.id, created=completion.created, model=completion.model,
                                              usage=completion.usage))
        self.done = True
        return [self._chunk(chunk) for chunk in chunks]

    def stream_chunk(self, chunk: ChatCompletionChunk) -> StreamChunk | None:
        """The :class:`StreamChunk` of ``chunk`` for ``chat_stream(as_chunks=True)`` (None: nothing to say)."""
        choice = chunk.choices[0] if chunk.choices else None
        text = (choice.delta.content or "") if choice is not None else ""
        finish = choice.finish_reason if choice is not None else None
        if not text and finish is None and chunk.usage is None:
            return None
        return StreamChunk(
            text=text, request_id=self.request_id, model=chunk.model or self.model,
            index=choice.index if choice is not None else 0, finish_reason=finish, usage=chunk.usage,
            cost_usd=self.cost_usd if chunk.usage is not None else None,
        )


class _StreamBase:
    """What both stream objects know once the answer has arrived."""

    _state: ChatStreamState

    @property
    def response(self) -> httpx.Response:
        """The gateway's answer (its body is read by iterating)."""
        return self._state.response

    @property
    def request_id(self) -> str | None:
        return self._state.request_id

    @property
    def usage(self) -> Usage | None:
        """Token counts, once the stream has reported them (at its end)."""
        return self._state.usage

    @property
    def cost_usd(self) -> float | None:
        """The gateway's price of the call (USD), once reported (at the end of the stream). [ext]"""
        return self._state.cost_usd

    @property
    def model(self) -> str | None:
        return self._state.model

    @property
    def finish_reason(self) -> str | None:
        return self._state.finish_reason

    @property
    def text(self) -> str:
        """The text streamed so far."""
        return self._state.text


class ChatStream(_StreamBase):
    """The answer of ``client.chat(..., stream=True)``: iterate it for OpenAI-shaped chunks.

    Every chunk it yields has at least one choice (so ``chunk.choices[0].delta.content`` is safe);
    usage and cost are on the stream (``stream.usage``, ``stream.cost_usd``) once it has ended.
    A failure mid-stream raises a typed error (:class:`UpstreamError` family, or
    :class:`APIConnectionError` when the connection is cut). Use it as a context manager, or
    iterate it to the end, so the connection is released.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._state = ChatStreamState(response)

    def _chunks(self) -> Iterator[ChatCompletionChunk]:
        state = self._state
        try:
            for data in state.response.iter_bytes():
                yield from state.feed(data)
            yield from state.end()
        except SEND_FAILURES as exc:
            raise failure_error(exc, state.response.request) from exc
        finally:
            state.response.close()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return (chunk for chunk in self._chunks() if chunk.choices)

    def text_pieces(self) -> Iterator[str]:
        """The text, piece by piece."""
        return (chunk.text for chunk in self._chunks() if chunk.text)

    def stream_chunks(self) -> Iterator[StreamChunk]:
        """:class:`StreamChunk` objects; the last one carries usage and cost."""
        made = (self._state.stream_chunk(chunk) for chunk in self._chunks())
        return (chunk for chunk in made if chunk is not None)

    def close(self) -> None:
        """Release the connection (the rest of the stream is not read)."""
        self._state.response.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncChatStream(_StreamBase):
    """The async twin of :class:`ChatStream` (``async for chunk in await client.chat(..., stream=True)``)."""

    def __init__(self, response: httpx.Response) -> None:
        self._state = ChatStreamState(response)

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        state = self._state
        try:
            async for data in state.response.aiter_bytes():
                for chunk in state.feed(data):
                    yield chunk
            for chunk in state.end():
                yield chunk
        except SEND_FAILURES as exc:
            raise failure_error(exc, state.response.request) from exc
        finally:
            await state.response.aclose()

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        async for chunk in self._chunks():
            if chunk.choices:
                yield chunk

    async def text_pieces(self) -> AsyncIterator[str]:
        """The text, piece by piece."""
        async for chunk in self._chunks():
            if chunk.text:
                yield chunk.text

    async def stream_chunks(self) -> AsyncIterator[StreamChunk]:
        """:class:`StreamChunk` objects; the last one carries usage and cost."""
        async for chunk in self._chunks():
            made = self._state.stream_chunk(chunk)
            if made is not None:
                yield made

    async def aclose(self) -> None:
        """Release the connection (the rest of the stream is not read)."""
        await self._state.response.aclose()

    close = aclose

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


def stream_pieces(open_stream: Callable[[], ChatStream], as_chunks: bool) -> Iterator[Any]:
    """What ``chat_stream`` yields (text, or :class:`StreamChunk`): the request is sent on first use."""
    with open_stream() as stream:
        yield from (stream.stream_chunks() if as_chunks else stream.text_pieces())


async def astream_pieces(open_stream: Callable[[], Any], as_chunks: bool) -> AsyncIterator[Any]:
    """The async twin of :func:`stream_pieces` (``open_stream`` is a coroutine function)."""
    stream: AsyncChatStream = await open_stream()
    async with stream:
        pieces = stream.stream_chunks() if as_chunks else stream.text_pieces()
        async for piece in pieces:
            yield piece


def completion_dict(response: httpx.Response) -> dict[str, Any]:
    """The raw OpenAI-shaped completion of ``client.completions(...)``."""
    return read_object(response)
