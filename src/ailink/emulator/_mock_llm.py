"""A deterministic OpenAI-compatible LLM, the emulator's ``http://llm.mock`` upstream.

* ``POST /v1/chat/completions``: answers ``"Echo: <last user message>"`` (with a fresh completion
  ``id`` each time, so a response-cache hit is visible by its id) unless the token has a
  scripted response queued (``POST /api/v1/emulator/llm/script``); supports ``tools``/``tool_calls``
  and ``stream: true`` (SSE chunks, a final usage chunk when ``stream_options.include_usage``,
  always ``data: [DONE]``; a scripted ``stream_error`` object ends the stream after the content
  with ``data: {"error": <it>}`` instead, as OpenAI does when a stream fails).
* ``POST /v1/embeddings``: vectors derived from a SHA-256 of each input (``dimensions`` default 8),
  unit length.
* ``GET /v1/models``.
* Files, batches and fine-tuning jobs (``_mock_jobs``), Anthropic's ``POST /v1/messages``
  (``_mock_anthropic``) and a Realtime WebSocket session at ``/v1/realtime`` (``_mock_realtime``).
The same routes also answer without the ``/v1`` prefix (for tokens whose upstream ends in ``/v1``).
Strict like the payments mock: exact paths only, JSON object bodies only (415/400 otherwise).
The proxy tells this app which token is calling with a private header it only sends to the
in-process mocks.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ._mock_anthropic import messages_routes
from ._mock_http import ExactPaths, json_object
from ._mock_jobs import OpenAIJobsMock
from ._mock_realtime import realtime_routes

TOKEN_HEADER = "x-ailink-emulator-token-ref"
MODELS = ["mock-gpt", "mock-gpt-mini", "mock-embedding"]
CREATED = 1_700_000_000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                   "code": None}}, status_code=status)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def embed(text: str, dimensions: int) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for i in range(0, len(digest), 4):
            (n,) = struct.unpack(">I", digest[i:i + 4])
            values.append(n / 0xFFFFFFFF * 2 - 1)
        counter += 1
    vec = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 6) for v in vec]


class LLMMock:
    token_header = TOKEN_HEADER

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.calls = 0
        self.jobs = OpenAIJobsMock(self)
        routes: list[BaseRoute] = []
        for prefix in ("/v1", ""):
            routes += [
                Route(f"{prefix}/chat/completions", self.chat, methods=["POST"]),
                Route(f"{prefix}/embeddings", self.embeddings, methods=["POST"]),
                Route(f"{prefix}/models", self.models, methods=["GET"]),
                *self.jobs.routes(prefix), *messages_routes(self, prefix), *realtime_routes(self, prefix),
            ]
        app = Starlette(routes=routes)
        app.router.redirect_slashes = False
        self.app = ExactPaths(app)

    def script(self, token_ref: str, responses: list[dict[str, Any]]) -> int:
        with self._lock:
            self._scripts[token_ref].extend(responses)
            return len(self._scripts[token_ref])

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.calls = 0
        self.jobs.reset()

    def take_scripted(self, token_ref: str | None) -> dict[str, Any] | None:
        """The token's next scripted answer (``None``: answer deterministically); counts the call."""
        with self._lock:
            self.calls += 1
            queue = self._scripts.get(token_ref or "")
            return queue.popleft() if queue else None

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "ailink-emulator"} for m in MODELS
        ]})

    async def embeddings(self, request: Request) -> Response:
        body, status, problem = await json_object(request)
        if body is None:
            return _error(status, problem)
        if "input" not in body:
            return _error(400, "'input' is required")
        raw = body["input"]
        inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        dims = body.get("dimensions", 8)
        if not isinstance(dims, int) or not 1 <= dims <= 4096:
            return _error(400, "'dimensions' must be an integer between 1 and 4096")
        data = [
            {"object": "embedding", "index": i, "embedding": embed(json.dumps(item), dims)}
            for i, item in enumerate(inputs)
        ]
        tokens = sum(_count_tokens(_text_of(i) if isinstance(i, str) else json.dumps(i)) for i in inputs)
        return JSONResponse({"object": "list", "data": data, "model": body.get("model", "mock-embedding"),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def chat(self, request: Request) -> Response:
        body, status, problem = await json_object(request)
        if body is None:
            return _error(status, problem)
        if not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is required")
        messages = body["messages"]
        model = str(body.get("model") or "mock-gpt")
        last_user = next((_text_of(m.get("content")) for m in reversed(messages)
                          if isinstance(m, dict) and m.get("role") == "user"), "")
        scripted = self.take_scripted(request.headers.get(TOKEN_HEADER))
        stream_error = scripted.get("stream_error") if scripted is not None else None
        content: str | None
        tool_calls: list[dict[str, Any]] = []
        if scripted is None:
            content = f"Echo: {last_user}"
        else:
            if "status" in scripted:  # scripted upstream error
                return JSONResponse(scripted.get("body") or {"error": {"message": "scripted error",
                                                                          "type": "server_error"}},
                                    status_code=int(scripted["status"]))
            content = scripted.get("content")
            for i, call in enumerate(scripted.get("tool_calls") or []):
                args = call.get("arguments", {})
                tool_calls.append({
                    "id": call.get("id") or f"call_{i + 1}", "type": "function",
                    "function": {"name": call["name"],
                                 "arguments": args if isinstance(args, str) else json.dumps(args)},
                })
            if content is None and not tool_calls:
                content = ""
        finish = "tool_calls" if tool_calls else "stop"
        prompt_text = " ".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
        prompt_tokens = _count_tokens(prompt_text)
        completion_tokens = _count_tokens(content or "") + sum(
            _count_tokens(c["function"]["arguments"]) for c in tool_calls)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        completion_id = "chatcmpl-" + secrets.token_hex(12)  # one per answer, as a real provider's
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._stream(completion_id, created, model, content, tool_calls, finish, usage, include_usage,
                             stream_error),
                media_type="text/event-stream", headers={"cache-control": "no-cache"},
            )
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return JSONResponse({
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage, "system_fingerprint": "fp_ailink_emulator",
        })

    @staticmethod
    async def _stream(cid: str, created: int, model: str, content: str | None, tool_calls: list[dict[str, Any]],
                      finish: str, usage: dict[str, int], include_usage: bool,
                      stream_error: Any = None) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_ailink_emulator",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                payload["usage"] = None
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield chunk({"role": "assistant", "content": "" if content is not None else None})
        if content:
            words = content.split(" ")
            for i, word in enumerate(words):
                yield chunk({"content": word if i == len(words) - 1 else word + " "})
        for i, call in enumerate(tool_calls):
            yield chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"], "arguments": ""}}]})
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]})
        if stream_error is not None:
            yield f"data: {json.dumps({'error': stream_error})}\n\n".encode()
            return
        yield chunk({}, finish)
        if include_usage:
            final = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "system_fingerprint": "fp_ailink_emulator", "choices": [], "usage": usage}
            yield f"data: {json.dumps(final)}\n\n".encode()
        yield b"data: [DONE]\n\n"
