"""A mock OpenAI Realtime session (WebSocket ``/v1/realtime?model=...``) on the mock LLM upstream.

On connect it sends ``session.created``. Client events: ``session.update`` → ``session.updated``
(the ``session`` object merged in); ``conversation.item.create`` → ``conversation.item.created``;
``response.create`` → ``response.created``, ``response.output_item.added``,
``response.content_part.added``, one ``response.text.delta`` per word, ``response.text.done``,
``response.content_part.done``, ``response.output_item.done``, ``response.done``. The text is
``"Echo: <last user input_text>"`` or the token's next scripted ``content`` (a scripted ``status`` ends
the response with ``status: "failed"``). Anything else (bad JSON, unknown type) → an ``error`` event;
the session stays open.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from ._mock_llm import LLMMock

DEFAULT_MODEL = "gpt-4o-realtime-preview-2024-12-17"


def _id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


class _Session:
    def __init__(self, llm: LLMMock, websocket: WebSocket) -> None:
        self.llm = llm
        self.ws = websocket
        self.token_ref = websocket.headers.get(llm.token_header)
        self.items: list[dict[str, Any]] = []
        self.session: dict[str, Any] = {
            "id": _id("sess_"), "object": "realtime.session",
            "model": websocket.query_params.get("model") or DEFAULT_MODEL, "modalities": ["text", "audio"],
            "instructions": "", "voice": "alloy", "input_audio_format": "pcm16", "output_audio_format": "pcm16",
            "input_audio_transcription": None, "turn_detection": None, "tools": [], "tool_choice": "auto",
            "temperature": 0.8, "max_response_output_tokens": "inf",
        }

    async def send(self, kind: str, **fields: Any) -> None:
        await self.ws.send_text(json.dumps({"type": kind, "event_id": _id("event_"), **fields}))

    async def error(self, code: str, message: str, event_id: str | None = None) -> None:
        await self.send("error", error={"type": "invalid_request_error", "code": code, "message": message,
                                        "param": None, "event_id": event_id})

    def last_user_text(self) -> str:
        for item in reversed(self.items):
            if item.get("role") == "user":
                parts = item.get("content") or []
                return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        return ""

    async def respond(self) -> None:
        response: dict[str, Any] = {"id": _id("resp_"), "object": "realtime.response", "status": "in_progress",
                                    "status_details": None, "output": [], "usage": None}
        await self.send("response.created", response=response)
        scripted = self.llm.take_scripted(self.token_ref)
        if scripted is not None and "status" in scripted:
            response.update(status="failed", status_details={"type": "failed", "error": {
                "type": "server_error", "code": str(scripted["status"]), "message": "scripted error"}})
            await self.send("response.done", response=response)
            return
        text = (scripted.get("content") or "") if scripted is not None else f"Echo: {self.last_user_text()}"
        item: dict[str, Any] = {"id": _id("item_"), "object": "realtime.item", "type": "message",
                                "status": "in_progress", "role": "assistant", "content": []}
        ids = {"response_id": response["id"], "item_id": item["id"], "output_index": 0}
        await self.send("response.output_item.added", response_id=response["id"], output_index=0, item=item)
        await self.send("response.content_part.added", **ids, content_index=0, part={"type": "text", "text": ""})
        words = text.split(" ") if text else []
        for i, word in enumerate(words):
            await self.send("response.text.delta", **ids, content_index=0,
                            delta=word if i == len(words) - 1 else word + " ")
        await self.send("response.text.done", **ids, content_index=0, text=text)
        part = {"type": "text", "text": text}
        await self.send("response.content_part.done", **ids, content_index=0, part=part)
        item.update(status="completed", content=[part])
        await self.send("response.output_item.done", response_id=response["id"], output_index=0, item=item)
        self.items.append(item)
        tokens_in = max(1, sum(len(str(p.get("text", "")).split()) for it in self.items
                               for p in it.get("content") or [] if isinstance(p, dict)))
        response.update(status="completed", output=[item], usage={
            "total_tokens": tokens_in + len(words), "input_tokens": tokens_in, "output_tokens": len(words)})
        await self.send("response.done", response=response)

    async def handle(self, raw: str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            await self.error("invalid_json", "The event is not valid JSON.")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.error("invalid_event", "An event must be a JSON object with a 'type'.")
            return
        kind, event_id = event["type"], event.get("event_id")
        if kind == "session.update":
            if not isinstance(event.get("session"), dict):
                await self.error("invalid_value", "session.update needs a 'session' object.", event_id)
                return
            self.session.update({k: v for k, v in event["session"].items() if k not in ("id", "object")})
            await self.send("session.updated", session=self.session)
        elif kind == "conversation.item.create":
            item = event.get("item")
            if not isinstance(item, dict):
                await self.error("invalid_value", "conversation.item.create needs an 'item' object.", event_id)
                return
            item = {"id": _id("item_"), "object": "realtime.item", "status": "completed", **item}
            self.items.append(item)
            await self.send("conversation.item.created", previous_item_id=None, item=item)
        elif kind == "response.create":
            await self.respond()
        else:
            await self.error("unknown_event_type", f"Unknown event type: {kind}", event_id)


def realtime_routes(llm: LLMMock, prefix: str) -> list[WebSocketRoute]:
    async def realtime(websocket: WebSocket) -> None:
        await websocket.accept()
        session = _Session(llm, websocket)
        await session.send("session.created", session=session.session)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    await session.error("binary_not_supported", "Send events as text frames.")
                    continue
                await session.handle(text)
        except WebSocketDisconnect:
            return

    return [WebSocketRoute(f"{prefix}/realtime", realtime)]
