"""Policy actions as the real gateway applies them: tool_scope, redact, transform, override, split,
throttle, log/tag; and a clear 422 for the actions the emulator does not implement (both profiles)."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from ailink.testing import EmulatorGateway

from .conftest import admin, bearer, client

both_profiles = pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)
CHAT = {"model": "mock-gpt", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "What is 2+2?"}]}


def policy(*actions: dict[str, Any], name: str = "p", when: dict[str, Any] | None = None,
           mode: str = "enforce") -> dict[str, Any]:
    return {"name": name, "mode": mode, "rules": [{"when": when or {"always": True}, "then": list(actions)}]}


def tools(*names: str) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in names]


def echo(gw: EmulatorGateway, token: str, body: Any, **headers: str) -> dict[str, Any]:
    """What the upstream received (the payments mock's echo), as JSON."""
    with client(gw) as c:
        answer = c.post("/v1/echo", json=body, headers=bearer(token, **headers))
    assert answer.status_code == 200, answer.text
    seen: dict[str, Any] = answer.json()
    seen["json"] = json.loads(seen["body"]) if seen["body"] else None
    return seen


# ---------------------------------------------------------------------- tool_scope


@both_profiles
def test_tool_scope_blocks_lists_and_allows(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    block = gw.create_token(upstream="llm", policies=[policy(
        {"action": "tool_scope", "allowed_tools": [], "blocked_tools": ["stripe.*"]}, name="no-stripe")])
    allow = gw.create_token(upstream="llm", policies=[policy(
        {"action": "tool_scope", "allowed_tools": ["jira.*"], "blocked_tools": ["jira.delete"],
         "deny_message": "not for this agent"}, name="jira-only")])
    with client(gw) as c:
        def send(token: str, body: dict[str, Any]) -> httpx.Response:
            return c.post("/v1/chat/completions", json={**CHAT, **body}, headers=bearer(token))

        blocked = send(block, {"tools": tools("lookup", "stripe.createCharge")})
        anthropic = send(block, {"tools": [{"name": "stripe.refund", "input_schema": {}}]})
        gemini = send(block, {"tools": [{"function_declarations": [{"name": "stripe.payout"}]}]})
        chosen = send(block, {"tool_choice": {"type": "function", "function": {"name": "stripe.x"}}})
        no_tools = send(block, {})
        other_tools = send(block, {"tools": tools("lookup")})
        allowed = send(allow, {"tools": tools("jira.read")})
        unlisted = send(allow, {"tools": tools("db.dropAll")})
        blocked_first = send(allow, {"tools": tools("jira.delete")})
    for answer, tool in ((blocked, "stripe.createCharge"), (anthropic, "stripe.refund"), (gemini, "stripe.payout"),
                         (chosen, "stripe.x")):
        error = answer.json()["error"]
        assert answer.status_code == 403 and error["code"] == "policy_denied", answer.text
        assert error["message"] == (f"Request blocked by policy 'no-stripe': tool not authorized for this agent: "
                                    f"tool '{tool}' is blocked")
    assert [a.status_code for a in (no_tools, other_tools, allowed)] == [200, 200, 200]
    assert unlisted.status_code == 403 and unlisted.json()["error"]["message"].endswith(
        "not for this agent: tool 'db.dropAll' is not in the allowed list")
    assert blocked_first.status_code == 403 and "'jira.delete' is blocked" in blocked_first.text
    assert gw.running.app.state.emulator.llm.calls == 3  # refused requests never reached the upstream
    denied = [row for row in gw.audit() if row["status_code"] == 403]
    assert len(denied) == 6 and {row["policy_result"] for row in denied} == {"denied"}


def test_tool_scope_in_shadow_mode_only_records(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm", policies=[policy(
        {"action": "tool_scope", "blocked_tools": ["*"]}, name="watch", mode="shadow")])
    with client(ailink_gateway) as c:
        answer = c.post("/v1/chat/completions", json={**CHAT, "tools": tools("x")}, headers=bearer(token))
    assert answer.status_code == 200
    assert ailink_gateway.audit()[0]["deny_reason"] == "shadow: watch:tool_scope"


# ---------------------------------------------------------------------- redact


@both_profiles
def test_redact_the_request_by_pattern_and_field(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token(policies=[policy({"action": "redact", "direction": "request",
                                              "patterns": ["ssn", "email", r"ORD-\d{4}"], "fields": ["password"]})])
    seen = echo(gw, token, {"note": "ssn 123-45-6789, mail ada@example.org, order ORD-1234",
                            "login": {"user": "ada", "password": "hunter2"}, "items": [{"password": "x"}]})
    assert seen["json"] == {"note": r"ssn [REDACTED_SSN], mail [REDACTED_EMAIL], order [REDACTED_ORD-\D{4}]",
                            "login": {"user": "ada", "password": "[REDACTED]"}, "items": [{"password": "[REDACTED]"}]}
    clean = echo(gw, token, {"note": "nothing personal"})
    assert clean["json"] == {"note": "nothing personal"}


@both_profiles
def test_redact_block_refuses_before_forwarding(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token(policies=[policy({"action": "redact", "direction": "request", "patterns": ["ssn"],
                                              "on_match": "block"}, name="no-ssn")])
    with client(gw) as c:
        refused = c.post("/v1/charges", json={"amount": 5, "description": "ssn 123-45-6789"}, headers=bearer(token))
        fine = c.post("/v1/charges", json={"amount": 5, "description": "annual plan"}, headers=bearer(token))
    error = refused.json()["error"]
    assert refused.status_code == 403 and error["code"] == "content_blocked" and "no-ssn" in error["message"]
    if gw.serves_extensions:
        assert error["details"]["detected_pii"] == ["ssn"] and error["details"]["forwarded"] is False
    assert fine.status_code == 200 and gw.payments_stats()["charges"] == 1


@both_profiles
def test_redact_the_answer(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token(upstream="llm", policies=[policy(
        {"action": "redact", "direction": "response", "patterns": ["email"]})])
    ask = {**CHAT, "messages": [{"role": "user", "content": "write to ada@example.org"}]}
    with client(gw) as c:
        answer = c.post("/v1/chat/completions", json=ask, headers=bearer(token))
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: write to [REDACTED_EMAIL]"


@pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)
def test_redact_block_on_the_answer_replaces_it_and_the_action_ran_once(ailink_gateway: EmulatorGateway) -> None:
    """The upstream acted before its answer was refused: the refusal is that request's outcome (replayed
    to a re-send on the gateway that stores outcomes, never executed again)."""
    gw = ailink_gateway
    token = gw.create_token(policies=[policy({"action": "redact", "direction": "response", "fields": ["customer"],
                                              "on_match": "block"}, name="no-customers-out")])
    key = {"X-AIlink-Idempotency-Key": "charge-1"}
    with client(gw) as c:
        first = c.post("/v1/charges", json={"amount": 5, "customer": "cus_001"}, headers=bearer(token, **key))
        again = c.post("/v1/charges", json={"amount": 5, "customer": "cus_001"}, headers=bearer(token, **key))
    for answer in (first, again):
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "content_blocked"
    assert gw.payments_stats()["charges"] == (1 if gw.serves_extensions else 2)
    if gw.serves_extensions:
        assert again.headers["idempotent-replayed"] == "true"
        assert first.json()["error"]["details"]["phase"] == "response"


# ---------------------------------------------------------------------- transform, override, split


@both_profiles
def test_transform_operations(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token(policies=[policy({"action": "transform", "operations": [
        {"type": "set_header", "name": "X-Custom-Header", "value": "ailink-test"},
        {"type": "remove_header", "name": "User-Agent"},
        {"type": "append_system_prompt", "text": "Always reply with AILINK."},
        {"type": "prepend_system_prompt", "text": "You are an expert."},
        {"type": "regex_replace", "pattern": r"order (\d+)", "replacement": "order #$1"},
        {"type": "set_body_field", "path": "metadata.team", "value": "billing"},
        {"type": "set_body_field", "path": "temperature", "value": 0.1},
        {"type": "remove_body_field", "path": "user"},
        {"type": "add_to_message_list", "role": "user", "content": "(context)"},
    ]})])
    body = {**CHAT, "temperature": 0.9, "user": "ada",
            "messages": [*CHAT["messages"][:1], {"role": "user", "content": "ship order 42"}]}
    seen = echo(gw, token, body, **{"User-Agent": "agent/1"})
    assert seen["headers"]["x-custom-header"] == "ailink-test" and "user-agent" not in seen["headers"]
    assert seen["json"] == {
        "model": "mock-gpt", "temperature": 0.1, "metadata": {"team": "billing"},
        "messages": [{"role": "system", "content": "You are an expert.\nBe brief.\nAlways reply with AILINK."},
                     {"role": "user", "content": "(context)"}, {"role": "user", "content": "ship order #42"}]}


def test_system_prompt_is_created_and_messages_placed(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[policy({"action": "transform", "operations": [
        {"type": "append_system_prompt", "text": "Be safe."},
        {"type": "add_to_message_list", "role": "assistant", "content": "first", "position": "first"},
        {"type": "add_to_message_list", "role": "user", "content": "last", "position": "last"},
    ]})])
    seen = echo(ailink_gateway, token, {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert [(m["role"], m["content"]) for m in seen["json"]["messages"]] == [
        ("assistant", "first"), ("system", "Be safe."), ("user", "hi"), ("user", "last")]
    untouched = echo(ailink_gateway, token, {"amount": 5})  # no messages: nothing to add to
    assert untouched["json"] == {"amount": 5}


@both_profiles
def test_override_and_split(ailink_gateway: EmulatorGateway) -> None:
    gw = ailink_gateway
    token = gw.create_token(upstream="llm", policies=[
        policy({"action": "override", "set_body_fields": {"max_tokens": 64}}, name="cap"),
        policy({"action": "split", "experiment": "model-ab", "variants": [
            {"weight": 50, "name": "control", "set_body_fields": {"model": "gpt-4o"}},
            {"weight": 50, "name": "candidate", "set_body_fields": {"model": "gpt-4o-mini"}},
            {"weight": 0, "name": "never", "set_body_fields": {"model": "never"}}]}, name="ab"),
    ])
    with client(gw) as c:
        models = {c.post("/v1/chat/completions", json={**CHAT, "temperature": 0.7},
                         headers=bearer(token)).json()["model"] for _ in range(24)}
    assert models == {"gpt-4o", "gpt-4o-mini"}
    rows = gw.audit()
    assert {(row["experiment_name"], row["variant_name"], row["model"]) for row in rows} == {
        ("model-ab", "control", "gpt-4o"), ("model-ab", "candidate", "gpt-4o-mini")}


# ---------------------------------------------------------------------- throttle, log, tag


def test_throttle_delays_and_log_and_tag_are_recorded(ailink_gateway: EmulatorGateway,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    token = ailink_gateway.create_token(policies=[policy(
        {"action": "throttle", "delay_ms": 150},
        {"action": "log", "level": "info", "tags": {"source": "async"}},
        {"action": "tag", "key": "risk", "value": "high"}, name="watched")])
    with caplog.at_level(logging.INFO, logger="ailink.emulator.policy"), client(ailink_gateway) as c:
        assert c.get("/v1/customers/cus_001", headers=bearer(token)).status_code == 200
    [row] = ailink_gateway.audit()
    assert row["latency_ms"] >= 150  # the request waited at least the throttle's delay
    assert row["policy_tags"] == {"source": "async", "risk": "high"}
    assert any("watched" in record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------------- create-time checks


@pytest.mark.parametrize(("action", "said"), [
    ({"action": "content_filter"}, "'content_filter' is not implemented by the emulator"),
    # webhook and dynamic_route are implemented (``_webhooks``, ``_routing``): checked, not refused by name
    ({"action": "webhook", "url": "ftp://example.invalid"}, "then[0].url: must be an http(s) URL"),
    ({"action": "dynamic_route", "strategy": "round_robin", "pool": []}, "then[0].pool: a list of 1-"),
    ({"action": "conditional_route", "branches": []}, "'conditional_route' is not implemented"),
    ({"action": "validate_schema", "schema": {}}, "'validate_schema' is not implemented"),
    ({"action": "external_guardrail", "vendor": "llama_guard"}, "'external_guardrail' is not implemented"),
    ({"action": "redact", "patterns": ["ssn"], "on_match": "tokenize"}, "'tokenize' is not implemented"),
    ({"action": "redact", "patterns": ["(a"]}, "(redact).patterns: invalid regex"),
    ({"action": "tool_scope", "blocked_tools": "stripe"}, "(tool_scope).blocked_tools: must be a list of strings"),
    ({"action": "transform", "operations": [{"type": "set_header", "name": "Authorization", "value": "x"}]},
     "the header 'Authorization' cannot be set by a policy"),
    ({"action": "transform", "operations": [{"type": "rename"}]}, "(transform).operations[0].type"),
    ({"action": "split", "variants": [{"weight": 0, "set_body_fields": {"model": "m"}}]}, "weight must be positive"),
    ({"action": "throttle", "delay_ms": -1}, "(throttle).delay_ms"),
    ({"action": "log", "level": "loud"}, "(log).level"),
    ({"action": "tag", "key": "k"}, "(tag): 'value' is required"),
])
def test_actions_are_checked_at_create_time(ailink_gateway: EmulatorGateway, action: dict[str, Any],
                                            said: str) -> None:
    with admin(ailink_gateway) as a:
        answer = a.post("/api/v1/policies", json=policy(action))
    assert answer.status_code == 422
    assert said in answer.json()["error"]["message"]


def test_actions_travel_with_an_approved_request(ailink_gateway: EmulatorGateway) -> None:
    """[ext] The request the gateway executes after approval is the transformed one, and its stored
    answer is redacted like any other."""
    token = ailink_gateway.create_token(policies=[policy(
        {"action": "transform", "operations": [{"type": "set_header", "name": "X-Team", "value": "billing"},
                                               {"type": "set_body_field", "path": "checked", "value": True}]},
        {"action": "redact", "direction": "response", "patterns": ["email"]},
        {"action": "require_approval", "timeout": "1m"})])
    with client(ailink_gateway) as c:
        pending = c.post("/v1/echo", json={"note": "mail ada@example.org"},
                         headers=bearer(token, Prefer="respond-async"))
        approval_id = pending.json()["approval_id"]
        ailink_gateway.decide(approval_id, "approved")
        result = c.get(f"/v1/approvals/{approval_id}/result", headers=bearer(token))
    seen = result.json()  # what the upstream received, as the client gets it back
    assert result.status_code == 200 and seen["headers"]["x-team"] == "billing"
    assert json.loads(seen["body"]) == {"note": "mail [REDACTED_EMAIL]", "checked": True}
