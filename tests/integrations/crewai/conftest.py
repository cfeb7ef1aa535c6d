"""Fixtures of the CrewAI integration tests (the suite conftest already turned CrewAI telemetry off)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from crewai.events import crewai_event_bus
from crewai_ailink import AIlinkTool, crewai_tool
from crewai_support import PAYMENTS_POLICIES

from ailink.testing import EmulatorGateway


@pytest.fixture
def make_tool(ailink_gateway: EmulatorGateway) -> Any:
    """Build a payments tool whose token carries the named policies of ``PAYMENTS_POLICIES``."""

    def make(*policies: str, **options: Any) -> AIlinkTool:
        token = ailink_gateway.create_token(policies=[PAYMENTS_POLICIES[p] for p in policies])
        options.setdefault("methods", ["GET", "POST"])
        return crewai_tool(token=token, name="payments_api", description="Call the payments API.",
                           gateway_url=ailink_gateway.url, agent_name="billing-bot", **options)

    return make


@pytest.fixture
def bus_events() -> Iterator[list[Any]]:
    """Every AIlink approval event emitted during the test (flushed before the list is read)."""
    from crewai_ailink import AIlinkApprovalPendingEvent, AIlinkApprovalResolvedEvent

    seen: list[Any] = []
    with crewai_event_bus.scoped_handlers():

        @crewai_event_bus.on(AIlinkApprovalPendingEvent)
        def on_pending(source: Any, event: Any) -> None:
            seen.append(event)

        @crewai_event_bus.on(AIlinkApprovalResolvedEvent)
        def on_resolved(source: Any, event: Any) -> None:
            seen.append(event)

        yield seen
        crewai_event_bus.flush()
