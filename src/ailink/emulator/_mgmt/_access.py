"""Projects and API keys (real gateway paths and shapes, reference §7).

* ``GET /api/v1/projects`` → ``[{id, name, created_at}]``; ``POST`` ``{name}`` → 201 ``{id, name}``;
  ``PUT /projects/{id}`` ``{name}``; ``DELETE /projects/{id}`` → 204 (400 for the default project,
  409 ``conflict`` while tokens, policies, credentials or services still belong to it).
* ``POST /api/v1/auth/keys`` ``{name, role: admin|member|readonly, scopes?, user_id?}`` → 201
  ``{id, key, message, name, role, scopes, key_prefix}``: the key (``ak_live_...``) is shown once and
  stored as a SHA-256 hash; ``GET /auth/keys`` lists keys without secrets; ``DELETE /auth/keys/{id}``
  → 204 (the key stops authenticating); ``GET /auth/whoami`` → ``{org_id, user_id, role, scopes,
  key_id}`` of the caller. API keys authenticate as ``Authorization: Bearer ak_live_...``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._app import Emulator, GatewayError, iso
from .._management import _int_param, _str
from .._store import DEFAULT_PROJECT
from ._base import API_KEY_PREFIX, ORG_ID, ROLES, ManagementStore, Principal, hash_key, new_uuid

_PROJECT_TABLES = ("tokens", "policies", "credentials", "services")


def _name(doc: dict[str, Any]) -> str:
    name = _str(doc, "name")
    assert name is not None
    if len(name) > 255:
        raise GatewayError(422, "validation_error", "name must be at most 255 characters")
    return name


def project_page(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created_at": iso(row["created_at"])}


def api_key_page(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "org_id": ORG_ID, "user_id": row["user_id"], "name": row["name"],
        "key_prefix": row["key_prefix"], "role": row["role"], "scopes": row["scopes"] or [],
        "is_active": bool(row["is_active"]), "last_used_at": iso(row["last_used_at"]), "expires_at": None,
        "created_at": iso(row["created_at"]),
    }


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    mgmt = ManagementStore(emu.store)

    def project(project_id: str) -> dict[str, Any]:
        row = mgmt.one("SELECT * FROM projects WHERE id = ?", (project_id,))
        if row is None:
            raise GatewayError(404, "not_found", "project not found")
        return row

    async def list_projects(request: Request) -> Response:
        return JSONResponse([project_page(r) for r in mgmt.all("SELECT * FROM projects ORDER BY created_at")])

    async def create_project(request: Request) -> Response:
        doc = await emu.json_body(request)
        row = mgmt.insert("projects", {"id": new_uuid(), "name": _name(doc), "created_at": time.time()})
        return JSONResponse({"id": row["id"], "name": row["name"]}, status_code=201)

    async def rename_project(request: Request) -> Response:
        row = project(request.path_params["pid"])
        name = _name(await emu.json_body(request))
        mgmt.update("projects", "id", row["id"], {"name": name})
        return JSONResponse({"id": row["id"], "name": name})

    async def delete_project(request: Request) -> Response:
        row = project(request.path_params["pid"])
        if row["id"] == DEFAULT_PROJECT:
            raise GatewayError(400, "validation_error", "the default project cannot be deleted")
        counts = {table: (mgmt.one(f"SELECT COUNT(*) AS n FROM {table} WHERE project_id = ? AND is_active = 1",
                                   (row["id"],)) or {"n": 0})["n"] for table in _PROJECT_TABLES}
        if any(counts.values()):
            raise GatewayError(409, "conflict", "the project still has active "
                               + ", ".join(f"{n} {table}" for table, n in counts.items() if n)
                               + "; delete or revoke them first", details=counts)
        for table in ("model_aliases", "experiments", "webhooks"):
            mgmt.execute(f"DELETE FROM {table} WHERE project_id = ?", (row["id"],))
        mgmt.execute("DELETE FROM projects WHERE id = ?", (row["id"],))
        return Response(status_code=204)

    async def create_api_key(request: Request) -> Response:
        doc = await emu.json_body(request)
        name = _name(doc)
        role = doc.get("role")
        if role not in ROLES:
            raise GatewayError(422, "validation_error", f"role must be one of {', '.join(ROLES)}")
        scopes = doc.get("scopes") or []
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
            raise GatewayError(422, "validation_error", "scopes must be a list of scope names")
        user_id = doc.get("user_id")
        if user_id is not None and not isinstance(user_id, str):
            raise GatewayError(422, "validation_error", "user_id must be a string")
        key = f"{API_KEY_PREFIX}{ORG_ID[:8]}_{secrets.token_hex(16)}"
        row = mgmt.insert("api_keys", {
            "id": new_uuid(), "name": name, "key_hash": hash_key(key), "key_prefix": key[:len(API_KEY_PREFIX) + 13],
            "role": role, "scopes": scopes, "user_id": user_id, "is_active": 1, "created_at": time.time(),
        })
        return JSONResponse({"id": row["id"], "key": key, "message": "Save this key now. It will never be shown again.",
                             "name": name, "role": role, "scopes": scopes, "key_prefix": row["key_prefix"]},
                            status_code=201)

    async def list_api_keys(request: Request) -> Response:
        rows = mgmt.all("SELECT * FROM api_keys ORDER BY created_at DESC LIMIT ? OFFSET ?",
                        (_int_param(request, "limit", 50, 1, 1000), _int_param(request, "offset", 0, 0, 10**9)))
        return JSONResponse([api_key_page(r) for r in rows])

    async def revoke_api_key(request: Request) -> Response:
        if not mgmt.execute("UPDATE api_keys SET is_active = 0 WHERE id = ?", (request.path_params["kid"],)):
            raise GatewayError(404, "not_found", "API key not found")
        return Response(status_code=204)

    async def whoami(request: Request) -> Response:
        principal: Principal = request.state.principal
        return JSONResponse({"org_id": principal.org_id, "user_id": principal.user_id, "role": principal.role,
                             "scopes": list(principal.scopes), "key_id": principal.key_id, "emulator": True})

    return [
        ("/projects", list_projects, ["GET"]), ("/projects", create_project, ["POST"]),
        ("/projects/{pid}", rename_project, ["PUT", "PATCH"]), ("/projects/{pid}", delete_project, ["DELETE"]),
        ("/auth/keys", list_api_keys, ["GET"]), ("/auth/keys", create_api_key, ["POST"]),
        ("/auth/keys/{kid}", revoke_api_key, ["DELETE"]), ("/auth/whoami", whoami, ["GET"]),
    ]
