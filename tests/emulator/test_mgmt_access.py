"""Projects, API keys (create/list/revoke/whoami, scopes) and token revocation on the management API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from ailink.testing import EmulatorGateway, start_gateway

from .conftest import admin, bearer, client

DEFAULT_PROJECT = "00000000-0000-0000-0000-000000000001"


def test_projects_crud_and_default(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        assert [p["id"] for p in a.get("/api/v1/projects").json()] == [DEFAULT_PROJECT]
        created = a.post("/api/v1/projects", json={"name": "research"})
        assert created.status_code == 201
        pid = created.json()["id"]
        assert created.json()["name"] == "research"
        renamed = a.put(f"/api/v1/projects/{pid}", json={"name": "r&d"})
        assert renamed.json() == {"id": pid, "name": "r&d"}
        assert {p["name"] for p in a.get("/api/v1/projects").json()} == {"default", "r&d"}
        assert a.delete(f"/api/v1/projects/{pid}").status_code == 204
        assert [p["id"] for p in a.get("/api/v1/projects").json()] == [DEFAULT_PROJECT]
        # bad input: the default project stays, unknown ids are 404, names are required
        gone = a.delete(f"/api/v1/projects/{DEFAULT_PROJECT}")
        assert gone.status_code == 400 and gone.json()["error"]["code"] == "validation_error"
        assert a.delete(f"/api/v1/projects/{pid}").status_code == 404
        assert a.post("/api/v1/projects", json={"name": ""}).status_code == 422
        assert a.post("/api/v1/projects", content=b"{not json").status_code == 400


def test_resources_carry_their_project_and_lists_filter_by_it(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        pid = a.post("/api/v1/projects", json={"name": "team-b"}).json()["id"]
        cred = a.post("/api/v1/credentials", json={"name": "c", "provider": "openai", "secret": "sk-test-123456",
                                                    "project_id": pid}).json()["id"]
        pol = a.post("/api/v1/policies", json={"name": "p", "project_id": pid,
                                               "rules": [{"when": {"always": True}, "then": {"action": "allow"}}]})
        svc = a.post("/api/v1/services", json={"name": "svc-b", "base_url": "http://payments.mock",
                                               "project_id": pid})
        tok = a.post("/api/v1/tokens", json={"name": "t-b", "upstream_url": "http://llm.mock", "project_id": pid,
                                             "policy_ids": [pol.json()["id"]], "credential_id": cred})
        assert tok.status_code == 201 and svc.status_code == 201
        a.post("/api/v1/tokens", json={"name": "t-default", "upstream_url": "http://llm.mock"})
        for path, name in (("tokens", "t-b"), ("policies", "p"), ("services", "svc-b"), ("credentials", "c")):
            scoped = a.get(f"/api/v1/{path}", params={"project_id": pid}).json()
            assert [r["name"] for r in scoped] == [name]
            assert scoped[0]["project_id"] == pid
            assert name not in [r["name"] for r in a.get(f"/api/v1/{path}").json()]
        assert [t["name"] for t in a.get("/api/v1/tokens").json()] == ["t-default"]
        assert a.get("/api/v1/tokens").json()[0]["project_id"] == DEFAULT_PROJECT
        # a project with resources is not deleted (nothing lost); unknown projects are refused
        busy = a.delete(f"/api/v1/projects/{pid}")
        assert busy.status_code == 409 and busy.json()["error"]["details"]["tokens"] == 1
        assert a.get("/api/v1/tokens", params={"project_id": pid}).json()[0]["name"] == "t-b"
        unknown = a.post("/api/v1/tokens", json={"name": "x", "upstream_url": "http://llm.mock",
                                                 "project_id": "nope"})
        assert unknown.status_code == 422
        assert a.get("/api/v1/tokens", params={"project_id": "nope"}).status_code == 404


def test_api_keys_create_list_whoami_revoke(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        created = a.post("/api/v1/auth/keys", json={"name": "ci", "role": "member", "scopes": ["tokens:read"]})
        assert created.status_code == 201
        body = created.json()
        key, key_id = body["key"], body["id"]
        assert key.startswith("ak_live_") and body["role"] == "member"
        listed = a.get("/api/v1/auth/keys").json()
        assert [k["id"] for k in listed] == [key_id]
        assert key not in str(listed) and listed[0]["is_active"] is True and listed[0]["scopes"] == ["tokens:read"]
        assert a.get("/api/v1/auth/whoami").json()["role"] == "superadmin"
    with httpx.Client(base_url=ailink_gateway.url, headers={"Authorization": f"Bearer {key}"}) as k:
        who = k.get("/api/v1/auth/whoami").json()
        assert who["role"] == "member" and who["scopes"] == ["tokens:read"] and who["key_id"] == key_id
        assert k.get("/api/v1/tokens").status_code == 200
        denied = k.get("/api/v1/policies")
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        assert k.post("/api/v1/tokens", json={"name": "x", "upstream_url": "http://llm.mock"}).status_code == 403
        assert k.post("/api/v1/auth/keys", json={"name": "escalate", "role": "admin"}).status_code == 403
    with admin(ailink_gateway) as a:
        assert a.get("/api/v1/auth/keys").json()[0]["last_used_at"] is not None
        assert a.delete(f"/api/v1/auth/keys/{key_id}").status_code == 204
        assert a.get("/api/v1/auth/keys").json()[0]["is_active"] is False
        assert a.delete("/api/v1/auth/keys/unknown").status_code == 404
        for bad in ({"name": "x", "role": "root"}, {"role": "member"},
                    {"name": "x", "role": "member", "scopes": "all"}):
            resp = a.post("/api/v1/auth/keys", json=bad)
            assert resp.status_code == 422, bad
    revoked = httpx.get(f"{ailink_gateway.url}/api/v1/auth/whoami", headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401


def test_admin_api_key_has_full_access(ailink_gateway: EmulatorGateway) -> None:
    with admin(ailink_gateway) as a:
        key = a.post("/api/v1/auth/keys", json={"name": "ops", "role": "admin", "scopes": []}).json()["key"]
    with httpx.Client(base_url=ailink_gateway.url, headers={"Authorization": f"Bearer {key}"}) as k:
        assert k.post("/api/v1/projects", json={"name": "via-key"}).status_code == 201
        assert k.get("/api/v1/guardrails/presets").status_code == 200


@pytest.mark.parametrize("headers", [
    {}, {"X-Admin-Key": "wrong"}, {"Authorization": "Bearer ak_live_00000000_" + "0" * 32},
])
def test_management_refuses_missing_or_wrong_credentials(ailink_gateway: EmulatorGateway,
                                                         headers: dict[str, str]) -> None:
    resp = httpx.get(f"{ailink_gateway.url}/api/v1/auth/whoami", headers=headers)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"


def test_virtual_tokens_are_not_management_credentials(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    resp = httpx.get(f"{ailink_gateway.url}/api/v1/projects", headers=bearer(token))
    assert resp.status_code == 401


def test_token_revoke_stops_the_data_plane(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="payments")
    with client(ailink_gateway) as c, admin(ailink_gateway) as a:
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
        assert a.delete(f"/api/v1/tokens/{token}").status_code == 204
        after = c.get("/v1/customers", headers=bearer(token))
        assert after.status_code == 401 and after.json()["error"]["code"] == "token_not_found"
        assert a.delete("/api/v1/tokens/ailink_v1_unknown").status_code == 404
        assert token not in a.get("/api/v1/tokens").text


OLD_TOKENS_TABLE = """
CREATE TABLE tokens (
    ref TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, name TEXT NOT NULL, upstream_url TEXT NOT NULL,
    credential_id TEXT, policy_ids TEXT NOT NULL DEFAULT '[]', is_active INTEGER NOT NULL DEFAULT 1,
    log_level INTEGER NOT NULL DEFAULT 1, tags TEXT, allowed_models TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
INSERT INTO tokens (ref, token, name, upstream_url, created_at, updated_at)
VALUES ('tok_0000000000000001', 'ailink_v1_00000000_tok_0123456789abcdef0123456789abcdef', 'old', 'http://payments.mock',
        1700000000, 1700000000);
"""


def test_a_database_from_before_projects_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_TOKENS_TABLE)
    gateway, stop = start_gateway(db_path=str(db))
    try:
        with admin(gateway) as a:
            (row,) = a.get("/api/v1/tokens").json()
            assert row["name"] == "old" and row["project_id"] == DEFAULT_PROJECT and row["circuit_breaker"] is None
            assert a.get("/api/v1/tokens/tok_0000000000000001/circuit-breaker").json()["enabled"] is True
        with client(gateway) as c:
            token = "ailink_v1_00000000_tok_0123456789abcdef0123456789abcdef"
            assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
    finally:
        stop()
