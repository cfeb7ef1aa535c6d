"""SQLite storage of the emulator (stdlib ``sqlite3``, one connection guarded by a lock).

Every statement is parameterised. All calls are short and synchronous; the app calls them from
its event loop. A file database survives restarts: pending approvals with their stored original
requests, idempotency records, sessions and audit rows are all here. Its files are owner-only
(0600): they hold credentials and the original requests of pending approvals.

``idempotency.state``: ``in_flight`` (claimed) → ``forwarding`` → ``done`` | ``unknown``, or
``approval`` (see ``_outcomes``). ``approvals.exec_state``: NULL (not started) → ``running`` →
``done`` | ``unknown`` (or back to NULL when nothing reached the upstream).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tokens (
    ref TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, name TEXT NOT NULL, upstream_url TEXT NOT NULL,
    credential_id TEXT, policy_ids TEXT NOT NULL DEFAULT '[]', is_active INTEGER NOT NULL DEFAULT 1,
    log_level INTEGER NOT NULL DEFAULT 1, tags TEXT, allowed_models TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, provider TEXT NOT NULL, secret TEXT NOT NULL,
    injection_mode TEXT NOT NULL, injection_header TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1,
    is_active INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, mode TEXT NOT NULL, phase TEXT NOT NULL, rules TEXT NOT NULL,
    retry TEXT, is_active INTEGER NOT NULL DEFAULT 1, version INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS services (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, base_url TEXT NOT NULL,
    service_type TEXT NOT NULL, credential_id TEXT, is_active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, token_ref TEXT NOT NULL, idempotency_key TEXT, status TEXT NOT NULL,
    policy_name TEXT, summary TEXT NOT NULL, reason TEXT, created_at REAL NOT NULL, decided_at REAL,
    expires_at REAL NOT NULL, req_method TEXT NOT NULL, req_url TEXT NOT NULL, req_headers TEXT NOT NULL,
    req_body BLOB NOT NULL, credential_id TEXT, context TEXT NOT NULL DEFAULT '{}', exec_state TEXT,
    resp_status INTEGER, resp_headers TEXT, resp_body BLOB, executed_at REAL
);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status);
CREATE TABLE IF NOT EXISTS idempotency (
    token_ref TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, state TEXT NOT NULL,
    status INTEGER, headers TEXT, body BLOB, approval_id TEXT, created_at REAL NOT NULL,
    PRIMARY KEY (token_ref, key)
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, status TEXT NOT NULL, token_ref TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, completed_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
    token_ref TEXT, token_prefix TEXT, request_id TEXT, external_request_id TEXT, method TEXT, path TEXT,
    upstream_url TEXT, status_code INTEGER, latency_ms INTEGER, agent_name TEXT, tool_name TEXT,
    session_id TEXT, parent_span_id TEXT, span_id TEXT, trace_id TEXT, user_id TEXT, properties TEXT,
    idempotency_key TEXT, policy_result TEXT, policies_evaluated TEXT, deny_reason TEXT,
    approval_id TEXT, approval_wait_ms INTEGER, is_streaming INTEGER NOT NULL DEFAULT 0, model TEXT,
    error_code TEXT
);
CREATE INDEX IF NOT EXISTS audit_session ON audit (session_id);
"""

# Columns added after the first schema; migrated in place on databases created before them.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "tokens": {"project_id": "TEXT", "circuit_breaker": "TEXT", "upstreams": "TEXT"},
    "policies": {"project_id": "TEXT"},
    "credentials": {"project_id": "TEXT"},
    "services": {"project_id": "TEXT"},
    # LLM usage (``_metering``), the organisation of a request (``X-Tenant-Id``), response cache hits
    # (``_cache``), the ``split`` experiment and variant and the ``log``/``tag`` tags (``_actions``)
    "audit": {"prompt_tokens": "INTEGER", "completion_tokens": "INTEGER", "estimated_cost_usd": "REAL",
              "provider": "TEXT", "tenant_id": "TEXT", "cache_hit": "INTEGER", "experiment": "TEXT",
              "variant": "TEXT", "policy_tags": "TEXT"},
    # ``settled_seq``: the approval's place in the gateway's sequence of settlements (``_watch``)
    "approvals": {"reviewed_by": "TEXT", "review_channel": "TEXT", "settled_seq": "INTEGER"},
}
# [H15 routing] which target served a request and why (``_routing``)
ADDED_COLUMNS["audit"].update({"route_strategy": "TEXT", "route_reason": "TEXT", "router_info": "TEXT"})
#: Indexes on added columns (created after the columns exist).
ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS approvals_settled ON approvals (token_ref, settled_seq);
CREATE INDEX IF NOT EXISTS approvals_pending_expiry ON approvals (status, expires_at);
"""
#: The project of rows created without one (the real gateway's default project id).
DEFAULT_PROJECT = "00000000-0000-0000-0000-000000000001"

JSON_COLUMNS = {
    "policy_ids", "tags", "allowed_models", "rules", "retry", "summary", "req_headers", "context",
    "resp_headers", "headers", "properties", "policies_evaluated", "circuit_breaker", "upstreams",
    "router_info", "policy_tags",
}

IDEMPOTENCY_TTL = 24 * 3600.0


def new_id(prefix: str, nbytes: int = 16) -> str:
    return f"{prefix}{secrets.token_hex(nbytes)}"


def _decode(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out: dict[str, Any] = {}
    for key in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        value = row[key]
        if key in JSON_COLUMNS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


def _project_clause(project_id: str | None, *conditions: str) -> tuple[str, tuple[Any, ...]]:
    """A ``WHERE`` clause for ``conditions`` plus, when given, the project (``NULL`` = the default project)."""
    parts = list(conditions)
    params: tuple[Any, ...] = ()
    if project_id is not None:
        parts.append("COALESCE(project_id, ?) = ?")
        params = (DEFAULT_PROJECT, project_id)
    return (f"WHERE {' AND '.join(parts)}" if parts else ""), params


def _private_database_file(path: str) -> None:
    """Create the database file (and its folder) readable by the owner only; tighten old ones.

    SQLite creates its ``-wal``/``-shm``/``-journal`` files with the database file's permissions, so
    they are private too; existing ones from an older run are tightened here as well.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        if os.path.exists(name):
            os.chmod(name, 0o600)


def _enc(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


class Store:
    def __init__(self, path: str = ":memory:", *, token_prefix: str = "ailink_v1_") -> None:
        if path != ":memory:":
            _private_database_file(path)
        self.path = path
        #: Prefix of the virtual tokens minted here (the gateway generation's).
        self.token_prefix = token_prefix
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            for table, columns in ADDED_COLUMNS.items():
                self.ensure_columns(table, columns)
            self._conn.executescript(ADDED_INDEXES)
            row = self._conn.execute("SELECT MAX(settled_seq) FROM approvals").fetchone()
            #: The newest settlement's sequence number (0: none yet); see :meth:`transition_approval`.
            self._settled_seq: int = int(row[0] or 0)
        from ._vault import Vault  # [H15 routing] credential secrets sealed at rest

        self.vault = Vault.for_database(path)
        self.vault.install(self)

    def ensure_schema(self, sql: str) -> None:
        """Create further tables (``CREATE TABLE IF NOT EXISTS ...``) owned by other emulator modules."""
        with self._lock:
            self._conn.executescript(sql)

    def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add ``columns`` (name → SQL type) that ``table`` lacks: databases created before them migrate in place."""
        with self._lock:
            existing = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            for column, decl in columns.items():
                if column not in existing:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ping(self) -> bool:
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    # ------------------------------------------------------------------ generic helpers
    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        with self._lock:
            return _decode(self._conn.execute(sql, tuple(params)).fetchone())

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [d for d in (_decode(r) for r in self._conn.execute(sql, tuple(params)).fetchall()) if d]

    def _exec(self, sql: str, params: Iterable[Any] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).rowcount

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        cols = list(row)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        self._exec(sql, [_enc(row[c]) for c in cols])

    def _update(self, table: str, key_col: str, key: Any, changes: dict[str, Any]) -> int:
        if not changes:
            return 0
        sets = ", ".join(f"{c} = ?" for c in changes)
        return self._exec(
            f"UPDATE {table} SET {sets} WHERE {key_col} = ?", [*(_enc(v) for v in changes.values()), key]
        )

    # ------------------------------------------------------------------ meta
    def meta_get(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def meta_set(self, key: str, value: str) -> None:
        self._exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ tokens
    def create_token(self, *, name: str, upstream_url: str, credential_id: str | None,
                     policy_ids: list[str], log_level: int = 1, tags: Any = None,
                     allowed_models: Any = None, project_id: str | None = None) -> dict[str, Any]:
        now = time.time()
        row = {
            "ref": new_id("tok_", 8),
            "token": f"{self.token_prefix}{secrets.token_hex(4)}_tok_{secrets.token_hex(16)}",
            "name": name, "upstream_url": upstream_url, "credential_id": credential_id,
            "policy_ids": policy_ids, "is_active": 1, "log_level": log_level, "tags": tags,
            "allowed_models": allowed_models, "project_id": project_id, "created_at": now, "updated_at": now,
        }
        self._insert("tokens", row)
        return row

    def token_by_secret(self, token: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM tokens WHERE token = ?", (token,))

    def token_by_id(self, ident: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM tokens WHERE ref = ? OR token = ?", (ident, ident))

    def list_tokens(self, limit: int, offset: int, project_id: str | None = None) -> list[dict[str, Any]]:
        where, params = _project_clause(project_id)
        return self._all(f"SELECT * FROM tokens {where} ORDER BY created_at DESC LIMIT ? OFFSET ?",
                         (*params, limit, offset))

    def update_token(self, ref: str, changes: dict[str, Any]) -> None:
        self._update("tokens", "ref", ref, {**changes, "updated_at": time.time()})

    # ------------------------------------------------------------------ credentials
    def create_credential(self, row: dict[str, Any]) -> dict[str, Any]:
        """Store a credential; its secret is sealed (``_vault``) before it reaches the database."""
        row = {"id": new_id("cred_", 8), "version": 1, "is_active": 1, "created_at": time.time(), **row}
        row = self.vault.sealed_row(row)
        self._insert("credentials", row)
        return row

    def get_credential(self, cred_id: str) -> dict[str, Any] | None:
        """A credential with its secret opened (only the proxy's credential injection reads it)."""
        return self.vault.opened_row(self._one("SELECT * FROM credentials WHERE id = ?", (cred_id,)))

    def rotate_credential(self, cred_id: str, secret: str) -> dict[str, Any] | None:
        """Replace an active credential's secret, keeping its id (``version`` + 1); ``None`` when unknown."""
        with self._lock:
            if self._exec("UPDATE credentials SET secret = ?, version = version + 1 WHERE id = ? AND is_active = 1",
                          (self.vault.seal(secret, cred_id), cred_id)) == 0:
                return None
            return self._one("SELECT id, name, version FROM credentials WHERE id = ?", (cred_id,))

    def list_credentials(self, project_id: str | None = None) -> list[dict[str, Any]]:
        where, params = _project_clause(project_id, "is_active = 1")
        return self._all(f"SELECT * FROM credentials {where} ORDER BY created_at DESC", params)

    def delete_credential(self, cred_id: str) -> bool:
        return self._exec("UPDATE credentials SET is_active = 0 WHERE id = ? AND is_active = 1", (cred_id,)) > 0

    # ------------------------------------------------------------------ policies
    def create_policy(self, doc: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        row = {
            "id": new_id("pol_", 8), "name": doc["name"], "mode": doc.get("mode", "enforce"),
            "phase": doc.get("phase", "pre"), "rules": doc["rules"], "retry": doc.get("retry"),
            "project_id": doc.get("project_id"), "is_active": 1, "version": 1, "created_at": now, "updated_at": now,
        }
        self._insert("policies", row)
        return row

    def get_policy(self, pol_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM policies WHERE id = ? AND is_active = 1", (pol_id,))

    def list_policies(self, limit: int, offset: int, project_id: str | None = None) -> list[dict[str, Any]]:
        where, params = _project_clause(project_id, "is_active = 1")
        return self._all(f"SELECT * FROM policies {where} ORDER BY created_at DESC LIMIT ? OFFSET ?",
                         (*params, limit, offset))

    def policies_by_ids(self, ids: list[str]) -> list[dict[str, Any]]:
        out = []
        for pol_id in ids:
            row = self.get_policy(pol_id)
            if row:
                out.append(row)
        return out

    def update_policy(self, pol_id: str, changes: dict[str, Any]) -> None:
        with self._lock:
            self._update("policies", "id", pol_id, {**changes, "updated_at": time.time()})
            self._exec("UPDATE policies SET version = version + 1 WHERE id = ?", (pol_id,))

    def delete_policy(self, pol_id: str) -> bool:
        return self._exec("UPDATE policies SET is_active = 0 WHERE id = ? AND is_active = 1", (pol_id,)) > 0

    # ------------------------------------------------------------------ services
    def create_service(self, doc: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        row = {"id": new_id("svc_", 8), "is_active": 1, "created_at": now, "updated_at": now, **doc}
        self._insert("services", row)
        return row

    def get_service(self, ident: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM services WHERE (id = ? OR name = ?) AND is_active = 1", (ident, ident))

    def list_services(self, project_id: str | None = None) -> list[dict[str, Any]]:
        where, params = _project_clause(project_id, "is_active = 1")
        return self._all(f"SELECT * FROM services {where} ORDER BY created_at DESC", params)

    def update_service(self, svc_id: str, changes: dict[str, Any]) -> None:
        self._update("services", "id", svc_id, {**changes, "updated_at": time.time()})

    def delete_service(self, svc_id: str) -> bool:
        # hard delete so the name can be reused
        return self._exec("DELETE FROM services WHERE id = ?", (svc_id,)) > 0

    # ------------------------------------------------------------------ approvals
    def create_approval(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {"id": new_id("apr_"), "status": "pending", "created_at": time.time(), **row}
        self._insert("approvals", row)
        return row

    def get_approval(self, apr_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM approvals WHERE id = ?", (apr_id,))

    def list_approvals(self, status: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        """Newest first; ``status`` is one status or a comma list (``"approved,rejected"``)."""
        statuses = [s.strip() for s in status.split(",") if s.strip()] if status else []
        if statuses:
            marks = ", ".join("?" for _ in statuses)
            return self._all(
                f"SELECT * FROM approvals WHERE status IN ({marks}) ORDER BY created_at DESC LIMIT ? OFFSET ?",
                (*statuses, limit, offset),
            )
        return self._all("SELECT * FROM approvals ORDER BY created_at DESC LIMIT ? OFFSET ?", (limit, offset))

    def approvals_by_ids(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The approvals named in ``ids`` (unknown ids are left out), by id."""
        wanted = sorted(set(ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._all(f"SELECT * FROM approvals WHERE id IN ({marks})", chunk):
                found[row["id"]] = row
        return found

    def pending_expired(self, now: float) -> list[str]:
        rows = self._all("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?", (now,))
        return [r["id"] for r in rows]

    def next_expiry(self) -> float | None:
        """When the next pending approval expires (``None``: nothing is pending)."""
        row = self._one("SELECT MIN(expires_at) AS due FROM approvals WHERE status = 'pending'")
        return row["due"] if row else None

    def transition_approval(self, apr_id: str, new_status: str, reason: str | None = None, *,
                            reviewed_by: str | None = None, channel: str | None = None) -> bool:
        """pending → new_status, atomically, with who decided and through which channel; False when it
        was no longer pending. Each settlement gets the next number of the gateway-wide settlement
        sequence (``settled_seq``), which approval watchers resume from."""
        with self._lock:
            seq = self._settled_seq + 1
            updated = self._exec(
                "UPDATE approvals SET status = ?, reason = COALESCE(?, reason), decided_at = ?, reviewed_by = ?, "
                "review_channel = ?, settled_seq = ? WHERE id = ? AND status = 'pending'",
                (new_status, reason, time.time(), reviewed_by, channel, seq, apr_id),
            ) > 0
            if updated:
                self._settled_seq = seq
            return updated

    @property
    def settled_seq(self) -> int:
        """The sequence number of the newest settlement (every later one is larger)."""
        return self._settled_seq

    def settled_since(self, token_ref: str, after: int, limit: int) -> list[dict[str, Any]]:
        """The token's approvals settled after sequence number ``after``, oldest settlement first."""
        return self._all("SELECT * FROM approvals WHERE token_ref = ? AND settled_seq > ? "
                         "ORDER BY settled_seq LIMIT ?", (token_ref, after, limit))

    def approval_by_key(self, token_ref: str, key: str) -> dict[str, Any] | None:
        """The newest approval this token created under ``key`` (re-attaching, as the real gateway does)."""
        return self._one("SELECT * FROM approvals WHERE token_ref = ? AND idempotency_key = ? "
                         "ORDER BY created_at DESC LIMIT 1", (token_ref, key))

    def begin_execution(self, apr_id: str) -> bool:
        """Claim the single upstream execution of an approved request (not started → running)."""
        return self._exec(
            "UPDATE approvals SET exec_state = 'running' WHERE id = ? AND status = 'approved' "
            "AND exec_state IS NULL",
            (apr_id,),
        ) > 0

    def finish_execution(self, apr_id: str, status: int, headers: list[list[str]], body: bytes) -> None:
        """The upstream answered completely: keep the answer (any status) for every later fetch."""
        self._update("approvals", "id", apr_id, {
            "exec_state": "done", "resp_status": status, "resp_headers": headers, "resp_body": body,
            "executed_at": time.time(),
        })

    def execution_not_started(self, apr_id: str) -> None:
        """Nothing reached the upstream (e.g. connection refused): the execution may be tried again."""
        self._exec("UPDATE approvals SET exec_state = NULL WHERE id = ? AND exec_state = 'running'", (apr_id,))

    def execution_unknown(self, apr_id: str) -> None:
        """Sent, but no complete answer: the outcome is unknown and the request is never sent again."""
        self._exec("UPDATE approvals SET exec_state = 'unknown', executed_at = ? WHERE id = ? "
                   "AND exec_state = 'running'", (time.time(), apr_id))

    def recover_after_restart(self) -> dict[str, int]:
        """At start-up: settle what a previous process left in flight (it may have died mid-request).

        Approved executions left running and idempotency records left forwarding become *outcome
        unknown* (never re-sent: the upstream may have acted). Records that were claimed but never
        forwarded are released. Pending approvals and not-started executions stay as they are.
        """
        with self._lock:
            executions = self._exec("UPDATE approvals SET exec_state = 'unknown', executed_at = ? "
                                    "WHERE exec_state = 'running'", (time.time(),))
            unknown = self._exec("UPDATE idempotency SET state = 'unknown' WHERE state = 'forwarding'")
            released = self._exec("DELETE FROM idempotency WHERE state = 'in_flight'")
        return {"executions_unknown": executions, "keys_unknown": unknown, "keys_released": released}

    # ------------------------------------------------------------------ idempotency
    def idem_claim(self, token_ref: str, key: str, fingerprint: str, state: str = "in_flight",
                   approval_id: str | None = None) -> dict[str, Any] | None:
        """Insert a record for (token, key). Returns None when claimed, else the existing record."""
        now = time.time()
        with self._lock:
            self._exec("DELETE FROM idempotency WHERE token_ref = ? AND key = ? AND created_at < ?",
                       (token_ref, key, now - IDEMPOTENCY_TTL))
            existing = self._one("SELECT * FROM idempotency WHERE token_ref = ? AND key = ?", (token_ref, key))
            if existing is not None:
                return existing
            self._insert("idempotency", {
                "token_ref": token_ref, "key": key, "fingerprint": fingerprint, "state": state,
                "approval_id": approval_id, "created_at": now,
            })
            return None

    def idem_get(self, token_ref: str, key: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM idempotency WHERE token_ref = ? AND key = ? AND created_at >= ?",
                         (token_ref, key, time.time() - IDEMPOTENCY_TTL))

    def idem_complete(self, token_ref: str, key: str, status: int, headers: list[list[str]], body: bytes) -> None:
        self._exec(
            "UPDATE idempotency SET state = 'done', status = ?, headers = ?, body = ? WHERE token_ref = ? AND key = ?",
            (status, _enc(headers), body, token_ref, key),
        )

    def idem_set_state(self, token_ref: str, key: str, state: str) -> None:
        """``forwarding`` (about to send upstream) or ``unknown`` (sent, no complete answer)."""
        self._exec("UPDATE idempotency SET state = ? WHERE token_ref = ? AND key = ?", (state, token_ref, key))

    def idem_attach_approval(self, token_ref: str, key: str, approval_id: str) -> None:
        self._exec("UPDATE idempotency SET state = 'approval', approval_id = ? WHERE token_ref = ? AND key = ?",
                   (approval_id, token_ref, key))

    def idem_delete(self, token_ref: str, key: str) -> None:
        self._exec("DELETE FROM idempotency WHERE token_ref = ? AND key = ?", (token_ref, key))

    # ------------------------------------------------------------------ sessions
    def touch_session(self, session_id: str, token_ref: str) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            self._exec(
                "INSERT INTO sessions (session_id, status, token_ref, created_at, updated_at) "
                "VALUES (?, 'active', ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET updated_at = excluded.updated_at",
                (session_id, token_ref, now, now),
            )
            row = self._one("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        assert row is not None
        return row

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM sessions WHERE session_id = ?", (session_id,))

    def set_session_status(self, session_id: str, status: str) -> None:
        now = time.time()
        self._exec(
            "UPDATE sessions SET status = ?, updated_at = ?, completed_at = ? WHERE session_id = ?",
            (status, now, now if status == "completed" else None, session_id),
        )

    def session_summaries(self, limit: int, offset: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT s.session_id, s.status, s.created_at, s.updated_at, s.completed_at, "
            "COUNT(a.seq) AS total_requests, COALESCE(SUM(a.latency_ms), 0) AS total_latency_ms, "
            "COALESCE(SUM(a.estimated_cost_usd), 0) AS total_cost_usd, "
            "COALESCE(SUM(a.prompt_tokens), 0) AS total_prompt_tokens, "
            "COALESCE(SUM(a.completion_tokens), 0) AS total_completion_tokens, "
            "MIN(a.created_at) AS first_request_at, MAX(a.created_at) AS last_request_at "
            "FROM sessions s LEFT JOIN audit a ON a.session_id = s.session_id "
            "GROUP BY s.session_id ORDER BY s.updated_at DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )

    def session_summary(self, session_id: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT s.session_id, s.status, s.created_at, s.updated_at, s.completed_at, "
            "COUNT(a.seq) AS total_requests, COALESCE(SUM(a.latency_ms), 0) AS total_latency_ms, "
            "COALESCE(SUM(a.estimated_cost_usd), 0) AS total_cost_usd, "
            "COALESCE(SUM(a.prompt_tokens), 0) AS total_prompt_tokens, "
            "COALESCE(SUM(a.completion_tokens), 0) AS total_completion_tokens, "
            "MIN(a.created_at) AS first_request_at, MAX(a.created_at) AS last_request_at "
            "FROM sessions s LEFT JOIN audit a ON a.session_id = s.session_id WHERE s.session_id = ? "
            "GROUP BY s.session_id",
            (session_id,),
        )

    # ------------------------------------------------------------------ audit
    def add_audit(self, row: dict[str, Any]) -> str:
        row = {"id": new_id("aud_"), "created_at": time.time(), **row}
        self._insert("audit", row)
        return str(row["id"])

    def list_audit(self, *, limit: int, offset: int, session_id: str | None = None,
                   agent_name: str | None = None, status: str | None = None,
                   order: str = "DESC") -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        if session_id is not None:
            where.append("session_id = ?")
            params.append(session_id)
        if agent_name is not None:
            where.append("agent_name = ?")
            params.append(agent_name)
        if status is not None:
            if status.isascii() and status.isdigit() and len(status) <= 3:
                where.append("status_code = ?")
                params.append(int(status))
            else:
                where.append("policy_result = ?")
                params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        direction = "ASC" if order == "ASC" else "DESC"
        return self._all(f"SELECT * FROM audit {clause} ORDER BY seq {direction} LIMIT ? OFFSET ?",
                         [*params, limit, offset])

    def get_audit(self, audit_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM audit WHERE id = ?", (audit_id,))
