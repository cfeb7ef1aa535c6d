"""Arguments a model may get wrong for a generated (typed) tool, through each framework's real tool
invocation path: every answer is the framework's error result with the core's readable refusal (or,
for arguments Pydantic AI cannot read as a JSON object, its own retry prompt), no exception escapes,
and nothing reaches the gateway (no byte through the proxy, no audit row).
Arguments named like a framework's own call parameters (``config``, ``run_manager``, ``ctx``) are
refused like any other unknown argument, never taken for the framework's own."""

from __future__ import annotations

import random
from typing import Any

import pytest
from agents_ailink import openai_agents_tools
from crewai_ailink import crewai_tools
from gateway_stubs import CountingProxy, describe
from langchain_ailink import langchain_tools
from llama_index.tools.ailink import llamaindex_tools
from pydantic_ai_ailink import pydantic_ai_tools
from tool_paths import MAX_TEXT, PATHS

from ailink.emulator._mock_payments import openapi_document
from ailink.testing import EmulatorGateway

SEED = 20261201
CUSTOMER = {"customer_id": "cus_001"}
KINDS = {
    "wrong type": lambda r: {"customer_id": r.choice([42, 1.5, True, ["cus_001"], {"id": "cus_001"}])},
    "missing": lambda r: r.choice([{}, {"customerId": "cus_001"}]),
    "unknown argument": lambda r: {**CUSTOMER, r.choice(["headers", "path", "method", "url", "body"]): "x"},
    "a framework's own parameter name": lambda r: {**CUSTOMER, r.choice(["config", "run_manager", "ctx",
                                                                         "callbacks"]): {"a": 1}},
    "pattern": lambda r: {"customer_id": r.choice(["ch_001", "cus_", "CUS_001", "cus_1 ", "cus_001\n"])},
    "path traversal": lambda r: {"customer_id": r.choice(["../admin", "..", "cus_001/../../x", "%2e%2e", "a\\b"])},
    "huge": lambda r: {"customer_id": "cus_" + "1" * r.randint(10_000, 100_000)},
    "not an object": lambda r: r.choice([[1, 2], "[1, 2]", "not json {", 5]),
    "nested depth": lambda r: {"customer_id": {"a": _deep(r.randint(70, 2_000))}},
}


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


def _cases() -> list[tuple[str, Any]]:
    rng = random.Random(SEED)
    return [(f"{kind} #{i}", make(rng)) for kind, make in KINDS.items() for i in range(3)]


BUILDERS = {"langchain": langchain_tools, "crewai": crewai_tools,
            "llamaindex": lambda **o: llamaindex_tools(**o).to_tool_list(),
            "openai_agents": openai_agents_tools, "pydantic_ai": pydantic_ai_tools}


@pytest.mark.parametrize("path_name", list(PATHS))
async def test_hostile_arguments_to_a_generated_tool_are_refused_and_send_nothing(
    path_name: str, ailink_gateway: EmulatorGateway, counting_proxy: CountingProxy
) -> None:
    path = PATHS[path_name]
    token = ailink_gateway.create_token()
    tools = BUILDERS[path_name.split("-")[0]](openapi=openapi_document(), token=token,
                                              gateway_url=counting_proxy.url, retries=0)
    [tool] = [t for t in tools if getattr(t, "name", None) == "retrieve_customer"
              or getattr(getattr(t, "metadata", None), "name", None) == "retrieve_customer"]
    problems: list[str] = []
    for n, (label, args) in enumerate(_cases()):
        try:
            seen = path.read(await path.invoke(tool, args, f"call_{n}"))
        except Exception as exc:
            problems.append(f"{label}: {type(exc).__name__} escaped: {describe(str(exc))} <- {describe(args)}")
            continue
        if seen.refused_by_framework or path.framework_refuses(args):  # Pydantic AI: what it cannot read
            problems += [f"{label}: {why} <- {describe(args)}" for why in path.refusal_problems(seen, args, token)]
            continue
        if not seen.is_error or seen.status != "invalid_arguments" or "Nothing was sent" not in seen.text \
                or len(seen.text) > MAX_TEXT or token in seen.text:
            problems.append(f"{label}: {seen.status!r} {describe(seen.text)} <- {describe(args)}")
    assert problems == [], "\n".join(problems)
    assert counting_proxy.bytes_received == 0 and ailink_gateway.audit() == []

    answer = await path.invoke(tool, CUSTOMER, "call_valid")  # the same path reaches the gateway when valid
    assert "HTTP 200 from GET /v1/customers/cus_001" in str(getattr(answer, "content", answer))
    assert counting_proxy.bytes_received > 0 and len(ailink_gateway.audit()) == 1
