"""Shared set-up of the LlamaIndex integration tests: policies, a scripted agent LLM, helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM

from ailink.testing import EmulatorGateway

TOOL = "payments_api"
CHARGE = {"method": "POST", "path": "/v1/charges", "body": {"amount": 5000, "currency": "usd", "customer": "cus_001"}}
REFUND = {"method": "POST", "path": "/v1/refunds", "body": {"charge": "ch_1", "amount": 100}}
LOOKUP = {"method": "GET", "path": "/v1/customers/cus_001"}


def approval_policy(timeout: str = "30s") -> dict[str, Any]:
    return {
        "name": "charges-need-approval",
        "rules": [
            {
                "when": {
                    "all": [
                        {"field": "request.method", "op": "eq", "value": "POST"},
                        {"field": "request.path", "op": "eq", "value": "/v1/charges"},
                    ]
                },
                "then": {"action": "require_approval", "timeout": timeout},
            }
        ],
    }


DENY_REFUNDS = {
    "name": "no-refunds",
    "rules": [
        {
            "when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
            "then": {"action": "deny", "message": "refunds need a human"},
        }
    ],
}


def scripted_llm(actions: Sequence[dict[str, Any]], final: str = "All done.") -> MockFunctionCallingLLM:
    """A function-calling mock LLM that calls ``TOOL`` with each action in turn, then answers ``final``."""

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        done = sum(1 for m in messages if m.role == MessageRole.TOOL)
        if done < len(actions):
            block = ToolCallBlock(tool_call_id=f"call_{done + 1}", tool_name=TOOL, tool_kwargs=dict(actions[done]))
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[block])
        return ChatMessage(role=MessageRole.ASSISTANT, content=final)

    return MockFunctionCallingLLM(response_generator=respond)


@pytest.fixture
def payments_token(ailink_gateway: EmulatorGateway) -> str:
    return ailink_gateway.create_token(name="payments", upstream="payments", policies=[approval_policy(), DENY_REFUNDS])
