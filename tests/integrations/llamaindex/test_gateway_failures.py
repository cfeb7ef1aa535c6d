"""A gateway that is down, refuses the token or answers garbage never ends a FunctionAgent run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.tools.ailink import llamaindex_tool

from .conftest import CHARGE, TOOL

TOKEN = "ailink_v1_llamaindex_failure_token"
# protocol §10.3: nothing was sent or the gateway refused → request failed; a POST whose answer
# could not be read may have been performed → outcome unknown
EXPECTED = {"unreachable": "error", "unauthorized": "error", "not_http": "outcome_unknown"}


def recording_llm(action: dict[str, Any], final: str, shown: list[str]) -> MockFunctionCallingLLM:
    """Calls ``TOOL`` once with ``action``, then answers ``final``; keeps the tool results it was shown."""

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        results = [str(m.content) for m in messages if m.role == MessageRole.TOOL]
        if not results:
            block = ToolCallBlock(tool_call_id="call_pay", tool_name=TOOL, tool_kwargs=dict(action))
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[block])
        shown[:] = results
        return ChatMessage(role=MessageRole.ASSISTANT, content=final)

    return MockFunctionCallingLLM(response_generator=respond)


@pytest.mark.parametrize("kind", list(EXPECTED))
async def test_the_agent_run_completes_and_the_model_reads_the_error(kind: str, failing_gateway: Any) -> None:
    tool = llamaindex_tool(token=TOKEN, name=TOOL, description="Payments API.", methods=["GET", "POST"],
                           gateway_url=failing_gateway(kind), retries=0)
    shown: list[str] = []
    agent = FunctionAgent(tools=[tool], llm=recording_llm(CHARGE, "Could not charge.", shown), streaming=False)
    handler = agent.run("charge cus_001")
    events = [ev async for ev in handler.stream_events()]
    result = await handler

    assert str(result) == "Could not charge."
    [call] = [ev for ev in events if isinstance(ev, ToolCallResult)]
    output = call.tool_output
    assert output.is_error and output.exception is None  # an answer, not an exception LlamaIndex caught
    assert output.raw_output["status"] == EXPECTED[kind]
    assert shown == [output.content] and output.content.strip() and TOKEN not in output.content
    if EXPECTED[kind] == "outcome_unknown":
        assert output.raw_output["idempotency_key"] in output.content  # the key to re-send with
