"""An Anthropic-shaped ``POST /v1/messages`` on the mock LLM upstream (deterministic, scriptable).

Answers ``"Echo: <last user text>"`` as one text block, or the token's next scripted answer (the same
queue as the chat mock: ``content`` → a text block, ``tool_calls`` → ``tool_use`` blocks with the
arguments as ``input``, ``status``/``body`` → that error). ``stream: true`` gives Anthropic's SSE events
(``message_start``, ``content_block_start``/``_delta``/``_stop``, ``message_delta``, ``message_stop``).
Request errors use Anthropic's shape: 400 ``{"type": "error", "error": {"type":
"invalid_request_error", "message"}}``. Also served as ``/messages`` (upstreams ending in ``/v1``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from ._mock_llm import LLMMock


def anthropic_error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Field required (a positive integer)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if not isinstance(message.get("content"), (str, list)):
            return f"messages.{i}.content: Field required"
    return None


def messages_routes(llm: LLMMock, prefix: str) -> list[Route]:
    async def messages(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return anthropic_error(400, "The request body is not valid JSON.")
        problem = _validate(body)
        if problem:
            return anthropic_error(400, problem)
        last_user = next((_text(m["content"]) for m in reversed(body["messages"]) if m["role"] == "user"), "")
        scripted = llm.take_scripted(request.headers.get(llm.token_header))
        blocks: list[dict[str, Any]] = []
        if scripted is None:
            blocks.append({"type": "text", "text": f"Echo: {last_user}"})
        else:
            if "status" in scripted:
                error = scripted.get("body") or {"type": "error", "error": {"type": "api_error",
                                                                             "message": "scripted error"}}
                return JSONResponse(error, status_code=int(scripted["status"]))
            if scripted.get("content"):
                blocks.append({"type": "text", "text": scripted["content"]})
            for i, call in enumerate(scripted.get("tool_calls") or []):
                args = call.get("arguments", {})
                blocks.append({"type": "tool_use", "id": call.get("id") or f"toolu_{i + 1:02d}", "name": call["name"],
                               "input": json.loads(args) if isinstance(args, str) else args})
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        prompt = " ".join(_text(m["content"]) for m in body["messages"]) + " " + _text(body.get("system"))
        usage = {"input_tokens": max(1, _words(prompt)),
                 "output_tokens": sum(_words(b.get("text", "")) or _words(json.dumps(b.get("input"))) for b in blocks)}
        seed = json.dumps([body["messages"], blocks], sort_keys=True, default=str)
        message = {"id": "msg_" + hashlib.sha256(seed.encode()).hexdigest()[:24], "type": "message",
                   "role": "assistant", "model": body["model"], "content": blocks, "stop_reason": stop,
                   "stop_sequence": None, "usage": usage}
        if body.get("stream"):
            return StreamingResponse(_stream(message), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache"})
        return JSONResponse(message)

    return [Route(f"{prefix}/messages", messages, methods=["POST"])]


async def _stream(message: dict[str, Any]) -> AsyncIterator[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

    start = {**message, "content": [], "stop_reason": None,
             "usage": {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1}}
    yield event("message_start", {"message": start})
    yield event("ping", {})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            words = block["text"].split(" ")
            for i, word in enumerate(words):
                piece = word if i == len(words) - 1 else word + " "
                yield event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
        else:
            yield event("content_block_start", {"index": index, "content_block": {**block, "input": {}}})
            yield event("content_block_delta", {"index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
        yield event("content_block_stop", {"index": index})
    yield event("message_delta", {"delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                  "usage": {"output_tokens": message["usage"]["output_tokens"]}})
    yield event("message_stop", {})
