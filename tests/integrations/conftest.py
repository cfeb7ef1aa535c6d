"""Fixtures shared by the integration tests of every framework: broken gateways and a counting proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from gateway_stubs import GARBAGE, UNKNOWN_TOKEN, CountingProxy, StubGateway, closed_port, http_answer

from ailink.testing import EmulatorGateway


@pytest.fixture
def failing_gateway() -> Iterator[Callable[[str], str]]:
    """``failing_gateway(kind)``: the URL of a loopback gateway that is ``"unreachable"`` (a closed
    port), answers 401 to every token (``"unauthorized"``), or answers garbage (a key of
    ``gateway_stubs.GARBAGE``: ``"not_http"``, ``"broken_pending"``, ``"truncated"``)."""
    stubs: list[StubGateway] = []

    def make(kind: str) -> str:
        if kind == "unreachable":
            return f"http://127.0.0.1:{closed_port()}"
        stub = StubGateway(http_answer(401, UNKNOWN_TOKEN) if kind == "unauthorized" else GARBAGE[kind])
        stubs.append(stub)
        return stub.url

    yield make
    for stub in stubs:
        stub.close()


@pytest.fixture
def counting_proxy(ailink_gateway: EmulatorGateway) -> Iterator[CountingProxy]:
    """A loopback proxy in front of the emulator that counts every byte a client sends to it."""
    proxy = CountingProxy(ailink_gateway.url)
    yield proxy
    proxy.close()
