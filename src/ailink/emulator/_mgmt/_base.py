"""Storage and access control shared by the management endpoints of this package.

* :class:`ManagementStore`: the tables of projects, API keys, model aliases, guardrails,
  experiments and webhooks, in the emulator's SQLite database (next to the core tables).
* :func:`authorize`: who is calling (the admin key → ``superadmin``; ``Authorization: Bearer
  ak_live_...`` → an API key's role and scopes) and whether that caller may use the endpoint.
* Projects: :func:`project_param` (``?project_id=``) and :func:`body_project` (``project_id`` in a
  create body); both default to the default project.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from .._app import Emulator, GatewayError
from .._store import DEFAULT_PROJECT, Store

ORG_ID = DEFAULT_PROJECT  # the real gateway's default organisation has the same id
API_KEY_PREFIX = "ak_live_"
ROLES = ("admin", "member", "readonly")

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, key_prefix TEXT NOT NULL,
    role TEXT NOT NULL, scopes TEXT NOT NULL, user_id TEXT, is_active INTEGER NOT NULL DEFAULT 1,
    last_used_at REAL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS model_aliases (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, alias TEXT NOT NULL, model TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (project_id, alias)
);
CREATE TABLE IF NOT EXISTS guardrails (
    token_ref TEXT PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT NULL, presets TEXT NOT NULL,
    topic_allowlist TEXT NOT NULL, topic_denylist TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, scope TEXT NOT NULL,
    variants TEXT NOT NULL, condition TEXT, status TEXT NOT NULL, created_at REAL NOT NULL, stopped_at REAL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, url TEXT NOT NULL, events TEXT NOT NULL,
    secret TEXT NOT NULL, is_active INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, event_type TEXT NOT NULL, status TEXT NOT NULL,
    payload TEXT NOT NULL, created_at REAL NOT NULL
);
"""
_JSON_COLUMNS = {"scopes", "variants", "condition", "events", "payload", "presets", "topic_allowlist",
                 "topic_denylist"}


def new_uuid() -> str:
    return str(uuid.uuid4())


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_COLUMNS & set(row):
        if isinstance(row[key], str):
            try:
                row[key] = json.loads(row[key])
            except ValueError:
                pass
    return row


class ManagementStore:
    """Rows of this package's tables (a thin layer over the emulator's :class:`Store`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def install(cls, store: Store) -> ManagementStore:
        """Create the tables (once per database) and the default project."""
        store.ensure_schema(SCHEMA)
        mgmt = cls(store)
        mgmt.execute("INSERT OR IGNORE INTO projects (id, name, created_at) VALUES (?, 'default', ?)",
                     (DEFAULT_PROJECT, time.time()))
        return mgmt

    # The emulator's store keeps one connection and its SQL helpers; this package shares them.
    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        row = self.store._one(sql, params)
        return _decode(row) if row is not None else None

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return [_decode(r) for r in self.store._all(sql, params)]

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        return self.store._exec(sql, params)

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self.store._insert(table, row)
        return row

    def update(self, table: str, key_col: str, key: Any, changes: dict[str, Any]) -> int:
        return self.store._update(table, key_col, key, changes)


# ---------------------------------------------------------------------- projects


def project_exists(store: Store, project_id: str) -> bool:
    return ManagementStore(store).one("SELECT id FROM projects WHERE id = ?", (project_id,)) is not None


def project_param(emu: Emulator, request: Request) -> str:
    """The ``?project_id=`` of a request (default project when absent); 404 for an unknown project."""
    project_id = request.query_params.get("project_id") or DEFAULT_PROJECT
    if not project_exists(emu.store, project_id):
        raise GatewayError(404, "not_found", "project not found")
    return project_id


def body_project(emu: Emulator, doc: dict[str, Any]) -> str:
    """The ``project_id`` of a create body (default project when absent); 422 for an unknown project."""
    project_id = doc.get("project_id")
    if project_id is None:
        return DEFAULT_PROJECT
    if not isinstance(project_id, str) or not project_exists(emu.store, project_id):
        raise GatewayError(422, "validation_error", "project_id must name an existing project")
    return project_id


# ---------------------------------------------------------------------- callers


@dataclass(frozen=True)
class Principal:
    """The caller of a management endpoint."""

    role: str  # "superadmin" (the admin key) | "admin" | "member" | "readonly"
    scopes: tuple[str, ...] = ()
    key_id: str | None = None
    user_id: str | None = None
    org_id: str = ORG_ID

    @property
    def is_admin(self) -> bool:
        return self.role in ("superadmin", "admin")

    def allows(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(emu: Emulator, request: Request) -> Principal:
    """The admin key (``X-Admin-Key`` or Bearer) or an active API key (Bearer ``ak_live_...``); else 401."""
    given = request.headers.get("x-admin-key")
    bearer = request.headers.get("authorization", "")
    bearer = bearer[len("Bearer "):].strip() if bearer.startswith("Bearer ") else ""
    for candidate in (given, bearer):
        if candidate and hmac.compare_digest(candidate.encode(), emu.admin_key.encode()):
            return Principal(role="superadmin")
    if bearer.startswith(API_KEY_PREFIX) and given is None:
        mgmt = ManagementStore(emu.store)
        row = mgmt.one("SELECT * FROM api_keys WHERE key_hash = ? AND is_active = 1", (hash_key(bearer),))
        if row is not None:
            mgmt.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (time.time(), row["id"]))
            return Principal(role=row["role"], scopes=tuple(row["scopes"] or ()), key_id=row["id"],
                             user_id=row["user_id"])
    raise GatewayError(401, "unauthorized", "Missing or invalid admin key (X-Admin-Key) or API key")


ADMIN_ROLE = "role:admin"
# First path segment under /api/v1 → the scope family the real gateway checks for it.
_SCOPE_FAMILY = {
    "tokens": "tokens", "credentials": "credentials", "policies": "policies", "services": "services",
    "approvals": "approvals", "projects": "projects", "analytics": "analytics", "billing": "billing",
    "health": "system", "model-aliases": "model_aliases", "experiments": "experiments",
    "webhooks": "webhooks", "config": "config", "pricing": "billing",
}


def required_scope(method: str, path: str) -> str | None:
    """The scope (or :data:`ADMIN_ROLE`) an endpoint needs; ``None`` for any authenticated caller."""
    parts = path.split("/api/v1/", 1)[-1].strip("/").split("/")
    head = parts[0]
    write = method.upper() not in ("GET", "HEAD")
    if head == "auth":
        return None if parts[1:2] == ["whoami"] else "keys:manage"
    if head in ("guardrails", "emulator"):
        return ADMIN_ROLE
    if head in ("audit", "sessions"):
        return "sessions:write" if write else "audit:read"
    family = _SCOPE_FAMILY.get(head)
    if family is None:
        return None
    return f"{family}:{'write' if write else 'read'}"


def authorize(emu: Emulator, request: Request) -> Principal:
    """Authenticate the caller and check the endpoint's scope (admins pass every check); 403 otherwise."""
    principal = authenticate(emu, request)
    scope = required_scope(request.method, request.url.path)
    if scope == ADMIN_ROLE and not principal.is_admin:
        raise GatewayError(403, "forbidden", "Admin role required")
    if scope not in (None, ADMIN_ROLE) and not principal.allows(scope):
        raise GatewayError(403, "forbidden", f"Insufficient permissions: requires scope '{scope}'")
    request.state.principal = principal
    return principal
