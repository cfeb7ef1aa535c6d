"""Suite-wide set-up. CrewAI's telemetry switches must be set before anything imports crewai."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_TESTING", "true")
os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="ailink-crewai-storage-"))
# The suite talks to loopback only: never to a real provider through a stray key.
os.environ.pop("OPENAI_API_KEY", None)

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest_plugins = ["ailink.testing"]


@pytest.fixture
def demo_gateway(request: pytest.FixtureRequest, ailink_emulator_host: Any) -> Iterator[Any]:
    """An emulator seeded like ``ailink demo`` (payments service, demo policies, two tokens), on the
    session's emulator host.

    Parametrize it indirectly with a profile (``"real"``) like ``ailink_gateway``."""
    from ailink.testing import gateway_options, start_gateway

    gateway, stop = start_gateway(host=ailink_emulator_host, seed="demo",
                                  **gateway_options(getattr(request, "param", None)))
    try:
        yield gateway
    finally:
        stop()


@pytest.fixture
def demo_env(demo_gateway: Any) -> Callable[..., Any]:
    """``demo_env(session_id, approval_timeout=20)``: the ``DemoEnv`` a demo scenario runs against."""
    from ailink.demo import DemoEnv

    def make(session_id: str, approval_timeout: float = 20) -> DemoEnv:
        seed = demo_gateway.running.seed
        assert seed is not None
        return DemoEnv(gateway_url=demo_gateway.url, admin_key=demo_gateway.admin_key,
                       payments_token=seed.payments_token, llm_token=seed.llm_token,
                       session_id=session_id, approval_timeout=approval_timeout)

    return make
