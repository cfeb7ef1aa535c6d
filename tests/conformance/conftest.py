"""The conformance suite: the same scenarios against every adapter, one driver file per framework.

Every ``drivers/*.py`` is a framework (see ``conformance_harness.py``); ``AILINK_CONFORMANCE=a,b``
limits a run to some of them (for a framework kept in an environment of its own). A selected
driver whose framework is not installed is an error, never a silent skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from conformance_harness import Env, FrameworkDriver, load_driver

from ailink.testing import EmulatorGateway

DRIVER_FILES = sorted((Path(__file__).parent / "drivers").glob("*.py"))


def approval_policy(timeout: str) -> dict[str, object]:
    return {"name": "charges-need-approval", "rules": [{
        "when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                         {"field": "request.path", "op": "eq", "value": "/v1/charges"}]},
        "then": {"action": "require_approval", "timeout": timeout}}]}


DENY_REFUNDS = {"name": "no-refunds", "rules": [{
    "when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
    "then": {"action": "deny", "message": "refunds need a human"}}]}


def _drivers() -> list[FrameworkDriver]:
    wanted = {name.strip() for name in os.environ.get("AILINK_CONFORMANCE", "").split(",") if name.strip()}
    files = [f for f in DRIVER_FILES if not wanted or f.stem in wanted]
    if wanted - {f.stem for f in files}:
        raise pytest.UsageError(f"AILINK_CONFORMANCE names no driver file: {sorted(wanted)}")
    return [load_driver(f) for f in files]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "driver" in metafunc.fixturenames:
        drivers = _drivers()
        if metafunc.definition.get_closest_marker("pauses"):  # scenarios only pausing frameworks have
            drivers = [d for d in drivers if d.pauses]
        metafunc.parametrize("driver", drivers, ids=[d.name for d in drivers])


@pytest.fixture
def make_env(ailink_gateway: EmulatorGateway) -> Callable[..., Env]:
    """``make_env(approval="30s", approval_timeout=20, openapi=False)``: fresh tokens (charges need approval,
    refunds are denied) and a fresh session on the test's emulator; ``openapi=True`` gives the agent the
    tools generated from the payments API's OpenAPI document (the emulator serves it) instead."""

    def make(approval: str = "30s", approval_timeout: float = 20.0, openapi: bool = False) -> Env:
        payments = ailink_gateway.create_token(name="payments", upstream="payments",
                                               policies=[approval_policy(approval), DENY_REFUNDS])
        llm = ailink_gateway.create_token(name="llm", upstream="llm")
        document = f"{ailink_gateway.url}/openapi.json" if openapi else None
        return Env(ailink_gateway.url, payments, llm, f"conformance-{secrets.token_hex(6)}", approval_timeout,
                   openapi=document, admin_key=ailink_gateway.admin_key if openapi else None)

    return make
