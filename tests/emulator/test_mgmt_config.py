"""Config-as-code: export (YAML/JSON), import into an empty emulator, round trip, refusal of bad documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from ailink.emulator import EmulatorHost
from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, bearer, client

DENY_REFUNDS = {"name": "block-refunds", "mode": "enforce", "rules": [
    {"when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
     "then": {"action": "deny", "message": "no refunds"}}]}
LIMIT = {"name": "limit", "mode": "shadow", "retry": {"max_retries": 1},
         "rules": [{"then": {"action": "rate_limit", "window": "1m", "max_requests": 5}}]}


@pytest.fixture
def second_gateway(ailink_emulator_host: EmulatorHost) -> Iterator[EmulatorGateway]:
    gateway, stop = start_gateway(host=ailink_emulator_host)
    try:
        yield gateway
    finally:
        stop()


def populate(gw: EmulatorGateway) -> str:
    """Policies, tokens (one with circuit breaker, upstreams, guardrails), a service and aliases."""
    with admin(gw) as a:
        deny = a.post("/api/v1/policies", json=DENY_REFUNDS).json()["id"]
        limit = a.post("/api/v1/policies", json=LIMIT).json()["id"]
        token = a.post("/api/v1/tokens", json={
            "name": "payments-agent", "upstream_url": "http://payments.mock", "policy_ids": [deny, limit],
            "log_level": 2, "circuit_breaker": {"failure_threshold": 4},
            "upstreams": [{"url": "http://payments.mock", "weight": 100, "priority": 1}]}).json()["token_id"]
        a.post("/api/v1/tokens", json={"name": "llm-agent", "upstream_url": "http://llm.mock"})
        a.post("/api/v1/guardrails/enable", json={"token_id": token, "presets": ["pii_redaction", "topic_fence"],
                                                  "topic_denylist": ["politics"]})
        a.post("/api/v1/services", json={"name": "payments", "base_url": "http://payments.mock",
                                         "description": "mock payments"})
        a.post("/api/v1/model-aliases/bulk", json={"aliases": {"fast": "mock-gpt-mini", "smart": "mock-gpt"}})
        return str(token)


def export(gw: EmulatorGateway, fmt: str = "json", path: str = "/api/v1/config/export") -> Any:
    with admin(gw) as a:
        resp = a.get(path, params={"format": fmt})
    assert resp.status_code == 200
    return resp.json() if fmt == "json" else resp.text


def test_export_contains_everything_but_secrets(ailink_gateway: EmulatorGateway) -> None:
    token = populate(ailink_gateway)
    text = export(ailink_gateway, "yaml")
    doc = yaml.safe_load(text)
    assert doc["version"] == "1"
    assert [p["name"] for p in doc["policies"]] == ["block-refunds", "limit"]
    assert doc["policies"][1]["mode"] == "shadow" and doc["policies"][1]["retry"] == {"max_retries": 1}
    agent = doc["tokens"][0]
    assert agent["name"] == "payments-agent" and agent["policies"] == ["block-refunds", "limit"]
    assert agent["log_level"] == "full" and agent["circuit_breaker"]["failure_threshold"] == 4
    assert agent["guardrails"] == {"presets": ["pii_redaction", "topic_fence"], "topic_denylist": ["politics"]}
    assert doc["services"] == [{"name": "payments", "base_url": "http://payments.mock",
                                "description": "mock payments", "service_type": "generic"}]
    assert doc["model_aliases"] == [{"alias": "fast", "model": "mock-gpt-mini"},
                                    {"alias": "smart", "model": "mock-gpt"}]
    assert token not in text and "ailink_v1_" not in text
    only_policies = export(ailink_gateway, path="/api/v1/config/export/policies")
    assert only_policies["tokens"] == [] and len(only_policies["policies"]) == 2
    only_tokens = export(ailink_gateway, path="/api/v1/config/export/tokens")
    assert only_tokens["policies"] == [] and [t["name"] for t in only_tokens["tokens"]] == ["payments-agent",
                                                                                          "llm-agent"]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_import_into_an_empty_emulator_round_trips(ailink_gateway: EmulatorGateway, second_gateway: EmulatorGateway,
                                                   fmt: str) -> None:
    populate(ailink_gateway)
    exported = export(ailink_gateway, fmt)
    body = exported if fmt == "yaml" else json.dumps(exported)
    with admin(second_gateway) as b:
        result = b.post("/api/v1/config/import", content=body,
                        headers={"Content-Type": "application/yaml" if fmt == "yaml" else "application/json"})
        assert result.status_code == 200, result.text
        summary = result.json()
    assert summary["policies_created"] == 2 and summary["tokens_created"] == 2
    assert summary["services_created"] == 1 and summary["model_aliases_created"] == 2
    assert export(second_gateway) == export(ailink_gateway)
    with admin(ailink_gateway) as a, admin(second_gateway) as b:
        def shapes(c: httpx.Client, path: str, keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
            return sorted(tuple(json.dumps(r[k], sort_keys=True) for k in keys) for r in c.get(path).json())

        policy_keys = ("name", "mode", "phase", "rules", "retry")
        assert shapes(a, "/api/v1/policies", policy_keys) == shapes(b, "/api/v1/policies", policy_keys)
        token_keys = ("name", "upstream_url", "log_level", "circuit_breaker", "is_active")
        assert shapes(a, "/api/v1/tokens", token_keys) == shapes(b, "/api/v1/tokens", token_keys)
    # the imported token works and its imported policy is enforced
    created = {t["name"]: t["token_id"] for t in summary["created_tokens"]}
    with client(second_gateway) as c:
        assert c.get("/v1/customers", headers=bearer(created["payments-agent"])).status_code == 200
        denied = c.post("/v1/refunds", json={"charge": "ch_1"}, headers=bearer(created["payments-agent"]))
        assert denied.status_code == 403 and "block-refunds" in denied.json()["error"]["message"]
    # importing the same document again updates instead of duplicating
    with admin(second_gateway) as b:
        again = b.post("/api/v1/config/import", content=body,
                       headers={"Content-Type": "application/yaml" if fmt == "yaml" else "application/json"}).json()
        assert again["policies_updated"] == 2 and again["tokens_updated"] == 2 and again["created_tokens"] == []
        assert len(b.get("/api/v1/tokens").json()) == 2


BAD_DOCUMENTS = [
    ("not: [valid", "application/yaml", "not valid YAML"),
    ("{\"version\": \"1\"", "application/json", "not valid JSON"),
    ("version: '2'\n", "application/yaml", "version"),
    ("- a list\n", "application/yaml", "mapping"),
    ("version: '1'\nsurprise: []\n", "application/yaml", "unknown sections"),
    ("version: '1'\npolicies:\n- name: p\n  rules: [{then: {action: explode}}]\n", "application/yaml", "'p'"),
    ("version: '1'\ntokens:\n- name: t\n  upstream_url: http://llm.mock\n  policies: [missing]\n",
     "application/yaml", "unknown policy"),
    ("version: '1'\ntokens:\n- name: t\n  upstream_url: ftp://x\n", "application/yaml", "upstream_url"),
    ("version: '1'\npolicies:\n- name: d\n  rules: [{when: {field: request.path, op: eq, value: 2024-01-01},"
     " then: {action: allow}}]\n", "application/yaml", "dates"),
    ("version: '1'\nmodel_aliases:\n- {alias: a, model: b}\n- {alias: b, model: c}\n", "application/yaml", "chains"),
    ("version: '1'\ntokens:\n- name: t\n  upstream_url: http://llm.mock\n  guardrails: {presets: [nope]}\n",
     "application/yaml", "unusable presets"),
]


@pytest.mark.parametrize(("body", "content_type", "needle"), BAD_DOCUMENTS)
def test_import_refuses_bad_documents_and_writes_nothing(ailink_gateway: EmulatorGateway, body: str,
                                                         content_type: str, needle: str) -> None:
    # a valid policy first in the same document must not be written either
    if body.startswith("version: '1'\n") and "policies:" not in body:
        valid_policy = "policies:\n- {name: ok, rules: [{then: {action: allow}}]}\n"
        body = body.replace("version: '1'\n", "version: '1'\n" + valid_policy)
    with admin(ailink_gateway) as a:
        resp = a.post("/api/v1/config/import", content=body, headers={"Content-Type": content_type})
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "validation_error" and needle in resp.json()["error"]["message"]
        assert a.get("/api/v1/policies").json() == [] and a.get("/api/v1/tokens").json() == []


def test_import_bounds_yaml_alias_expansion(ailink_gateway: EmulatorGateway) -> None:
    lines = ["version: '1'", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1},"
              f" *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    with admin(ailink_gateway) as a:
        resp = a.post("/api/v1/config/import", content="\n".join(lines), headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 422 and "more than" in resp.json()["error"]["message"]


def test_config_export_format_and_auth(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        yaml_resp = a.get("/api/v1/config/export")
        assert yaml_resp.headers["content-type"].startswith("application/yaml")
        assert yaml.safe_load(yaml_resp.text) == {"version": "1", "policies": [], "tokens": [], "services": [],
                                                  "model_aliases": []}
        assert a.get("/api/v1/config/export", params={"format": "xml"}).status_code == 422
        assert a.get("/api/v1/config/export", params={"project_id": "nope"}).status_code == 404
    for method, path in (("GET", "/api/v1/config/export"), ("GET", "/api/v1/config/export/tokens"),
                         ("POST", "/api/v1/config/import")):
        assert httpx.request(method, ailink_gateway.url + path).status_code == 401
