"""Management API: one request per call (method, path, body), models tolerant of unknown fields."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import ailink
from ailink._client import normalize_messages

from .helpers import ADMIN_KEY, GATEWAY, SECRETS, TOKEN, fast_retry, gateway_error

TOKEN_ROW = {"id": TOKEN, "name": "t", "upstream_url": "http://up", "policy_ids": ["p1"], "is_active": True,
             "created_at": "2026-01-01T00:00:00Z", "project_id": "extra-field"}
SESSION = {"session_id": "s1", "status": "active", "total_requests": 1, "new_field": 1,
           "requests": [{"id": "r1", "method": "POST", "path": "/v1/charges", "status_code": 202,
                         "span_id": "a" * 16, "parent_span_id": "b" * 16, "tool_name": "payments_api",
                         "agent_name": "agent", "properties": {"k": "v"}, "approval_id": "apr_1", "cost": 0.1}]}

# (call, expected method, expected path, expected query, expected body, answer, check of the result)
CASES: list[tuple[str, Callable[[Any], Any], str, str, dict[str, str], Any, Any, Callable[[Any], bool]]] = [
    ("tokens.create", lambda a: a.tokens.create("t", "http://up", policy_ids=["p1"]), "POST", "/api/v1/tokens", {},
     {"name": "t", "upstream_url": "http://up", "policy_ids": ["p1"]},
     {"token_id": TOKEN, "name": "t", "message": "created", "extra": 1},
     lambda r: isinstance(r, ailink.TokenCreated) and r.token_id == TOKEN),
    ("tokens.list", lambda a: a.tokens.list(limit=5), "GET", "/api/v1/tokens", {"limit": "5"}, None,
     [TOKEN_ROW], lambda r: isinstance(r[0], ailink.Token) and r[0].project_id == "extra-field"),
    ("tokens.list-wrapped", lambda a: a.tokens.list(), "GET", "/api/v1/tokens", {}, None,
     {"data": [TOKEN_ROW], "total": 1}, lambda r: len(r) == 1),
    ("tokens.get", lambda a: a.tokens.get("tok/1"), "GET", "/api/v1/tokens/tok%2F1", {}, None, TOKEN_ROW,
     lambda r: r.id == TOKEN),
    ("tokens.update", lambda a: a.tokens.update("t1", name="n"), "PATCH", "/api/v1/tokens/t1", {}, {"name": "n"},
     {"updated": True}, lambda r: r == {"updated": True}),
    ("tokens.delete", lambda a: a.tokens.delete("t1"), "DELETE", "/api/v1/tokens/t1", {}, None, None,
     lambda r: r == {"revoked": True}),
    ("tokens.revoke", lambda a: a.tokens.revoke("t1"), "DELETE", "/api/v1/tokens/t1", {}, None, {"id": "t1"},
     lambda r: r == {"id": "t1"}),
    ("credentials.create", lambda a: a.credentials.create("c", "openai", "sk-secretvalue0001", injection_mode="header",
                                                            injection_header="x-api-key"),
     "POST", "/api/v1/credentials", {},
     {"name": "c", "secret": "sk-secretvalue0001", "provider": "openai", "injection_mode": "header",
      "injection_header": "x-api-key"},
     {"id": "c1", "name": "c"},
     lambda r: isinstance(r, ailink.CredentialCreateResponse) and r["id"] == "c1" and r.provider == "openai"),
    ("credentials.list", lambda a: a.credentials.list(), "GET", "/api/v1/credentials", {}, None,
     [{"id": "c1", "provider": "openai", "x": 1}], lambda r: r[0].provider == "openai"),
    ("credentials.delete", lambda a: a.credentials.delete("c1"), "DELETE", "/api/v1/credentials/c1", {}, None,
     {"deleted": True}, lambda r: r == {"deleted": True}),
    ("policies.create", lambda a: a.policies.create("p", [{"when": {"always": True}, "then": {"action": "allow"}}]),
     "POST", "/api/v1/policies", {},
     {"name": "p", "rules": [{"when": {"always": True}, "then": {"action": "allow"}}], "mode": "enforce",
      "phase": "pre"}, {"id": "p1", "name": "p"},
     lambda r: isinstance(r, ailink.PolicyCreateResponse) and r["id"] == "p1" and r.mode == "enforce"),
    ("policies.list", lambda a: a.policies.list(), "GET", "/api/v1/policies", {}, None,
     [{"id": "p1", "name": "p", "version": 3}], lambda r: isinstance(r[0], ailink.Policy) and r[0].mode == "enforce"),
    ("policies.get", lambda a: a.policies.get("p1"), "GET", "/api/v1/policies/p1", {}, None,
     {"id": "p1", "name": "p"}, lambda r: r.name == "p"),
    ("policies.update", lambda a: a.policies.update("p1", mode="shadow"), "PUT", "/api/v1/policies/p1", {},
     {"mode": "shadow"}, {"ok": True}, lambda r: r == {"ok": True}),
    ("policies.delete", lambda a: a.policies.delete("p1"), "DELETE", "/api/v1/policies/p1", {}, None, None,
     lambda r: r == {}),
    ("services.create", lambda a: a.services.create("pay", "http://pay"), "POST", "/api/v1/services", {},
     {"name": "pay", "base_url": "http://pay", "description": "", "service_type": "generic"},
     {"id": "s1", "name": "pay"}, lambda r: r == {"id": "s1", "name": "pay"}),
    ("services.list", lambda a: a.services.list(), "GET", "/api/v1/services", {}, None, [{"id": "s1", "name": "x"}],
     lambda r: r[0].id == "s1"),
    ("services.get", lambda a: a.services.get("s1"), "GET", "/api/v1/services/s1", {}, None,
     {"id": "s1", "name": "x"}, lambda r: r.name == "x"),
    ("services.delete", lambda a: a.services.delete("s1"), "DELETE", "/api/v1/services/s1", {}, None, None,
     lambda r: r == {}),
    ("approvals.list", lambda a: a.approvals.list(status="pending"), "GET", "/api/v1/approvals",
     {"status": "pending"}, None,
     [{"id": "apr_1", "status": "pending", "request_summary": {"method": "POST", "path": "/v1/charges"}, "z": 1}],
     lambda r: r[0].summary_text == "POST /v1/charges"),
    ("approvals.get", lambda a: a.approvals.get("apr_1"), "GET", "/api/v1/approvals/apr_1", {}, None,
     {"id": "apr_1", "status": "approved"}, lambda r: isinstance(r, ailink.ApprovalRequest)),
    ("approvals.approve", lambda a: a.approvals.approve("apr_1"), "POST", "/api/v1/approvals/apr_1/decision", {},
     {"decision": "approved"}, {"id": "apr_1", "status": "approved", "updated": True},
     lambda r: isinstance(r, ailink.ApprovalDecision) and r.updated),
    ("approvals.reject", lambda a: a.approvals.reject("apr_1", "too big"), "POST",
     "/api/v1/approvals/apr_1/decision", {}, {"decision": "rejected", "reason": "too big"},
     {"id": "apr_1", "status": "approved", "updated": False}, lambda r: r.updated is False),
    ("audit.list", lambda a: a.audit.list(limit=10, session_id="s1", agent_name="ag"), "GET", "/api/v1/audit",
     {"limit": "10", "offset": "0", "session_id": "s1", "agent_name": "ag"}, None,
     [{"id": "a1", "session_id": "s1", "parent_span_id": "b" * 16, "unknown": [1]}],
     lambda r: isinstance(r[0], ailink.AuditLog) and r[0].parent_span_id == "b" * 16),
    ("audit.get", lambda a: a.audit.get("a1"), "GET", "/api/v1/audit/a1", {}, None, {"id": "a1"},
     lambda r: r.id == "a1"),
    ("sessions.list", lambda a: a.sessions.list(), "GET", "/api/v1/sessions", {}, None,
     [{"session_id": "s1"}], lambda r: r[0].session_id == "s1"),
    ("sessions.get", lambda a: a.sessions.get("s1"), "GET", "/api/v1/sessions/s1", {}, None, SESSION,
     lambda r: isinstance(r, ailink.Session) and isinstance(r.requests[0], ailink.SessionRequest)
     and r.requests[0].parent_span_id == "b" * 16 and r.requests[0].tool_name == "payments_api"),
    ("sessions.set_status", lambda a: a.sessions.set_status("s1", "paused"), "PATCH", "/api/v1/sessions/s1/status",
     {}, {"status": "paused"}, {"session_id": "s1", "status": "paused"}, lambda r: r["status"] == "paused"),
    # issue 15: spend caps, usage, session caps, breakers, credential rotation
    ("sessions.set_spend_cap", lambda a: a.sessions.set_spend_cap("s1", 2.5), "PUT", "/api/v1/sessions/s1/spend-cap",
     {}, {"spend_cap_usd": 2.5}, {"session_id": "s1", "spend_cap_usd": "2.5"}, lambda r: r["spend_cap_usd"] == "2.5"),
    ("tokens.set_spend_cap", lambda a: a.tokens.set_spend_cap("t/1", "daily", 5, mode="shadow"), "PUT",
     "/api/v1/tokens/t%2F1/spend", {}, {"period": "daily", "limit_usd": 5, "mode": "shadow"}, None,
     lambda r: r is None),
    ("tokens.get_spend", lambda a: a.tokens.get_spend("t1"), "GET", "/api/v1/tokens/t1/spend", {}, None,
     {"daily_limit_usd": 5.0, "current_daily_usd": 1.0}, lambda r: r["daily_limit_usd"] == 5.0),
    ("tokens.delete_spend_cap", lambda a: a.tokens.delete_spend_cap("t1", "monthly"), "DELETE",
     "/api/v1/tokens/t1/spend/monthly", {}, None, None, lambda r: r is None),
    ("tokens.usage", lambda a: a.tokens.usage("t1"), "GET", "/api/v1/tokens/t1/usage", {}, None,
     {"windows": [], "capacity_state": "abundant"}, lambda r: r["capacity_state"] == "abundant"),
    ("tokens.set_circuit_breaker", lambda a: a.tokens.set_circuit_breaker("t1", failure_rate_threshold=0.5,
                                                                          min_sample_size=10),
     "PATCH", "/api/v1/tokens/t1/circuit-breaker", {},
     {"enabled": True, "failure_threshold": 3, "recovery_cooldown_secs": 30, "half_open_max_requests": 1,
      "failure_rate_threshold": 0.5, "min_sample_size": 10}, {"enabled": True}, lambda r: r == {"enabled": True}),
    ("credentials.rotate", lambda a: a.credentials.rotate("cred_1", "sk-new"), "POST",
     "/api/v1/credentials/cred_1/rotate", {}, {"secret": "sk-new"}, {"id": "cred_1", "version": 2},
     lambda r: r["version"] == 2),
]


def _handler(seen: list[httpx.Request], answer: Any) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        if answer is None:
            return httpx.Response(204)
        return httpx.Response(200, json=answer)

    return handle


@pytest.mark.parametrize(("name", "call", "method", "path", "query", "body", "answer", "check"), CASES,
                         ids=[c[0] for c in CASES])
def test_admin_calls_sync(name: str, call: Callable[[Any], Any], method: str, path: str, query: dict[str, str],
                          body: Any, answer: Any, check: Callable[[Any], bool]) -> None:
    seen: list[httpx.Request] = []
    admin = ailink.AdminClient(ADMIN_KEY, GATEWAY, transport=httpx.MockTransport(_handler(seen, answer)))
    result = call(admin)
    _check_request(seen, method, path, query, body)
    assert check(result)


@pytest.mark.parametrize(("name", "call", "method", "path", "query", "body", "answer", "check"), CASES,
                         ids=[c[0] for c in CASES])
async def test_admin_calls_async(name: str, call: Callable[[Any], Any], method: str, path: str,
                                 query: dict[str, str], body: Any, answer: Any, check: Callable[[Any], bool]) -> None:
    seen: list[httpx.Request] = []
    admin = ailink.AsyncAdminClient(ADMIN_KEY, GATEWAY, transport=httpx.MockTransport(_handler(seen, answer)))
    result = await call(admin)
    _check_request(seen, method, path, query, body)
    assert check(result)
    await admin.aclose()


def _check_request(seen: list[httpx.Request], method: str, path: str, query: dict[str, str], body: Any) -> None:
    assert len(seen) == 1
    request = seen[0]
    assert request.method == method
    assert request.url.raw_path.decode().split("?")[0] == path
    assert dict(request.url.params) == query
    assert (json.loads(request.content) if request.content else None) == body
    assert request.headers["x-admin-key"] == ADMIN_KEY
    assert "authorization" not in request.headers
    assert "idempotency-key" not in request.headers and "prefer" not in request.headers


def test_admin_errors_and_malformed_answers() -> None:
    answers = iter([gateway_error(404, "not_found", "no token"), httpx.Response(401), httpx.Response(200, text="x"),
                    httpx.Response(200, json={"unexpected": "shape"})])
    admin = ailink.AdminClient(ADMIN_KEY, GATEWAY, retries=0,
                               transport=httpx.MockTransport(lambda r: next(answers)))
    with pytest.raises(ailink.NotFoundError):
        admin.tokens.get("t")
    with pytest.raises(ailink.AIlinkError) as info:
        admin.tokens.list()
    assert info.value.status_code == 401
    with pytest.raises(ailink.MalformedResponseError):
        admin.tokens.list()
    with pytest.raises(ailink.MalformedResponseError):
        admin.policies.get("p")


@pytest.mark.parametrize(("status", "error"), [
    (400, ailink.BadRequestError), (401, ailink.AuthenticationError), (403, ailink.PermissionDeniedError),
    (404, ailink.NotFoundError), (422, ailink.ValidationError), (500, ailink.GatewayError)])
def test_bare_management_errors_are_typed_by_status(status: int, error: type[Exception]) -> None:
    """The real gateway's management API answers errors as bare status codes with empty bodies: they
    are typed by status, never taken for an upstream's answer."""
    admin = ailink.AdminClient(ADMIN_KEY, GATEWAY, retries=0,
                               transport=httpx.MockTransport(lambda r: httpx.Response(status)))
    with pytest.raises(error) as caught:
        admin.policies.create("p", [{"then": {"action": "deny"}}])
    assert caught.value.status_code == status and not isinstance(caught.value, ailink.UpstreamError)


def test_approvals_list_filters_by_status_itself() -> None:
    """The real gateway ignores ``?status=`` and lists every status: the filter is applied here too."""
    rows = [{"id": "a1", "status": "approved"}, {"id": "a2", "status": "pending"}, {"id": "a3", "status": "expired"}]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=rows)

    admin = ailink.AdminClient(ADMIN_KEY, GATEWAY, retries=0, transport=httpx.MockTransport(answer))
    assert [a.id for a in admin.approvals.list(status="pending")] == ["a2"]
    assert [a.id for a in admin.approvals.list()] == ["a1", "a2", "a3"]
    assert [a.id for a in admin.approvals.list(status="approved, expired")] == ["a1", "a3"]  # a comma list
    assert seen[0].url.params["status"] == "pending"


def test_admin_reads_are_retried_writes_without_key_are_not() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return gateway_error(503, "all_upstreams_exhausted")

    admin = ailink.AdminClient(ADMIN_KEY, GATEWAY, retries=fast_retry(2), transport=httpx.MockTransport(handler))
    with pytest.raises(ailink.CircuitOpenError):
        admin.approvals.list()
    with pytest.raises(ailink.CircuitOpenError):
        admin.approvals.approve("apr_1")
    assert seen == ["GET", "GET", "GET", "POST"]


def test_admin_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILINK_ADMIN_KEY", raising=False)
    with pytest.raises(ailink.AuthenticationError, match="AILINK_ADMIN_KEY"):
        ailink.AdminClient(gateway_url=GATEWAY)
    monkeypatch.setenv("AILINK_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("AILINK_GATEWAY_URL", "http://env-gateway:1")
    admin = ailink.AIlinkClient.admin()
    assert admin.settings.admin_key == ADMIN_KEY and admin.settings.gateway_url == "http://env-gateway:1"
    with pytest.raises(ValueError):
        admin.approvals.decide("apr_1", "maybe")


def test_models_tolerate_unknown_fields_and_mask_token() -> None:
    token = ailink.Token.model_validate({**TOKEN_ROW, "brand_new": {"nested": True}})
    assert token.brand_new == {"nested": True}  # type: ignore[attr-defined]
    text = repr(token) + str(token)
    for secret in SECRETS:
        assert secret not in text
    assert "ailink_v1_PLAN…" in repr(token)
    created = ailink.TokenCreated.model_validate({"token_id": TOKEN, "name": "t"})
    assert TOKEN not in repr(created) and TOKEN not in str(created)
    approval = ailink.ApprovalRequest.model_validate({"id": "a", "status": "pending", "token_id": TOKEN})
    assert TOKEN not in repr(approval)
    session = ailink.Session.model_validate(SESSION)
    assert session.requests[0].cost == 0.1  # type: ignore[attr-defined]


def test_client_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AILINK_API_KEY", TOKEN)
    monkeypatch.setenv("AILINK_GATEWAY_URL", "http://env-gateway:9")
    client = ailink.AIlinkClient()
    assert client.api_key == TOKEN and client.gateway_url == "http://env-gateway:9"
    monkeypatch.delenv("AILINK_GATEWAY_URL")
    assert ailink.AsyncClient().gateway_url == "http://localhost:8443"


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ailink.AIlinkClient(TOKEN, GATEWAY, approval_mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ailink.AIlinkClient(TOKEN, GATEWAY, timeout=0)
    with pytest.raises(ValueError):
        ailink.AIlinkClient(TOKEN, GATEWAY).get("relative/path")


def test_normalize_messages() -> None:
    assert normalize_messages("hi") == [{"role": "user", "content": "hi"}]
    assert normalize_messages({"role": "system", "content": "s"}) == [{"role": "system", "content": "s"}]
    assert normalize_messages(["a", {"role": "assistant", "content": "b"}]) == [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]


def test_is_healthy_and_poller() -> None:
    answers = iter([httpx.Response(200), httpx.Response(503)])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/healthz"
        try:
            return next(answers)
        except StopIteration:
            raise httpx.ConnectError("down") from None

    client = ailink.AIlinkClient(TOKEN, GATEWAY, transport=httpx.MockTransport(handler))
    poller = ailink.HealthPoller(client, interval=60)
    assert poller.poll_once() is True
    assert poller.poll_once() is False
    assert client.is_healthy() is False


def test_import_ailink_is_light() -> None:
    code = (
        "import sys, ailink\n"
        "heavy = ['openai', 'langchain', 'langchain_core', 'langgraph', 'crewai', 'llama_index', 'pydantic',"
        " 'httpx', 'starlette', 'uvicorn']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "ailink.AIlinkClient\n"
        "print(','.join(m for m in ['openai', 'langchain', 'langchain_core', 'crewai', 'llama_index']"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["", ""], out
