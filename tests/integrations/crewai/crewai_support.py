"""Shared helpers of the CrewAI integration tests: a scripted LLM and small crew builders."""

from __future__ import annotations

import json
import threading
from typing import Any

from crewai import Agent, BaseLLM, Crew, Task
from pydantic import PrivateAttr

PAYMENTS_POLICIES: dict[str, dict[str, Any]] = {
    "deny_refunds": {
        "name": "no-refunds",
        "rules": [
            {
                "when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                                 {"field": "request.path", "op": "eq", "value": "/v1/refunds"}]},
                "then": {"action": "deny", "message": "refunds are handled by finance"},
            }
        ],
    },
    "approve_charges_1s": {
        "name": "charges-need-approval-quickly",
        "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
                   "then": {"action": "require_approval", "timeout": "1s"}}],
    },
    "approve_charges": {
        "name": "charges-need-approval",
        "rules": [
            {
                "when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                                 {"field": "request.path", "op": "eq", "value": "/v1/charges"}]},
                "then": {"action": "require_approval", "timeout": "30s"},
            }
        ],
    },
}

CHARGE = {"method": "POST", "path": "/v1/charges",
          "body": {"amount": 1200, "currency": "usd", "customer": "cus_001"}}
REFUND = {"method": "POST", "path": "/v1/refunds", "body": {"charge": "ch_1", "amount": 100}}
LOOKUP = {"method": "GET", "path": "/v1/customers/cus_001"}


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> list[dict[str, Any]]:
    """One OpenAI-style tool call, as a scripted LLM turn."""
    return [{"id": call_id, "type": "function",
             "function": {"name": name, "arguments": json.dumps(arguments)}}]


class ScriptedLLM(BaseLLM):
    """A CrewAI LLM that answers with scripted turns: tool-call lists, then a final string.

    It also records the tool results CrewAI sent back (one per tool-call id, in order), so tests
    can read what the agent saw.
    """

    turns: list[Any] = []
    seen_tool_results: list[str] = []
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _queue: list[Any] = PrivateAttr(default_factory=list)
    _seen_ids: set[str] = PrivateAttr(default_factory=set)

    def model_post_init(self, __context: Any) -> None:
        super().model_post_init(__context)
        self._queue = list(self.turns)

    def call(self, messages: Any, tools: Any = None, callbacks: Any = None, available_functions: Any = None,
             from_task: Any = None, from_agent: Any = None, response_model: Any = None) -> Any:
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, dict) and message.get("role") == "tool":
                    call_id = str(message.get("tool_call_id"))
                    if call_id not in self._seen_ids:
                        self._seen_ids.add(call_id)
                        self.seen_tool_results.append(str(message.get("content")))
        with self._lock:
            return self._queue.pop(0) if self._queue else "done"

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def supports_function_calling(self) -> bool:
        return True

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 8192


def single_agent_crew(tool: Any, turns: list[Any], *, role: str = "Billing clerk",
                      task_name: str = "billing", **crew_options: Any) -> tuple[Crew, ScriptedLLM, Task]:
    """One agent with ``tool``, one task, driven by ``turns``."""
    llm = ScriptedLLM(model="scripted", turns=turns)
    agent = Agent(role=role, goal="Handle billing requests", backstory="Careful with money.",
                  tools=[tool], llm=llm, verbose=False, max_iter=6, respect_context_window=False)
    task = Task(name=task_name, description="Handle the billing request.", expected_output="A short report.",
                agent=agent)
    crew = Crew(agents=[agent], tasks=[task], verbose=False, **crew_options)
    return crew, llm, task
