"""The real gateway's own end-to-end phases 14 (response cache), 18 (tool_scope), 19 (sessions),
23 (HITL) and 49 (approval decisions), written here as what the real gateway does per its source
(``shared/reference/gateway-wire-contract.md`` §11: where its suite accepts several statuses, these
tests assert the one the source answers), against both emulator profiles.

Requests are plain HTTP, as that suite sends them: ``Content-Type: application/json``, its
``User-Agent``, no ``Prefer`` header, no idempotency key; the upstream is an OpenAI-compatible mock
(the emulator's ``http://llm.mock``) reached with a stored credential.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ailink.testing import EmulatorGateway

pytestmark = pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)


class Suite:
    """The phases' helpers: ``gw`` (data plane or management API) and ``chat``."""

    def __init__(self, gateway: EmulatorGateway) -> None:
        self.gateway = gateway
        self.admin = gateway.admin
        credential = self.admin.credentials.create("mock-cred", "openai", "mock-key-xyz", injection_mode="header",
                                                   injection_header="Authorization")
        self.credential_id = credential.id
        self.token = self.new_token()

    def new_token(self, *policies: dict[str, Any]) -> str:
        ids = [self.admin.policies.create(p["name"], p["rules"]).id for p in policies]
        return self.admin.tokens.create(f"tok-{uuid.uuid4().hex[:6]}", "http://llm.mock",
                                        credential_id=self.credential_id, policy_ids=ids).token_id

    def gw(self, method: str, path: str, token: str | None = None, *, admin: bool = False,
           **kwargs: Any) -> httpx.Response:
        headers = {"Content-Type": "application/json", "User-Agent": "AILink-MockTest/1.0",
                   **kwargs.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if admin:
            headers["x-admin-key"] = self.gateway.admin_key
        return httpx.request(method, self.gateway.url + path, headers=headers, timeout=kwargs.pop("timeout", 30),
                             **kwargs)

    def chat(self, token: str, prompt: str, **extra: Any) -> httpx.Response:
        payload = {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}], **extra}
        return self.gw("POST", "/v1/chat/completions", token, json=payload, headers=extra.pop("headers", {}))


@pytest.fixture
def suite(ailink_gateway: EmulatorGateway) -> Iterator[Suite]:
    yield Suite(ailink_gateway)


# ---------------------------------------------------------------------- phase 14: response cache


def test_phase_14_response_cache(suite: Suite) -> None:
    payload = {"model": "gpt-4o", "messages": [{"role": "user", "content": "cache-test"}], "temperature": 0}
    first = suite.gw("POST", "/v1/chat/completions", suite.token, json=payload)
    second = suite.gw("POST", "/v1/chat/completions", suite.token, json=payload)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]  # a cache hit
    assert second.headers["x-ailink-cache"] == "HIT"

    hot = {**payload, "messages": [{"role": "user", "content": "high-temp"}], "temperature": 0.9}
    ids = {suite.gw("POST", "/v1/chat/completions", suite.token, json=hot).json()["id"] for _ in range(2)}
    assert len(ids) == 2  # temperature > 0.1: never cached

    opt_out = {**payload, "messages": [{"role": "user", "content": "no-cache"}]}
    ids = {suite.gw("POST", "/v1/chat/completions", suite.token, json=opt_out,
                    headers={"Cache-Control": "no-cache"}).json()["id"] for _ in range(2)}
    assert len(ids) == 2


# ---------------------------------------------------------------------- phase 18: tool_scope


def _scope(suite: Suite, allowed: list[str], blocked: list[str]) -> str:
    return suite.new_token({"name": f"ts-{uuid.uuid4().hex[:6]}", "rules": [{"when": {"always": True}, "then": {
        "action": "tool_scope", "allowed_tools": allowed, "blocked_tools": blocked}}]})


def _with_tool(suite: Suite, token: str, name: str) -> httpx.Response:
    return suite.gw("POST", "/v1/chat/completions", token, json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "use the tool"}],
        "tools": [{"type": "function", "function": {"name": name, "description": "d"}}]})


def test_phase_18_tool_scope(suite: Suite) -> None:
    blocked = _with_tool(suite, _scope(suite, [], ["stripe.*"]), "stripe.createCharge")
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "policy_denied"
    assert "blocked" in blocked.text.lower() and "stripe.createCharge" in blocked.text

    assert _with_tool(suite, _scope(suite, ["jira.*"], []), "jira.read").status_code == 200
    assert suite.chat(_scope(suite, ["jira.*"], ["stripe.*"]), "Hello, how are you?").status_code == 200

    unlisted = _with_tool(suite, _scope(suite, ["jira.read"], []), "db.dropAll")
    assert unlisted.status_code == 403 and "not in the allowed list" in unlisted.text


# ---------------------------------------------------------------------- phase 19: session lifecycle


def test_phase_19_session_lifecycle(suite: Suite) -> None:
    created = suite.gw("POST", "/v1/chat/completions", suite.token, headers={"X-Session-Id": "sess-autocreate"},
                       json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello with session"}]})
    assert created.status_code == 200
    entity = suite.gw("GET", "/api/v1/sessions/sess-autocreate/entity", admin=True)
    assert entity.status_code == 200 and entity.json()["status"] == "active"

    for status in ("paused", "completed"):
        sid = f"sess-{status}"
        assert suite.chat(suite.token, "Creating session", headers={"X-Session-Id": sid}).status_code == 200
        changed = suite.gw("PATCH", f"/api/v1/sessions/{sid}/status", admin=True, json={"status": status})
        assert changed.status_code == 200
        refused = suite.chat(suite.token, "This should fail", headers={"X-Session-Id": sid})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "policy_denied"
        assert f"Session '{sid}' is {status}" in refused.json()["error"]["message"]

    assert suite.chat(suite.token, "No session header test").status_code == 200


# ---------------------------------------------------------------------- phase 23: HITL


def _decide_when_pending(suite: Suite, decision: str) -> tuple[threading.Thread, dict[str, str]]:
    """The suite's background reviewer: poll ``GET /api/v1/approvals`` and decide the pending one."""
    decided: dict[str, str] = {}

    def poll() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not decided:
            time.sleep(0.1)
            for approval in suite.gw("GET", "/api/v1/approvals", admin=True).json():
                if approval["status"] == "pending":
                    suite.gw("POST", f"/api/v1/approvals/{approval['id']}/decision", admin=True,
                             json={"decision": decision})
                    decided["id"] = approval["id"]
                    return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return thread, decided


def test_phase_23_hitl(suite: Suite) -> None:
    token = suite.new_token({"name": "hitl-gate", "rules": [{"when": {"always": True}, "then": {
        "action": "require_approval", "timeout": "2s", "fallback": "deny"}}]})

    reviewer, approved = _decide_when_pending(suite, "approved")
    answer = suite.chat(token, "hitl-approval-test")  # held until the decision, answered on the same request
    reviewer.join(15)
    assert answer.status_code == 200 and approved and answer.json()["choices"][0]["message"]["content"]

    reviewer, rejected = _decide_when_pending(suite, "rejected")
    answer = suite.chat(token, "hitl-rejection-test")
    reviewer.join(15)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "approval_rejected" and rejected

    answer = suite.chat(token, "hitl-timeout-test", timeout=15)  # nobody decides
    assert answer.status_code == 408 and answer.json()["error"]["code"] == "approval_timeout"

    listed = suite.gw("GET", "/api/v1/approvals", admin=True)
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    assert sorted(a["status"] for a in listed.json()) == ["approved", "expired", "rejected"]  # every status


# ---------------------------------------------------------------------- phase 49: decisions


def test_phase_49_approval_decisions(suite: Suite) -> None:
    token = suite.new_token({"name": "hitl-49", "rules": [{"when": {"always": True}, "then": {
        "action": "require_approval", "timeout": "30s"}}]})
    reviewer, approved = _decide_when_pending(suite, "approved")
    assert suite.chat(token, "decide me").status_code == 200
    reviewer.join(15)
    again = suite.gw("POST", f"/api/v1/approvals/{approved['id']}/decision", admin=True, json={"decision": "approved"})
    assert again.status_code == 200 and again.json() == {"id": approved["id"], "status": "approved",
                                                         "updated": False}
    unknown = suite.gw("POST", f"/api/v1/approvals/{uuid.uuid4()}/decision", admin=True,
                       json={"decision": "approved"})
    if suite.gateway.serves_extensions:  # [ext] deviation: an unknown id is named as such
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "approval_not_found"
    else:  # the real gateway: nothing to update, still 200
        assert unknown.status_code == 200 and unknown.json()["updated"] is False
