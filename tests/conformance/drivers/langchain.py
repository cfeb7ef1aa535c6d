"""LangChain / LangGraph: ``create_agent`` with ``ChatAIlink`` and ``langchain_tool``; events are custom
events; the pause is ``interrupt()`` with a SQLite checkpointer shared by the two processes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from conformance_harness import REJECTION, Env, FrameworkDriver, Run, Seen
from langchain.agents import create_agent
from langchain_ailink import APPROVAL_PENDING_EVENT, AIlinkCallbackHandler, ChatAIlink, langchain_tool, langchain_tools
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command


class _Events(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.seen.append(("pending" if name == APPROVAL_PENDING_EVENT else "resolved", data.get("approval_id")))


class LangChainDriver(FrameworkDriver):
    name = "langchain"
    pauses = True

    def _invoke(self, env: Env, value: Any, checkpointer: Any = None, on_approval: str = "wait") -> Run:
        tools = langchain_tools(**env.openapi_options(), on_approval=on_approval) if env.openapi \
            else [langchain_tool(**env.tool_options(), on_approval=on_approval)]
        agent = create_agent(ChatAIlink(**env.llm_options()), tools=tools, checkpointer=checkpointer)
        events = _Events()
        config: Any = {"metadata": {"ailink_session_id": env.session_id}, "configurable": {"thread_id": env.session_id},
                       "callbacks": [AIlinkCallbackHandler(), events]}
        result = agent.invoke(value, config)
        messages = result["messages"]
        tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
        calls = [Seen.of(m.status == "error", str(m.content), m.artifact) for m in tool_messages]
        interrupts = result.get("__interrupt__") or []
        final = messages[-1].content if isinstance(messages[-1], AIMessage) and not interrupts else ""
        return Run(calls, events.seen, str(final), interrupts[0].value["approval_id"] if interrupts else None)

    def run(self, env: Env) -> Run:
        return self._invoke(env, {"messages": [("user", "go")]})

    def pause(self, env: Env, state: Path) -> Run:
        with sqlite3.connect(state, check_same_thread=False) as connection:
            return self._invoke(env, {"messages": [("user", "go")]}, SqliteSaver(connection), "interrupt")

    def resume(self, env: Env, state: Path) -> Run:
        with sqlite3.connect(state, check_same_thread=False) as connection:
            return self._invoke(env, Command(resume="decided"), SqliteSaver(connection), "interrupt")

    def reject(self, env: Env, state: Path) -> Run:
        rejection = {"decisions": [{"type": "reject", "message": REJECTION}]}
        with sqlite3.connect(state, check_same_thread=False) as connection:
            return self._invoke(env, Command(resume=rejection), SqliteSaver(connection), "interrupt")


DRIVER = LangChainDriver()
