"""The AIlink SDK's surface on our clients: resources (sync and async), models, health, fallback, BYOK,
guardrails, the client-wide idempotency key and the export table (offline, ``httpx.MockTransport``)."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import ailink
from ailink.types import Upstream

from .helpers import ADMIN_KEY, GATEWAY, TOKEN, Driver, Recorder, json_body

RAW = "raw"  # marks an expected body that is not JSON: (RAW, content, content type)

# (name, call, method, path, query, body, answer, check)
CASES: list[tuple[str, Callable[[Any], Any], str, str, dict[str, str], Any, Any, Callable[[Any], bool]]] = [
    ("tokens.create", lambda c: c.tokens.create(
        "bot", "https://up", credential_id="cred_1", circuit_breaker={"enabled": False}, log_level="full",
        upstreams=[Upstream("https://a", 50), {"url": "https://b", "weight": 50}], allowed_models=["gpt-*"]),
     "POST", "/api/v1/tokens", {},
     {"name": "bot", "upstream_url": "https://up", "credential_id": "cred_1", "circuit_breaker": {"enabled": False},
      "log_level_name": "full", "upstreams": [{"url": "https://a", "weight": 50, "priority": 1},
                                              {"url": "https://b", "weight": 50}], "allowed_models": ["gpt-*"]},
     {"token_id": TOKEN, "name": "bot", "message": "created"},
     lambda r: isinstance(r, ailink.TokenCreateResponse) and r["token_id"] == TOKEN and r["id"] == TOKEN
     and r.upstream_url == "https://up" and r.credential_id == "cred_1"),
    ("tokens.list(project)", lambda c: c.tokens.list("proj_1"), "GET", "/api/v1/tokens", {"project_id": "proj_1"},
     None, [{"id": TOKEN, "name": "t"}], lambda r: r[0]["name"] == "t"),
    ("tokens.upstream_health", lambda c: c.tokens.upstream_health(), "GET", "/api/v1/health/upstreams", {}, None,
     [{"url": "https://up", "is_healthy": True}], lambda r: r[0]["is_healthy"] is True),
    ("tokens.get_circuit_breaker", lambda c: c.tokens.get_circuit_breaker("t/1"), "GET",
     "/api/v1/tokens/t%2F1/circuit-breaker", {}, None, {"enabled": True}, lambda r: r == {"enabled": True}),
    ("tokens.set_circuit_breaker", lambda c: c.tokens.set_circuit_breaker("t1", enabled=True, failure_threshold=5),
     "PATCH", "/api/v1/tokens/t1/circuit-breaker", {},
     {"enabled": True, "failure_threshold": 5, "recovery_cooldown_secs": 30, "half_open_max_requests": 1},
     {"enabled": True, "failure_threshold": 5}, lambda r: r["failure_threshold"] == 5),
    ("tokens.enable_guardrails", lambda c: c.tokens.enable_guardrails("t1", ["pii_block"], ["billing"]), "POST",
     "/api/v1/guardrails/enable", {},
     {"token_id": "t1", "presets": ["pii_block"], "source": "sdk", "topic_allowlist": ["billing"]},
     {"success": True}, lambda r: r == {"success": True}),
    ("tokens.disable_guardrails", lambda c: c.tokens.disable_guardrails("t1", "guardrail:pci"), "DELETE",
     "/api/v1/guardrails/disable", {}, {"token_id": "t1", "policy_name_prefix": "guardrail:pci"},
     {"removed": 1}, lambda r: r == {"removed": 1}),
    ("guardrails.list_presets", lambda c: c.guardrails.list_presets(), "GET", "/api/v1/guardrails/presets", {}, None,
     {"presets": [{"name": "pii_block"}]}, lambda r: r == [{"name": "pii_block"}]),
    ("guardrails.status", lambda c: c.guardrails.status("t1"), "GET", "/api/v1/guardrails/status",
     {"token_id": "t1"}, None, {"has_guardrails": False}, lambda r: r["has_guardrails"] is False),
    ("guardrails.enable", lambda c: c.guardrails.enable("t1", [ailink.PRESET_PII_REDACTION], topic_denylist=["x"]),
     "POST", "/api/v1/guardrails/enable", {},
     {"token_id": "t1", "presets": ["pii_redaction"], "source": "sdk", "topic_denylist": ["x"]},
     {"success": True}, lambda r: r["success"]),
    ("approvals.list(project)", lambda c: c.approvals.list("proj_1"), "GET", "/api/v1/approvals",
     {"project_id": "proj_1"}, None,
     [{"id": "a1", "status": "pending", "token_id": TOKEN, "request_summary": {"method": "POST", "path": "/v1/x",
                                                                            "body_preview": "{}"}}],
     lambda r: r[0].request_summary.method == "POST" and r[0]["request_summary"]["body_preview"] == "{}"),
    ("approvals.decide(approve)", lambda c: c.approvals.decide("a1", "approve"), "POST",
     "/api/v1/approvals/a1/decision", {}, {"decision": "approved"}, {"id": "a1", "status": "approved",
                                                                     "updated": True}, lambda r: r["updated"]),
    ("approvals.decide_many", lambda c: c.approvals.decide_many(
        [{"id": "a1", "decision": "approve"}, {"id": "a2", "decision": "rejected", "reason": "no"}], reviewed_by="ops"),
     "POST", "/api/v1/approvals/decisions", {},
     {"decisions": [{"id": "a1", "decision": "approved"}, {"id": "a2", "decision": "rejected", "reason": "no"}],
      "reviewed_by": "ops"},
     {"results": [{"id": "a1", "status": "approved", "updated": True},
                  {"id": "a2", "status": None, "updated": False, "error": "approval_not_found"}], "updated": 1},
     lambda r: r[0].updated and r[1].status is None and r[1].get("error") == "approval_not_found"),
    ("projects.list", lambda c: c.projects.list(), "GET", "/api/v1/projects", {}, None, [{"id": "p"}],
     lambda r: r == [{"id": "p"}]),
    ("projects.create", lambda c: c.projects.create("ops"), "POST", "/api/v1/projects", {}, {"name": "ops"},
     {"id": "p", "name": "ops"}, lambda r: r["name"] == "ops"),
    ("projects.delete", lambda c: c.projects.delete("p"), "DELETE", "/api/v1/projects/p", {}, None, None,
     lambda r: r is None),
    ("api_keys.create", lambda c: c.api_keys.create("ci", "readonly", ["audit:read"]), "POST", "/api/v1/auth/keys",
     {}, {"name": "ci", "role": "readonly", "scopes": ["audit:read"]}, {"id": "k1", "key": "ak_live_x"},
     lambda r: r["id"] == "k1"),
    ("api_keys.list", lambda c: c.api_keys.list(), "GET", "/api/v1/auth/keys", {"limit": "50", "offset": "0"}, None,
     [], lambda r: r == []),
    ("api_keys.revoke", lambda c: c.api_keys.revoke("k1"), "DELETE", "/api/v1/auth/keys/k1", {}, None,
     {"revoked": True}, lambda r: r["revoked"]),
    ("api_keys.whoami", lambda c: c.api_keys.whoami(), "GET", "/api/v1/auth/whoami", {}, None,
     {"role": "superadmin"}, lambda r: r["role"] == "superadmin"),
    ("webhooks.create", lambda c: c.webhooks.create("https://hook", ["approval_requested"], "s3cret"), "POST",
     "/api/v1/webhooks", {}, {"url": "https://hook", "events": ["approval_requested"], "signing_secret": "s3cret"},
     {"id": "w1"}, lambda r: r["id"] == "w1"),
    ("webhooks.test", lambda c: c.webhooks.test("w1"), "POST", "/api/v1/webhooks/w1/test", {}, None,
     {"status": 200}, lambda r: r["status"] == 200),
    ("webhooks.deliveries", lambda c: c.webhooks.deliveries("w1", limit=5), "GET", "/api/v1/webhooks/w1/deliveries",
     {"limit": "5", "offset": "0"}, None, [{"id": "d1"}], lambda r: r[0]["id"] == "d1"),
    ("webhooks.delete", lambda c: c.webhooks.delete("w1"), "DELETE", "/api/v1/webhooks/w1", {}, None, None,
     lambda r: r is None),
    ("model_aliases.create", lambda c: c.model_aliases.create("fast", "gpt-4o-mini"), "POST",
     "/api/v1/model-aliases", {}, {"alias": "fast", "model": "gpt-4o-mini"}, {"alias": "fast"},
     lambda r: r["alias"] == "fast"),
    ("model_aliases.get", lambda c: c.model_aliases.get("fast"), "GET", "/api/v1/model-aliases/fast", {}, None,
     {"alias": "fast", "model": "m"}, lambda r: r["model"] == "m"),
    ("experiments.create", lambda c: c.experiments.create("ab", [{"name": "a", "weight": 100}]), "POST",
     "/api/v1/experiments", {}, {"name": "ab", "variants": [{"name": "a", "weight": 100}], "scope": "project"},
     {"id": "e1"}, lambda r: r["id"] == "e1"),
    ("experiments.results", lambda c: c.experiments.results("e1"), "GET", "/api/v1/experiments/e1/results", {},
     None, {"variants": []}, lambda r: r == {"variants": []}),
    ("experiments.stop", lambda c: c.experiments.stop("e1"), "POST", "/api/v1/experiments/e1/stop", {}, None,
     {"status": "stopped"}, lambda r: r["status"] == "stopped"),
    ("billing.get_usage", lambda c: c.billing.get_usage("2026-01-01"), "GET", "/api/v1/billing/usage",
     {"period": "2026-01-01"}, None, {"requests": 3}, lambda r: r["requests"] == 3),
    ("billing().get_usage", lambda c: c.billing().get_usage(), "GET", "/api/v1/billing/usage", {}, None,
     {"requests": 3}, lambda r: r["requests"] == 3),
    ("analytics.get_token_summary", lambda c: c.analytics.get_token_summary(), "GET", "/api/v1/analytics/tokens", {},
     None, [{"token_id": "t"}], lambda r: len(r) == 1),
    ("analytics.get_token_latency", lambda c: c.analytics.get_token_latency("t1"), "GET",
     "/api/v1/analytics/tokens/t1/latency", {}, None, {"p50": 1.0}, lambda r: r["p50"] == 1.0),
    ("analytics.spend_breakdown", lambda c: c.analytics.spend_breakdown("tag:team", hours=24), "GET",
     "/api/v1/analytics/spend/breakdown", {"group_by": "tag:team", "hours": "24"}, None, {"breakdown": []},
     lambda r: r["breakdown"] == []),
    ("config.export(yaml)", lambda c: c.config.export(), "GET", "/api/v1/config/export", {"format": "yaml"}, None,
     "policies: []\n", lambda r: r == "policies: []\n"),
    ("config.export(json)", lambda c: c.config.export(format="json", project_id="p"), "GET", "/api/v1/config/export",
     {"format": "json", "project_id": "p"}, None, {"policies": []}, lambda r: r == {"policies": []}),
    ("config.export_tokens", lambda c: c.config.export_tokens("json"), "GET", "/api/v1/config/export/tokens",
     {"format": "json"}, None, {"tokens": []}, lambda r: r == {"tokens": []}),
    ("config.import_yaml", lambda c: c.config.import_yaml("policies: []\n"), "POST", "/api/v1/config/import", {},
     (RAW, b"policies: []\n", "application/yaml"), {"policies_created": 0}, lambda r: r["policies_created"] == 0),
    ("config.import_config(dict)", lambda c: c.config.import_config({"policies": []}), "POST",
     "/api/v1/config/import", {}, (RAW, b'{"policies": []}', "application/json"), {"policies_created": 0},
     lambda r: r == {"policies_created": 0}),
]


def _answer(answer: Any) -> httpx.Response:
    if answer is None:
        return httpx.Response(204)
    if isinstance(answer, str):
        return httpx.Response(200, text=answer, headers={"content-type": "application/yaml"})
    return httpx.Response(200, json=answer)


def _check_admin_request(request: httpx.Request, method: str, path: str, query: dict[str, str], body: Any) -> None:
    assert request.method == method
    assert request.url.raw_path.decode().split("?")[0] == path
    assert dict(request.url.params) == query
    if isinstance(body, tuple) and body[0] == RAW:
        assert request.content == body[1] and request.headers["content-type"] == body[2]
    else:
        assert json_body(request) == body
    assert request.headers["x-admin-key"] == ADMIN_KEY
    assert "authorization" not in request.headers
    assert "idempotency-key" not in request.headers and "x-ailink-idempotency-key" not in request.headers


async def _run(driver: Driver, result: Any) -> Any:
    return await result if driver.kind == "async" else result


@pytest.mark.parametrize(("name", "call", "method", "path", "query", "body", "answer", "check"), CASES,
                         ids=[c[0] for c in CASES])
async def test_management_resources_on_both_clients(
    driver: Driver, name: str, call: Callable[[Any], Any], method: str, path: str, query: dict[str, str], body: Any,
    answer: Any, check: Callable[[Any], bool]
) -> None:
    recorder = Recorder(default=lambda request: _answer(answer))
    client = driver.client(recorder, admin_key=ADMIN_KEY)  # an ordinary client with an admin key
    result = await _run(driver, call(client))
    assert len(recorder.requests) == 1
    _check_admin_request(recorder.requests[0], method, path, query, body)
    assert check(result)


async def test_management_without_an_admin_key_names_the_variable(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AILINK_ADMIN_KEY", raising=False)
    recorder = Recorder()
    client = driver.client(recorder)
    with pytest.raises(ailink.AuthenticationError, match="AILINK_ADMIN_KEY"):
        await _run(driver, client.tokens.list())
    assert recorder.requests == []  # nothing was sent


async def test_paginated_lists_fetch_until_a_short_page(driver: Driver) -> None:
    pages = [[{"id": f"t{i}"} for i in range(2)], [{"id": "t2"}]]
    recorder = Recorder(script=[httpx.Response(200, json=page) for page in pages])
    client = driver.client(recorder, admin_key=ADMIN_KEY)
    iterator = client.tokens.list_all(batch_size=2)
    ids = [t.id for t in iterator] if driver.kind == "sync" else [t.id async for t in iterator]
    assert ids == ["t0", "t1", "t2"]
    assert [dict(r.url.params) for r in recorder.requests] == [{"limit": "2", "offset": "0"},
                                                               {"limit": "2", "offset": "2"}]


async def test_config_files_round_trip(driver: Driver, tmp_path: Path) -> None:
    recorder = Recorder(script=[httpx.Response(200, json={"policies": [{"name": "p"}]}),
                                httpx.Response(200, json={"policies_updated": 1})])
    client = driver.client(recorder, admin_key=ADMIN_KEY)
    written = await _run(driver, client.config.export_to_file(tmp_path / "ailink.json"))
    assert json.loads(written.read_text()) == {"policies": [{"name": "p"}]}
    assert recorder.requests[0].url.params["format"] == "json"  # from the file extension
    summary = await _run(driver, client.config.import_from_file(written))
    assert summary == {"policies_updated": 1}
    assert json.loads(recorder.requests[1].content) == {"policies": [{"name": "p"}]}


async def test_bad_config_format_is_refused_before_sending(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder, admin_key=ADMIN_KEY)
    with pytest.raises(ValueError, match="yaml"):
        await _run(driver, client.config.export(format="toml"))
    assert recorder.requests == []


DATA_PLANE: list[tuple[Callable[[Any], Any], str, str, dict[str, str], Any]] = [
    (lambda c: c.batches.create(input_file_id="file-1", endpoint="/v1/chat/completions"), "POST", "/v1/batches", {},
     {"input_file_id": "file-1", "endpoint": "/v1/chat/completions", "completion_window": "24h"}),
    (lambda c: c.batches.retrieve("b1"), "GET", "/v1/batches/b1", {}, None),
    (lambda c: c.batches.list(limit=5), "GET", "/v1/batches", {"limit": "5"}, None),
    (lambda c: c.batches.cancel("b1"), "POST", "/v1/batches/b1/cancel", {}, None),
    (lambda c: c.fine_tuning.create_job(model="gpt-4o-mini", training_file="file-2", seed=7), "POST",
     "/v1/fine_tuning/jobs", {}, {"model": "gpt-4o-mini", "training_file": "file-2", "seed": 7}),
    (lambda c: c.fine_tuning.list_jobs(after="j0"), "GET", "/v1/fine_tuning/jobs", {"after": "j0", "limit": "20"},
     None),
    (lambda c: c.fine_tuning.get_job("j1"), "GET", "/v1/fine_tuning/jobs/j1", {}, None),
    (lambda c: c.fine_tuning.cancel_job("j1"), "POST", "/v1/fine_tuning/jobs/j1/cancel", {}, {}),
    (lambda c: c.fine_tuning.list_events("j1", limit=3), "GET", "/v1/fine_tuning/jobs/j1/events", {"limit": "3"},
     None),
    (lambda c: c.fine_tuning.list_checkpoints("j1"), "GET", "/v1/fine_tuning/jobs/j1/checkpoints", {"limit": "10"},
     None),
]


@pytest.mark.parametrize(("call", "method", "path", "query", "body"), DATA_PLANE, ids=[d[2] + d[1] for d in DATA_PLANE])
async def test_batches_and_fine_tuning_use_the_virtual_token(
    driver: Driver, monkeypatch: pytest.MonkeyPatch, call: Callable[[Any], Any], method: str, path: str,
    query: dict[str, str], body: Any
) -> None:
    monkeypatch.delenv("AILINK_ADMIN_KEY", raising=False)  # not needed on the data plane
    recorder = Recorder(default=httpx.Response(200, json={"id": "x", "object": "batch"}))
    result = await _run(driver, call(driver.client(recorder)))
    assert result == {"id": "x", "object": "batch"}
    request = recorder.requests[0]
    assert (request.method, request.url.path, dict(request.url.params), json_body(request)) == (
        method, path, query, body)
    assert request.headers["authorization"] == f"Bearer {TOKEN}" and "x-admin-key" not in request.headers
    if method == "POST":  # a write: one idempotency key, as every proxied write
        assert request.headers["x-ailink-idempotency-key"]


async def test_data_plane_errors_are_typed(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(
        403, json={"error": {"code": "policy_denied", "message": "Request blocked by policy 'no-batches': no",
                             "type": "permission_error"}}))
    with pytest.raises(ailink.PolicyDeniedError) as denied:
        await _run(driver, driver.client(recorder).batches.create(input_file_id="f", endpoint="/v1/embeddings"))
    assert denied.value.policy_name == "no-batches"


def test_resource_methods_keep_their_signatures() -> None:
    client = ailink.AIlinkClient(TOKEN, GATEWAY, admin_key=ADMIN_KEY)
    aclient = ailink.AsyncClient(TOKEN, GATEWAY, admin_key=ADMIN_KEY)
    create = inspect.signature(client.tokens.create)
    assert list(create.parameters)[:9] == ["name", "upstream_url", "credential_id", "project_id", "policy_ids",
                                           "circuit_breaker", "fallback_url", "upstreams", "log_level"]
    assert "TokenCreateResponse" in str(create.return_annotation)
    assert inspect.signature(aclient.tokens.create) == create
    cb = inspect.signature(client.tokens.set_circuit_breaker).parameters
    assert cb["failure_threshold"].kind is inspect.Parameter.KEYWORD_ONLY and cb["failure_threshold"].default == 3
    assert list(inspect.signature(client.credentials.create).parameters)[:3] == ["name", "provider", "secret"]
    assert list(inspect.signature(client.audit.list).parameters)[:3] == ["limit", "offset", "project_id"]
    assert inspect.iscoroutinefunction(aclient.tokens.create) and not inspect.iscoroutinefunction(client.tokens.create)
    assert client.tokens.create.__doc__ and client.tokens.create.__name__ == "create"
    # one implementation behind both spellings
    assert type(client.tokens).delete is type(client.tokens).revoke
    assert type(client.config).import_yaml is type(client.config).import_config
    with pytest.raises(TypeError):  # the real signature is enforced before anything is sent
        client.tokens.get_circuit_breaker("t", "extra")


def test_models_read_as_mappings_and_keep_secrets_out_of_reprs() -> None:
    token = ailink.Token.model_validate({"id": TOKEN, "name": "t", "brand_new": 1})
    assert token["id"] == TOKEN and token["brand_new"] == 1 and "name" in token and "nope" not in token
    assert token.get("nope", "default") == "default" and token.get("name") == "t"
    keys = token.keys()
    assert keys[:2] == ["id", "name"] and "brand_new" in keys
    assert dict(token)["id"] == TOKEN
    with pytest.raises(KeyError):
        token["nope"]
    created = ailink.TokenCreateResponse.model_validate({"token_id": TOKEN, "name": "t"})
    assert created["id"] == TOKEN and ailink.TokenCreated is ailink.TokenCreateResponse
    assert TOKEN not in repr(created) and TOKEN not in repr(token)
    approval = ailink.ApprovalRequest.model_validate(
        {"id": "a", "status": "pending", "request_summary": {"method": "POST", "path": "/v1/charges"}})
    assert isinstance(approval.request_summary, ailink.RequestSummary)
    assert approval["request_summary"]["path"] == "/v1/charges" and approval.summary_text == "POST /v1/charges"
    assert Upstream("https://a", 10, 2, "cred").to_dict() == {"url": "https://a", "weight": 10, "priority": 2,
                                                              "credential_id": "cred"}
    assert Upstream("https://b").to_dict() == {"url": "https://b", "weight": 100, "priority": 1}


def test_client_options_of_the_sdk() -> None:
    client = ailink.Client(TOKEN, GATEWAY, "billing-agent", None, 12.0, 4)
    assert isinstance(client, ailink.AIlinkClient)
    assert client.agent_name == "billing-agent" and client.settings.timeout == 12.0
    assert client.settings.retry.max_retries == 4 and client.api_key == TOKEN
    assert ailink.AIlinkClient(TOKEN, GATEWAY, retries=1).settings.retry.max_retries == 1
    assert ailink.AIlinkClient(TOKEN, GATEWAY, retries=3, max_retries=3).settings.retry.max_retries == 3
    with pytest.raises(ValueError, match="not both"):
        ailink.AIlinkClient(TOKEN, GATEWAY, retries=1, max_retries=3)
    with pytest.raises(ValueError):
        ailink.AIlinkClient(TOKEN, GATEWAY, idempotency_key="has spaces")
    assert TOKEN not in repr(client)


async def test_client_wide_idempotency_key_gives_each_action_its_own_stable_key(driver: Driver) -> None:
    recorder = Recorder()
    first = driver.client(recorder, idempotency_key="nightly-run-7")
    again = driver.client(recorder, idempotency_key="nightly-run-7")
    await driver.call(first, "POST", "/v1/charges", json={"amount": 1})
    await driver.call(first, "POST", "/v1/charges", json={"amount": 2})
    await driver.call(again, "POST", "/v1/charges", json={"amount": 1})  # the re-run of the same script
    await driver.call(first, "POST", "/v1/charges", json={"amount": 1}, idempotency_key="explicit")
    await driver.call(first, "GET", "/v1/charges")
    await driver.call(first, "POST", "/v1/charges", json={"amount": 1},
                      headers={"X-TrueFlow-Idempotency-Key": "in-a-header"})  # either spelling is the caller's
    keys = recorder.header("x-ailink-idempotency-key")
    assert keys[0] == keys[2] and keys[0] != keys[1]  # same action → same key; another action → another key
    assert keys[0] is not None and keys[0] != "nightly-run-7"  # never one constant key for every request
    assert keys[3] == "explicit" and keys[4] is None and keys[5] == "in-a-header"
    assert recorder.header("x-trueflow-idempotency-key") == keys


async def test_health_report_and_is_healthy(driver: Driver) -> None:
    recorder = Recorder(script=[httpx.Response(200, text="ok"), httpx.Response(503, text="db down"),
                                httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
    client = driver.client(recorder)
    assert await _run(driver, client.health()) == {"status": "ok", "gateway_url": GATEWAY, "http_status": 200}
    assert await _run(driver, client.is_healthy(timeout=1)) is False  # 503
    with pytest.raises(ailink.APIConnectionError):
        await _run(driver, client.health(timeout=1))
    assert await _run(driver, client.is_healthy(timeout=1)) is False  # a timeout, never raised
    assert [r.url.path for r in recorder.requests] == ["/healthz"] * 4
    assert recorder.requests[1].extensions["timeout"]["read"] == 1


def test_with_fallback_is_a_context_manager() -> None:
    fallback = openai.OpenAI(api_key="sk-fallback-test-key", base_url="http://fallback.test/v1", max_retries=0)
    healthy = ailink.AIlinkClient(TOKEN, GATEWAY, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with healthy.with_fallback(fallback) as oai:
        assert oai is not fallback and str(oai.base_url) == f"{GATEWAY}/v1/"
    down = ailink.AIlinkClient(TOKEN, GATEWAY, transport=httpx.MockTransport(lambda r: httpx.Response(502)))
    with pytest.warns(RuntimeWarning, match="bypass policy"), down.with_fallback(fallback, health_timeout=1) as oai:
        assert oai is fallback


async def test_async_with_fallback_and_poller() -> None:
    fallback = openai.AsyncOpenAI(api_key="sk-fallback-test-key", base_url="http://fallback.test/v1")
    statuses = iter([200, 503])
    client = ailink.AsyncClient(TOKEN, GATEWAY, transport=httpx.MockTransport(
        lambda r: httpx.Response(next(statuses, 503))))
    async with client.with_fallback(fallback) as oai:
        assert oai is not fallback
    with pytest.warns(RuntimeWarning):
        async with client.with_fallback(fallback) as oai:
            assert oai is fallback
    poller = await ailink.AsyncHealthPoller(client, interval=60, timeout=1).start()  # the SDK's spelling
    try:
        assert poller.is_healthy is poller.healthy
    finally:
        await poller.stop()
    await client.close()


def test_health_poller_is_healthy_follows_the_last_poll() -> None:
    answers = iter([200, 503])
    client = ailink.AIlinkClient(TOKEN, GATEWAY, transport=httpx.MockTransport(
        lambda r: httpx.Response(next(answers))))
    poller = ailink.HealthPoller(client, interval=60, timeout=2)
    assert poller.is_healthy is True and poller.poll_once() is True
    assert poller.poll_once() is False and poller.is_healthy is False


async def test_byok_guardrails_and_trace_as_context_managers(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    if driver.kind == "sync":
        with client.with_upstream_key("sk-planted-upstream-key-0123") as byok:
            byok.post("/v1/a", json={})
        with client.with_upstream_key("tok-123", header="Token") as custom:
            custom.get("/v1/b")
        with client.with_guardrails([ailink.PRESET_PII_REDACTION, "prompt_injection"]) as guarded:
            guarded.get("/v1/c")
        with client.trace("conv-1", None, {"env": "prod"}) as traced:
            traced.get("/v1/d")
    else:
        async with client.with_upstream_key("sk-planted-upstream-key-0123") as byok:
            await byok.post("/v1/a", json={})
        async with client.with_upstream_key("tok-123", header="Token") as custom:
            await custom.get("/v1/b")
        async with client.with_guardrails([ailink.PRESET_PII_REDACTION, "prompt_injection"]) as guarded:
            await guarded.get("/v1/c")
        async with client.trace("conv-1", None, {"env": "prod"}) as traced:
            await traced.get("/v1/d")
    assert recorder.header("x-real-authorization") == ["Bearer sk-planted-upstream-key-0123", "Token tok-123",
                                                       None, None]
    assert recorder.header("x-ailink-guardrails") == [None, None, "pii_redaction,prompt_injection", None]
    assert recorder.header("x-session-id")[3] == "conv-1"
    assert json.loads(recorder.header("x-properties")[3] or "{}") == {"env": "prod"}
    await driver.call(client, "GET", "/v1/e")  # the parent client is untouched and still open
    assert recorder.header("x-real-authorization")[4] is None


MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 1, "output_tokens": 1}}


@pytest.fixture
def loopback_gateway() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """A loopback HTTP server answering every POST with an Anthropic message; records (path, headers)."""
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            payload = json.dumps(MESSAGE).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_anthropic_sdk_is_pointed_at_the_gateway(
    driver: Driver, monkeypatch: pytest.MonkeyPatch, loopback_gateway: tuple[str, list[tuple[str, dict[str, str]]]]
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-planted-real-key-0000")
    url, seen = loopback_gateway
    options = {"agent_name": "billing-agent"}
    client = ailink.AIlinkClient(TOKEN, url, **options) if driver.kind == "sync" else ailink.AsyncClient(
        TOKEN, url, **options)
    with ailink.trace("conv-a"):
        message = await _run(driver, client.anthropic().messages.create(
            model="claude-3-5-sonnet", max_tokens=10, messages=[{"role": "user", "content": "hi"}]))
    assert message.content[0].text == "hi"
    assert len(seen) == 1  # max_retries=0
    path, headers = seen[0]
    assert path == "/v1/messages"
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert "sk-ant-planted" not in json.dumps(headers)  # the environment's key is never sent
    assert headers["x-session-id"] == "conv-a" and headers["x-ailink-agent-name"] == "billing-agent"
    assert headers["x-ailink-idempotency-key"]  # a write: one key, as on every client of this toolkit


def test_export_table_type_checking_imports_and_all_agree() -> None:
    source = Path(ailink.__file__).read_text()
    tree = ast.parse(source)
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    imported: dict[str, str] = {}
    for node in guarded.body:
        assert isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names:
            assert alias.asname == alias.name  # ``X as X``: re-exported for type checkers
            imported[alias.name] = node.module
    assert imported == ailink._EXPORTS
    assert sorted(ailink.__all__) == sorted([*ailink._EXPORTS, "__version__"])
    for name, module in ailink._EXPORTS.items():  # every lazy entry resolves to what its module defines
        assert getattr(ailink, name) is getattr(__import__(module, fromlist=[name]), name)


def test_adapter_names_live_in_ailink_adapters_and_still_resolve_from_ailink_for_a_release() -> None:
    import ailink.adapters

    moved = ailink._MOVED_TO_ADAPTERS
    assert moved <= set(ailink.adapters.__all__)
    assert not moved & set(ailink.__all__) and not moved & set(dir(ailink))
    for name in sorted(moved):
        with pytest.warns(DeprecationWarning, match=f"ailink.adapters.{name}"):
            old = getattr(ailink, name)
        assert old is getattr(ailink.adapters, name)
    with pytest.raises(AttributeError):
        _ = ailink.ToolDriver  # new adapter names exist only in ailink.adapters


def test_sdk_modules_and_names_exist() -> None:
    import ailink.resources.realtime as realtime
    import ailink.types

    for name in ("Token", "TokenCreateResponse", "Credential", "CredentialCreateResponse", "Service", "Policy",
                 "PolicyCreateResponse", "AuditLog", "ApprovalRequest", "ApprovalDecision", "RequestSummary",
                 "Response", "Upstream"):
        assert hasattr(ailink.types, name)
    assert ailink.PRESET_PROMPT_INJECTION == "prompt_injection" and ailink.PRESET_LENGTH_LIMIT == "length_limit"
    client = ailink.AIlinkClient(TOKEN, GATEWAY)
    assert isinstance(client.realtime, realtime.RealtimeResource)
    assert isinstance(ailink.AsyncClient(TOKEN, GATEWAY).realtime, realtime.AsyncRealtimeResource)
    admin = ailink.AIlinkClient.admin(admin_key=ADMIN_KEY, gateway_url=GATEWAY)
    assert isinstance(admin, ailink.AIlinkClient)
    assert isinstance(ailink.AsyncClient.admin(ADMIN_KEY), ailink.AsyncClient)


def test_import_ailink_stays_light() -> None:
    code = (
        "import sys, ailink\n"
        "heavy = ['openai', 'anthropic', 'websockets', 'yaml', 'pydantic', 'httpx', 'langchain_core', 'crewai',"
        " 'llama_index', 'ailink.resources']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    own = [line for line in out.stderr.splitlines() if "| ailink" in line]
    assert own and all("resources" not in line for line in own)
