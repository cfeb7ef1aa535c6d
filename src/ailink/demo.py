"""What ``ailink demo`` hands a framework's demo scenario, and what the scenario hands back.

A framework package ships its scenario as a function ``run(env: DemoEnv) -> DemoOutcome`` and
registers it under the entry-point group ``ailink.demos`` (name = the framework, as in
``ailink demo --framework <name>``), so the core package never imports an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from ailink._tools import GatewayToolOptions

#: The three actions every scenario's agent takes, in this order.
CUSTOMER_LOOKUP = {"method": "GET", "path": "/v1/customers/cus_001"}
LARGE_CHARGE = {
    "method": "POST",
    "path": "/v1/charges",
    "body": {"amount": 250000, "currency": "usd", "customer": "cus_001", "description": "Annual plan"},
}
BLOCKED_REFUND = {"method": "POST", "path": "/v1/refunds", "body": {"charge": "ch_demo_1", "amount": 1200}}
DEMO_ACTIONS = (CUSTOMER_LOOKUP, LARGE_CHARGE, BLOCKED_REFUND)
TOOL_NAME = "payments_api"
TOOL_DESCRIPTION = "Call the payments REST API (customers, charges, refunds) through the AIlink gateway."
FINAL_ANSWER = "Customer found; the large charge went through after approval; the refund was blocked by policy."


@dataclass
class DemoEnv:
    """A running emulator seeded for the demo."""

    gateway_url: str
    admin_key: str = field(repr=False)
    payments_token: str = field(repr=False)
    llm_token: str = field(repr=False)
    session_id: str
    agent_name: str = "billing-agent"
    model: str = "gpt-4o-mini"
    scripted: bool = True
    approval_timeout: float = 120.0

    def tool_options(self) -> GatewayToolOptions:
        """Keyword arguments of every framework's tool one-liner for the demo's payments tool."""
        return {
            "token": self.payments_token,
            "name": TOOL_NAME,
            "description": TOOL_DESCRIPTION,
            "methods": ["GET", "POST"],
            "gateway_url": self.gateway_url,
            "agent_name": self.agent_name,
            "approval_timeout": self.approval_timeout,
        }

    def llm_options(self) -> dict[str, Any]:
        """Keyword arguments of every framework's gateway LLM for the demo's model."""
        return {"model": self.model, "token": self.llm_token, "gateway_url": self.gateway_url,
                "agent_name": self.agent_name}

    def script_llm(self, responses: list[dict[str, Any]]) -> None:
        """Queue responses of the emulator's mock LLM for ``llm_token`` (only when ``scripted``)."""
        if not self.scripted:
            return
        response = httpx.post(
            self.gateway_url + "/api/v1/emulator/llm/script",
            headers={"X-Admin-Key": self.admin_key},
            json={"token_id": self.llm_token, "responses": responses},
            timeout=10,
        )
        response.raise_for_status()

    def script_demo_tool_calls(self) -> None:
        """Script the mock LLM to call the tool with the three demo actions, then answer."""
        responses: list[dict[str, Any]] = [
            {"tool_calls": [{"id": f"call_demo_{i}", "name": TOOL_NAME, "arguments": action}]}
            for i, action in enumerate(DEMO_ACTIONS, start=1)
        ]
        responses.append({"content": FINAL_ANSWER})
        self.script_llm(responses)


@dataclass
class DemoOutcome:
    """What the scenario's agent did: its final answer and one artifact per tool call."""

    final_answer: str
    tool_artifacts: list[dict[str, Any]] = field(default_factory=list)
