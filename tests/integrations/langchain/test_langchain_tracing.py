"""Session tracing end to end, session-id resolution, and the approval custom events."""

from __future__ import annotations

import sys
from typing import Any
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_ailink import AIlinkCallbackHandler, ChatAIlink
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_support import CUSTOMER, RunRecorder, calls, charge, charges_need_approval, scripted

from ailink import span_id_from
from ailink.testing import EmulatorGateway

LLM_PATH = "/v1/chat/completions"
#: Python 3.10's asyncio tasks do not inherit context, so LangChain cannot hand an async run's config
#: (its callbacks, its metadata) to the child runs it starts (LangChain documents passing it by hand).
ASYNC_RUN_TREE = pytest.param(True, marks=pytest.mark.skipif(
    sys.version_info < (3, 11), reason="LangChain propagates an async run's callbacks from Python 3.11"))


@pytest.mark.parametrize("use_async", [False, ASYNC_RUN_TREE])
async def test_the_session_holds_the_run_tree(ailink_gateway: EmulatorGateway, make_tool: Any,
                                              use_async: bool) -> None:
    llm_token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(llm_token, [
        {"tool_calls": [{"id": "call_1", "name": "payments_api", "arguments": CUSTOMER},
                        {"id": "call_2", "name": "payments_api", "arguments": charge(42)}]},
        {"content": "Looked up and charged."},
    ])
    model = ChatAIlink(model="gpt-4o-mini", token=llm_token, gateway_url=ailink_gateway.url, agent_name="billing")
    agent = create_agent(model, tools=[make_tool()])
    recorder = RunRecorder()
    config: Any = {"metadata": {"ailink_session_id": "sess-tree"},
                   "callbacks": [AIlinkCallbackHandler(), recorder]}
    inputs = {"messages": [("user", "look up and charge")]}
    result = await agent.ainvoke(inputs, config) if use_async else agent.invoke(inputs, config)
    assert result["messages"][-1].content == "Looked up and charged."

    requests = ailink_gateway.session("sess-tree")["requests"]
    llm_runs, tool_runs = recorder.of_kind("llm"), recorder.of_kind("tool")
    assert (len(llm_runs), len(tool_runs)) == (2, 2)
    assert sorted(r["path"] for r in requests) == sorted([LLM_PATH] * 2 + ["/v1/charges", "/v1/customers/cus_001"])
    by_span: dict[str, UUID] = {span_id_from(rid): rid for rid in recorder.runs}
    roots = set()
    for request in requests:
        run_id = by_span[request["parent_span_id"]]  # the request hangs under its LangChain run
        parent, kind, _ = recorder.runs[run_id]
        assert kind == ("llm" if request["path"] == LLM_PATH else "tool")
        props = request["properties"]
        assert props["framework"] == "langchain"
        assert props["run_span"] == span_id_from(run_id)
        assert props["parent_run_span"] == span_id_from(parent)
        ancestry = recorder.ancestry(run_id)  # root graph → node → (model | tool)
        assert [span for span, _label in props["span_path"]] == [span_id_from(r) for r in ancestry]
        assert all(isinstance(label, str) and label for _span, label in props["span_path"])
        assert props["langgraph_node"] == ("model" if kind == "llm" else "tools")
        roots.add(ancestry[0])
    assert len(roots) == 1 and recorder.runs[roots.pop()][0] is None  # one tree, rooted at the agent run
    assert {r["properties"].get("tool_call_id") for r in requests} == {None, "call_1", "call_2"}


def test_session_falls_back_to_the_thread_then_the_root_run(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool()
    model = scripted(calls(("call_1", CUSTOMER)), AIMessage(content="ok"))
    from langgraph.checkpoint.memory import InMemorySaver

    agent = create_agent(model, tools=[tool], checkpointer=InMemorySaver())
    agent.invoke({"messages": [("user", "x")]}, {"configurable": {"thread_id": "thread-s"}})
    assert [r["path"] for r in ailink_gateway.session("thread-s")["requests"]] == ["/v1/customers/cus_001"]

    recorder = RunRecorder()
    chain = RunnableLambda(lambda _: tool.invoke(CUSTOMER)) | RunnableLambda(lambda x: x)
    chain.invoke("go", {"callbacks": [AIlinkCallbackHandler(), recorder]})
    (root,) = [rid for rid, (parent, _, _) in recorder.runs.items() if parent is None]
    requests = ailink_gateway.session(str(root))["requests"]
    assert [r["path"] for r in requests] == ["/v1/customers/cus_001"]
    (tool_run,) = recorder.of_kind("tool")
    assert requests[0]["parent_span_id"] == span_id_from(tool_run)


async def test_astream_events_show_pending_and_resolved(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    model = scripted(calls(("call_c", charge(250000))), AIMessage(content="Charged."))
    agent = create_agent(model, tools=[make_tool(charges_need_approval())])
    approver = ailink_gateway.approve_when_pending(count=1)
    custom = []
    async for event in agent.astream_events({"messages": [("user", "charge")]}, version="v2"):
        if event["event"] == "on_custom_event":
            custom.append((event["name"], event["data"]))
    (approval_id,) = approver.join()
    assert [name for name, _ in custom] == ["ailink.approval.pending", "ailink.approval.resolved"]
    pending, resolved = custom[0][1], custom[1][1]
    assert pending["approval_id"] == approval_id and pending["tool_call_id"] == "call_c"
    assert pending["summary"] == {"method": "POST", "path": "/v1/charges"} and pending["expires_at"]
    assert resolved["approval_id"] == approval_id and resolved["status"] == "ok"
    assert ailink_gateway.payments_stats()["charges"] == 1


def test_the_langgraph_custom_stream_gets_the_events(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    model = scripted(calls(("call_c", charge(1000))), AIMessage(content="Charged."))
    agent = create_agent(model, tools=[make_tool(charges_need_approval())])
    approver = ailink_gateway.approve_when_pending(count=1, decision="rejected")
    chunks = list(agent.stream({"messages": [("user", "charge")]}, stream_mode="custom"))
    (approval_id,) = approver.join()
    assert [c["type"] for c in chunks] == ["ailink.approval.pending", "ailink.approval.resolved"]
    assert chunks[0]["approval_id"] == chunks[1]["approval_id"] == approval_id
    assert chunks[1]["status"] == "rejected"
