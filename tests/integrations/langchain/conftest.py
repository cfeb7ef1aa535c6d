"""Fixtures of the LangChain integration tests (emulator over loopback from ``ailink.testing``)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_ailink import AIlinkTool, langchain_tool

from ailink.testing import EmulatorGateway


@pytest.fixture
def make_tool(ailink_gateway: EmulatorGateway) -> Any:
    """Build a payments tool whose token carries ``policies``."""

    def make(*policies: dict[str, Any], **options: Any) -> AIlinkTool:
        token = ailink_gateway.create_token(policies=list(policies))
        options.setdefault("methods", ["GET", "POST"])
        return langchain_tool(token=token, name="payments_api", description="Call the payments API.",
                              gateway_url=ailink_gateway.url, agent_name="billing-bot", **options)

    return make
