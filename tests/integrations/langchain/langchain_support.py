"""Shared pieces of the LangChain integration tests: policies, a scripted chat model, a run recorder."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field


def charges_need_approval(timeout: str = "30s") -> dict[str, Any]:
    return {
        "name": "charges-need-approval",
        "rules": [{
            "when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                             {"field": "request.path", "op": "eq", "value": "/v1/charges"}]},
            "then": {"action": "require_approval", "timeout": timeout},
        }],
    }


BLOCK_REFUNDS = {
    "name": "block-refunds",
    "rules": [{
        "when": {"all": [{"field": "request.path", "op": "eq", "value": "/v1/refunds"}]},
        "then": {"action": "deny", "message": "Refunds need a human in the billing team"},
    }],
}

CUSTOMER = {"method": "GET", "path": "/v1/customers/cus_001"}


def charge(amount: int = 5000) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/charges",
            "body": {"amount": amount, "currency": "usd", "customer": "cus_001"}}


REFUND = {"method": "POST", "path": "/v1/refunds", "body": {"charge": "ch_1", "amount": 100}}


def calls(*pairs: tuple[str, dict[str, Any]], tool: str = "payments_api") -> AIMessage:
    """An AIMessage calling ``tool`` once per ``(call id, args)``."""
    return AIMessage(content="", tool_calls=[{"id": cid, "name": tool, "args": args, "type": "tool_call"}
                                             for cid, args in pairs])


class ScriptedChatModel(FakeMessagesListChatModel):
    """LangChain's own fake chat model, able to sit in an agent, remembering what it was shown."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def scripted(*responses: BaseMessage) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses))


class RunRecorder(BaseCallbackHandler):
    """Every run that starts: id → (parent id, kind, name)."""

    run_inline = True

    def __init__(self) -> None:
        self.runs: dict[UUID, tuple[UUID | None, str, str | None]] = {}
        self._lock = threading.Lock()

    def _add(self, kind: str, run_id: UUID, parent_run_id: UUID | None, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.runs[run_id] = (parent_run_id, kind, kwargs.get("name"))

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        self._add("chain", run_id, parent_run_id, kwargs)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._add("llm", run_id, parent_run_id, kwargs)

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                      **kwargs: Any) -> None:
        self._add("tool", run_id, parent_run_id, kwargs)

    def ancestry(self, run_id: UUID) -> list[UUID]:
        """Run ids from the root down to ``run_id``."""
        chain = [run_id]
        while (parent := self.runs[chain[-1]][0]) is not None:
            chain.append(parent)
        return chain[::-1]

    def of_kind(self, kind: str) -> list[UUID]:
        return [rid for rid, (_, k, _) in self.runs.items() if k == kind]
