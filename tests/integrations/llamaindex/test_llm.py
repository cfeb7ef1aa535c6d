"""``AIlink``, the drop-in LLM, against the emulator's mock OpenAI-compatible LLM."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.tools import FunctionTool
from llama_index.llms.ailink import AIlink, ailink_session
from profiles import both_profiles

from ailink.testing import EmulatorGateway

from .conftest import CHARGE, TOOL
from .test_agent_tools import make_tool, run_agent


@pytest.fixture
def llm_token(ailink_gateway: EmulatorGateway) -> str:
    return ailink_gateway.create_token(name="llm", upstream="llm")


@pytest.fixture
def llm(ailink_gateway: EmulatorGateway, llm_token: str) -> AIlink:
    return AIlink(model="mock-gpt", token=llm_token, gateway_url=ailink_gateway.url, agent_name="rag-bot")


def rows(gateway: EmulatorGateway, session: str) -> list[dict[str, Any]]:
    return list(gateway.session(session)["requests"])


def test_sync_forms_carry_the_session(ailink_gateway: EmulatorGateway, llm: AIlink) -> None:
    with ailink_session("li-sync", properties={"ticket": "T-1"}) as session:
        chat = llm.chat([ChatMessage(role="user", content="hello chat")])
        complete = llm.complete("hello complete")
        streamed = list(llm.stream_chat([ChatMessage(role="user", content="hello stream")]))
        streamed_text = list(llm.stream_complete("hello stream complete"))
    assert chat.message.content == "Echo: hello chat"
    assert complete.text == "Echo: hello complete"
    assert streamed[-1].message.content == "Echo: hello stream" and len(streamed) > 1
    assert streamed_text[-1].text == "Echo: hello stream complete"
    requests = rows(ailink_gateway, session)
    assert len(requests) == 4
    for row in requests:
        assert row["path"] == "/v1/chat/completions" and row["status_code"] == 200
        assert row["agent_name"] == "rag-bot"
        assert row["properties"]["framework"] == "llamaindex" and row["properties"]["ticket"] == "T-1"
        assert len(row["parent_span_id"]) == 16
    # each call is its own LlamaIndex span
    assert len({row["parent_span_id"] for row in requests[:2]}) == 2


async def test_async_forms_carry_the_session(ailink_gateway: EmulatorGateway, llm: AIlink) -> None:
    with ailink_session("li-async") as session:
        chat = await llm.achat([ChatMessage(role="user", content="a chat")])
        complete = await llm.acomplete("a complete")
        chunks = [c async for c in await llm.astream_chat([ChatMessage(role="user", content="a stream")])]
        texts = [c async for c in await llm.astream_complete("a stream complete")]
    assert chat.message.content == "Echo: a chat"
    assert complete.text == "Echo: a complete"
    assert chunks[-1].message.content == "Echo: a stream"
    assert texts[-1].text == "Echo: a stream complete"
    assert len(rows(ailink_gateway, session)) == 4


def test_tool_calling_round(ailink_gateway: EmulatorGateway, llm: AIlink, llm_token: str) -> None:
    ailink_gateway.script_llm(
        llm_token, [{"tool_calls": [{"id": "call_7", "name": "add", "arguments": {"a": 2, "b": 3}}]}]
    )

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    tool = FunctionTool.from_defaults(fn=add)
    response = llm.chat_with_tools([tool], user_msg="what is 2 + 3?")
    [selection] = llm.get_tool_calls_from_response(response)
    assert (selection.tool_id, selection.tool_name, selection.tool_kwargs) == ("call_7", "add", {"a": 2, "b": 3})
    assert tool(**selection.tool_kwargs).raw_output == 5


def test_query_engine_one_session_per_query(ailink_gateway: EmulatorGateway, llm: AIlink) -> None:
    index = VectorStoreIndex.from_documents(
        [Document(text="AIlink is a gateway for agents."), Document(text="Approvals are human decisions.")],
        embed_model=MockEmbedding(embed_dim=8),
    )
    engine = index.as_query_engine(llm=llm)
    first = engine.query("What is AIlink?")
    second = engine.query("What are approvals?")
    assert "Echo:" in str(first) and "Echo:" in str(second)
    audit = [row for row in ailink_gateway.audit() if row["path"] == "/v1/chat/completions"]
    assert len(audit) == 2
    sessions = [row["session_id"] for row in audit]
    # no ailink_session, no workflow: each query's root span is its session
    assert len(set(sessions)) == 2 and all(s.startswith("RetrieverQueryEngine.query-") for s in sessions)
    assert all(row["agent_name"] == "rag-bot" for row in audit)


@pytest.mark.parametrize("streaming", [False, True])
async def test_function_agent_driven_by_ailink(
    ailink_gateway: EmulatorGateway, llm: AIlink, llm_token: str, payments_token: str, streaming: bool
) -> None:
    ailink_gateway.script_llm(
        llm_token,
        [
            {"tool_calls": [{"id": "call_1", "name": TOOL, "arguments": CHARGE}]},
            {"content": "The charge went through."},
        ],
    )
    agent = FunctionAgent(tools=[make_tool(ailink_gateway, payments_token)], llm=llm, streaming=streaming)
    approver = ailink_gateway.approve_when_pending(count=1)
    result, events = await run_agent(agent, "charge cus_001", run_id=f"run-{streaming}")
    approver.join()
    assert str(result) == "The charge went through."
    [call] = [ev for ev in events if isinstance(ev, ToolCallResult)]
    assert call.tool_kwargs == CHARGE and call.tool_output.raw_output["status"] == "ok"
    requests = rows(ailink_gateway, f"run-{streaming}")
    assert [r["path"] for r in requests if r["path"] == "/v1/chat/completions"] == ["/v1/chat/completions"] * 2
    assert [r["tool_name"] for r in requests if r["path"] == "/v1/charges"][-1] == TOOL
    assert ailink_gateway.payments_stats()["charges"] == 1


@both_profiles
def test_one_approval_timeout_is_one_approval(ailink_gateway: EmulatorGateway) -> None:
    gated = {
        "name": "llm-needs-approval",
        "rules": [{"when": {"always": True}, "then": {"action": "require_approval", "timeout": "1s"}}],
    }
    token = ailink_gateway.create_token(upstream="llm", policies=[gated])
    llm = AIlink(model="mock-gpt", token=token, gateway_url=ailink_gateway.url, approval_timeout=5)
    with pytest.raises(openai.APIStatusError) as info:
        llm.complete("needs a human")
    assert info.value.status_code == 408
    audit = ailink_gateway.audit()
    assert [row["status_code"] for row in audit] == [408]
    assert len(ailink_gateway.admin.approvals.list()) == 1


def test_repr_and_serialisation_hide_the_token(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    llm = AIlink(model="mock-gpt", token=llm_token, gateway_url=ailink_gateway.url)
    secret = llm_token.split("_", 2)[-1]
    for text in (repr(llm), str(llm), llm.to_json(), str(llm.to_dict()), str(llm.model_dump()),
                 llm.model_dump_json(), str(llm.dict())):
        assert secret not in text
    assert llm.max_retries == 0 and llm.timeout > llm.approval_timeout
    assert llm.metadata.is_chat_model and llm.metadata.is_function_calling_model
    assert llm.api_base == ailink_gateway.url + "/v1"
    rebuilt = AIlink.from_dict(llm.to_dict(), api_key=llm_token)  # the token is never serialised
    assert rebuilt.complete("again").text == "Echo: again"
    assert (rebuilt.gateway_url, rebuilt.timeout) == (llm.gateway_url, llm.timeout)
    with pytest.raises(ValueError, match="max_retries"):
        AIlink(model="mock-gpt", token=llm_token, gateway_url=ailink_gateway.url, max_retries=2)


def test_one_llm_serves_several_event_loops(ailink_gateway: EmulatorGateway, llm: AIlink) -> None:
    """A global ``Settings.llm`` used by several ``asyncio.run`` calls: each loop gets its own client."""
    import asyncio

    async def ask(i: int) -> str:
        with ailink_session(f"loop-{i}"):
            return (await llm.acomplete(f"question {i}")).text

    answers = [asyncio.run(ask(i)) for i in range(3)]
    assert answers == [f"Echo: question {i}" for i in range(3)]
    for i in range(3):  # and every loop's requests still carry the session headers
        [row] = rows(ailink_gateway, f"loop-{i}")
        assert row["path"] == "/v1/chat/completions" and len(row["parent_span_id"]) == 16
