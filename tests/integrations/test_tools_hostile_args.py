"""Arguments a model may get wrong, through each framework's real tool invocation path.

A seeded, bounded generator produces invalid arguments of every kind listed below; each case goes
through LangChain ``tool.invoke``/``ainvoke`` (a ToolCall), CrewAI ``tool.run``/``arun``,
LlamaIndex ``FunctionTool.call``/``acall``, the Agents SDK runner's ``on_invoke_tool`` (the
arguments as text) and a Pydantic AI agent's ``run_sync``/``run`` (a scripted model's tool call),
built against a real emulator behind a counting proxy. Every answer must be the framework's error
result with readable text (our tool's refusal; or, for arguments Pydantic AI cannot read as a JSON
object, its own retry prompt), no exception may escape, and nothing may reach the gateway (no byte
through the proxy, no audit row, no upstream call).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from gateway_stubs import CountingProxy, describe
from tool_paths import MAX_TEXT, PATHS, TOOL

from ailink.testing import EmulatorGateway

SEED = int(os.environ.get("AILINK_HOSTILE_SEED", "20261122"))
CASES_PER_KIND = 3

Maker = Callable[[random.Random], Any]


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"amount": 1}
    for _ in range(depth):
        value = {"nested": value}
    return value


def _splice(rng: random.Random, base: str, piece: str) -> str:
    at = rng.randint(1, len(base))
    return base[:at] + piece + base[at:]


CUSTOMER_PATH = "/v1/customers/cus_001"
KINDS: dict[str, Maker] = {
    "wrong type: method": lambda r: {"method": r.choice([123, 1.5, True, ["GET"], {"m": "GET"}]), "path": "/v1/x"},
    "wrong type: path": lambda r: {"method": "GET", "path": r.choice([42, ["/v1/x"], {"p": "/v1"}, False])},
    "wrong type: query": lambda r: {"method": "GET", "path": "/v1/customers",
                                    "query": r.choice(["limit=1", [1, 2], {"a": [1]}, {"a": {"b": 1}}])},
    "wrong type: body": lambda r: {"method": "POST", "path": "/v1/charges", "body": r.choice(["amount=1", [1], 7])},
    "wrong type: key": lambda r: {"method": "POST", "path": "/v1/charges", "body": {"amount": 1},
                                  "idempotency_key": r.choice([5, ["k"], {"k": 1}, True])},
    "missing fields": lambda r: r.choice([{}, {"method": "POST"}, {"path": "/v1/charges"},
                                          {"body": {"amount": 1}}]),
    "extra fields": lambda r: {"method": "GET", "path": CUSTOMER_PATH,
                               r.choice(["headers", "url", "host", "timeout", "x-forwarded-for"]): {"Host": "evil"}},
    "unknown method": lambda r: {"method": r.choice(["DELETE", "TRACE", "get ", "CONNECT"]), "path": CUSTOMER_PATH},
    "GET with a body": lambda r: {"method": "GET", "path": CUSTOMER_PATH, "body": {"amount": r.randint(1, 9)}},
    "huge strings": lambda r: r.choice([
        {"method": "G" * r.randint(10_000, 200_000), "path": CUSTOMER_PATH},
        {"method": "GET", "path": "/v1/" + "a" * r.randint(10_000, 200_000) + "\r\nX: y"},
        {"method": "GET", "path": CUSTOMER_PATH, "extra": "x" * r.randint(10_000, 200_000)},
        {"method": "POST", "path": "/v1/charges", "body": {"amount": 1},
         "idempotency_key": "k" * r.randint(10_000, 200_000)},
    ]),
    "non-ASCII": lambda r: r.choice([
        {"method": r.choice(["GЕT", "ПОСТ", "GET\u200b", "ＧＥＴ"]), "path": CUSTOMER_PATH},
        {"method": "GET", "path": _splice(r, CUSTOMER_PATH, r.choice(["\u2028", "\u0085", "\u00a0", "\u3000"]))},
    ]),
    "CR/LF and controls in the path": lambda r: {
        "method": "GET", "path": _splice(r, CUSTOMER_PATH, r.choice(["\r\n", "\r", "\n", "\t", "\x00", " ", "\x7f"]))},
    "encoded CR/LF in the path": lambda r: {
        "method": "GET",
        "path": _splice(r, CUSTOMER_PATH,
                        r.choice(["%0d%0a", "%0D%0A", "%0a", "%0d", "%00", "%09", "%0d%0aX-Y:%20z"]))},
    "encoded traversal": lambda r: {"method": "GET", "path": r.choice([
        "/v1/%2e%2e/admin", "/v1/%2E%2E/admin", "/v1/%252e%252e/admin", "/v1/..%2fadmin", "/v1/%2e%2e%2fadmin",
        "/v1/%25252e%25252e/admin", "/v1/.%2e/admin", "/v1/customers/..%2F..%2Fadmin", "/v1/%2e/customers",
        "/v1/../admin", "/v1/./customers", "/v1/customers/%252fadmin"])},
    "absolute URLs": lambda r: {"method": "GET", "path": r.choice([
        "https://evil.example/x", "http://127.0.0.1:1/x", "/https://evil.example/x", "ftp://evil/x", "v1/customers",
        "file:///etc/passwd"])},
    "network-path references": lambda r: {"method": "GET", "path": r.choice([
        "//evil.example/x", "///etc/passwd", "//127.0.0.1:1/x", "/\\evil.example/x"])},
    "backslashes": lambda r: {"method": "GET", "path": r.choice([
        "/v1\\..\\admin", "/v1/customers\\cus_001", "/v1/%5c..%5cadmin", "\\\\host\\share", "/v1/%255c"])},
    "bad idempotency keys": lambda r: {"method": "POST", "path": "/v1/charges", "body": {"amount": 1},
                                       "idempotency_key": r.choice([
                                           "has space", "tab\tkey", "clé-ü", "ключ", "k" * r.randint(256, 5000),
                                           "line\nbreak", "\x7fdel", "ends with space "])},
    "not a JSON object": lambda r: r.choice([[1, 2], "[1, 2]", 5, None, "null", '"text"', "not json {",
                                             '{"method": "GET", "path": "/v1/%2e%2e/admin"}']),
    "nested depth": lambda r: r.choice([
        {"method": "GET", "path": "/v1/customers", "query": _deep(r.randint(2, 50))},
        {"method": "POST", "path": "/v1/charges", "body": _deep(r.randint(1_500, 4_000))},
    ]),
}


def hostile_cases() -> list[tuple[str, Any]]:
    """``CASES_PER_KIND`` cases of every kind, drawn from one seeded generator (same cases every run)."""
    rng = random.Random(SEED)
    return [(f"{kind} #{i}", make(rng)) for kind, make in KINDS.items() for i in range(CASES_PER_KIND)]


def test_the_generator_is_seeded_and_covers_every_kind() -> None:
    first, second = hostile_cases(), hostile_cases()
    assert [label for label, _ in first] == [label for label, _ in second]
    assert [describe(args) for _, args in first] == [describe(args) for _, args in second]
    assert len(first) == len(KINDS) * CASES_PER_KIND


@pytest.mark.parametrize("path_name", list(PATHS))
async def test_hostile_arguments_are_refused_readably_and_send_nothing(
    path_name: str, ailink_gateway: EmulatorGateway, counting_proxy: CountingProxy
) -> None:
    path = PATHS[path_name]
    token = ailink_gateway.create_token()
    tool = path.build(token=token, name=TOOL, description="Call the payments API.", methods=["GET", "POST"],
                      gateway_url=counting_proxy.url, retries=0)
    problems: list[str] = []
    for n, (label, args) in enumerate(hostile_cases()):
        try:
            seen = path.read(await path.invoke(tool, args, f"call_{n}"))
        except Exception as exc:  # the point of the test: nothing may escape into the agent
            problems.append(f"{label}: {type(exc).__name__} escaped: {describe(str(exc))} <- {describe(args)}")
            continue
        if seen.refused_by_framework or path.framework_refuses(args):
            problems += [f"{label}: {why} <- {describe(args)}" for why in path.refusal_problems(seen, args, token)]
            continue
        why = []
        if not seen.is_error or seen.status != "invalid_arguments":
            why.append(f"status {seen.status!r} (error={seen.is_error})")
        if "Nothing was sent" not in seen.text or len(seen.text) > MAX_TEXT:
            why.append(f"text not a readable refusal ({len(seen.text)} chars): {describe(seen.text)}")
        if token in seen.text:
            why.append("the token is in the text")
        if why:
            problems.append(f"{label}: {'; '.join(why)} <- {describe(args)}")
    assert problems == [], "\n".join(problems)
    assert counting_proxy.bytes_received == 0
    assert ailink_gateway.audit() == []
    assert ailink_gateway.payments_stats()["total_executions"] == 0

    # the same path does reach the gateway for a valid call (the counters above can see traffic)
    answer = await path.invoke(tool, {"method": "GET", "path": CUSTOMER_PATH}, "call_valid")
    assert "HTTP 200 from GET /v1/customers/cus_001" in str(getattr(answer, "content", answer))
    assert counting_proxy.bytes_received > 0
    assert len(ailink_gateway.audit()) == 1
