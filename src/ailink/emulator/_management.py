"""Management API (``/api/v1``, admin key) of the emulator, shaped like the real gateway's (reference §7).

Secrets never appear in these pages: token rows show a masked ``id`` (``ailink_v1_ab12…``) plus a
non-secret ``ref`` usable in paths (deviation: the real gateway lists full token ids), credential
secrets are never returned, approvals show the masked token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ailink._secrets import mask

from ._app import Emulator, GatewayError, iso, new_request_id
from ._metering import decimal_text
from ._mgmt._base import authorize, body_project, project_param
from ._mgmt._tokens import log_level, token_settings
from ._policy import PolicyError, validate_policy
from ._review import API_CHANNELS, request_view, review_url
from ._store import DEFAULT_PROJECT

Handler = Callable[[Request], Awaitable[Response]]
INJECTION_MODES = ("bearer", "basic", "header", "query")
SESSION_TRANSITIONS = {("active", "paused"), ("active", "completed"), ("paused", "active"), ("paused", "completed")}


MAX_REASON = 2000
#: Decisions one ``POST /api/v1/approvals/decisions`` may carry.
MAX_BULK_DECISIONS = 10_000
MAX_REVIEWER = 200


def _reviewer(request: Request, doc: dict[str, Any]) -> tuple[str, str]:
    """Who decides and through which channel: ``reviewed_by`` (default: the caller's key) and
    ``channel`` (``api``, ``cli`` or ``sdk``; default ``api``; ``inbox`` is set by the inbox only)."""
    name = doc.get("reviewed_by")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > MAX_REVIEWER):
        raise GatewayError(422, "validation_error", f"reviewed_by must be a name of at most {MAX_REVIEWER} characters")
    channel = doc.get("channel", "api")
    if channel not in API_CHANNELS:
        raise GatewayError(422, "validation_error", f"channel must be one of {', '.join(API_CHANNELS)}")
    principal = getattr(request.state, "principal", None)
    default = "admin" if principal is None or principal.key_id is None else f"api key {principal.key_id}"
    return (name.strip() if isinstance(name, str) else default), channel


def _decision(doc: dict[str, Any]) -> tuple[str, str | None]:
    """The ``decision`` (``approved``/``rejected``) and optional ``reason`` of a decision body."""
    raw = doc.get("decision")
    decision = {"approved": "approved", "approve": "approved", "rejected": "rejected",
                "reject": "rejected"}.get(raw.lower() if isinstance(raw, str) else "")
    if decision is None:
        raise GatewayError(400, "validation_error", "decision must be 'approved' or 'rejected'")
    reason = doc.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise GatewayError(422, "validation_error", f"reason must be a string of at most {MAX_REASON} characters")
    return decision, reason


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise GatewayError(422, "validation_error", f"{name} must be an integer") from None
    return max(low, min(high, value))


def _http_url(value: Any, field: str) -> str:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        valid = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 literal)
        valid = False
    if not valid:
        raise GatewayError(422, "validation_error", f"{field} must be an http(s) URL")
    return str(value)


def _str(doc: dict[str, Any], field: str, *, required: bool = True, default: str | None = None) -> str | None:
    value = doc.get(field, default)
    if value is None:
        if required:
            raise GatewayError(422, "validation_error", f"{field} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise GatewayError(422, "validation_error", f"{field} must be a non-empty string")
    return value


def token_page(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": mask(row["token"]), "ref": row["ref"], "name": row["name"], "upstream_url": row["upstream_url"],
        "credential_id": row["credential_id"], "policy_ids": row["policy_ids"] or [],
        "is_active": bool(row["is_active"]), "log_level": row["log_level"], "tags": row["tags"],
        "allowed_models": row["allowed_models"], "scopes": [], "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]), "project_id": row.get("project_id") or DEFAULT_PROJECT,
        "circuit_breaker": row.get("circuit_breaker"), "upstreams": row.get("upstreams"),
    }


def credential_page(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "provider": row["provider"], "version": row["version"],
        "is_active": bool(row["is_active"]), "injection_mode": row["injection_mode"],
        "injection_header": row["injection_header"], "created_at": iso(row["created_at"]),
        "project_id": row.get("project_id") or DEFAULT_PROJECT,
    }


def policy_page(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "project_id": row.get("project_id") or DEFAULT_PROJECT, "name": row["name"],
        "mode": row["mode"], "phase": row["phase"],
        "rules": row["rules"], "retry": row["retry"], "is_active": bool(row["is_active"]),
        "version": row["version"], "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }


def service_page(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "project_id": row.get("project_id") or DEFAULT_PROJECT, "name": row["name"],
        "description": row["description"],
        "base_url": row["base_url"], "service_type": row["service_type"], "credential_id": row["credential_id"],
        "is_active": bool(row["is_active"]), "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def approval_page(emu: Emulator, row: dict[str, Any]) -> dict[str, Any]:
    """An approval as reviewers see it: the summary, the whole request (``request``, secrets hidden),
    who decided through which channel, and the inbox page (``review_url``)."""
    token = emu.store.token_by_id(row["token_ref"])
    summary = row["summary"] or {}
    return {
        "id": row["id"], "token_id": mask(token["token"]) if token else None, "token_ref": row["token_ref"],
        "token_name": token["name"] if token else None,
        "project_id": None, "idempotency_key": row["idempotency_key"], "request_summary": summary,
        "status": row["status"], "policy": row["policy_name"], "reason": row["reason"],
        "reviewed_by": row.get("reviewed_by"), "review_channel": row.get("review_channel"),
        "reviewed_at": iso(row["decided_at"]), "decided_at": iso(row["decided_at"]),
        "expires_at": iso(row["expires_at"]), "created_at": iso(row["created_at"]),
        "executed": row["exec_state"] == "done", "result_status": row["resp_status"],
        "agent": summary.get("agent"), "tool_name": summary.get("tool_name"), "session_id": summary.get("session_id"),
        "request": request_view(row), "review_url": review_url(emu.public_url, row["id"]),
    }


def with_decisions(store: Any, pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit pages with the decision of their approval: ``hitl_decision``, ``reviewed_by``,
    ``review_channel``, ``review_reason`` (who decided, through which channel, and why)."""
    approvals = store.approvals_by_ids(p["approval_id"] for p in pages if p.get("approval_id"))
    for page in pages:
        row = approvals.get(page.get("approval_id") or "")
        decided = row is not None and row["status"] != "pending"
        page["hitl_decision"] = row["status"] if decided else None
        page["reviewed_by"] = row.get("reviewed_by") if decided else None
        page["review_channel"] = row.get("review_channel") if decided else None
        page["review_reason"] = row.get("reason") if decided else None
    return pages


def audit_page(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "created_at": iso(row["created_at"]), "token_id": row["token_prefix"],
        "token_ref": row["token_ref"], "request_id": row["request_id"],
        "external_request_id": row["external_request_id"], "method": row["method"], "path": row["path"],
        "upstream_url": row["upstream_url"], "status_code": row["status_code"], "upstream_status": row["status_code"],
        "latency_ms": row["latency_ms"], "response_latency_ms": row["latency_ms"], "agent_name": row["agent_name"],
        "tool_name": row["tool_name"], "session_id": row["session_id"], "parent_span_id": row["parent_span_id"],
        "span_id": row["span_id"], "trace_id": row["trace_id"], "user_id": row["user_id"],
        "properties": row["properties"], "custom_properties": row["properties"],
        "idempotency_key": row["idempotency_key"], "policy_result": row["policy_result"],
        "policies_evaluated": row["policies_evaluated"], "deny_reason": row["deny_reason"],
        "approval_id": row["approval_id"], "approval_wait_ms": row["approval_wait_ms"],
        "hitl_required": row["approval_id"] is not None, "is_streaming": bool(row["is_streaming"]),
        "model": row["model"], "error_type": row["error_code"], "tenant_id": row.get("tenant_id"),
        "provider": row.get("provider"), "prompt_tokens": row.get("prompt_tokens"),
        "completion_tokens": row.get("completion_tokens"),
        "estimated_cost_usd": decimal_text(row.get("estimated_cost_usd")), "cache_hit": bool(row.get("cache_hit")),
        # [H15 routing] the target that served it, how it was chosen, and every attempt
        "route_strategy": row.get("route_strategy"), "route_reason": row.get("route_reason"),
        "router_info": row.get("router_info"),
        # the ``split`` experiment and variant, the ``log``/``tag`` tags (``_actions``)
        "experiment_name": row.get("experiment"), "variant_name": row.get("variant"),
        "policy_tags": row.get("policy_tags"),
    }


SESSION_REQUEST_KEYS = ("id", "method", "path", "status_code", "parent_span_id", "span_id", "trace_id", "tool_name",
                        "agent_name", "properties", "policy_result", "approval_id", "approval_wait_ms", "latency_ms",
                        "created_at", "request_id", "external_request_id", "idempotency_key", "model", "user_id",
                        "tenant_id", "estimated_cost_usd", "prompt_tokens", "completion_tokens", "cache_hit",
                        "deny_reason", "hitl_decision", "reviewed_by", "review_channel", "review_reason",
                        "upstream_url", "route_strategy", "route_reason", "error_type")


def session_requests(store: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A session's requests (audit rows, oldest first) with their approvals' decisions."""
    pages = with_decisions(store, [audit_page(r) for r in rows])
    return [{k: page.get(k) for k in SESSION_REQUEST_KEYS} for page in pages]


def session_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": row["session_id"], "status": row["status"], "total_requests": row["total_requests"],
        "total_latency_ms": row["total_latency_ms"], "total_cost_usd": decimal_text(row["total_cost_usd"]),
        "total_prompt_tokens": row["total_prompt_tokens"], "total_completion_tokens": row["total_completion_tokens"],
        "first_request_at": iso(row["first_request_at"]),
        "last_request_at": iso(row["last_request_at"]), "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]), "completed_at": iso(row["completed_at"]), "requests": [],
    }


def management_routes(emu: Emulator, extra: list[tuple[str, Handler, list[str]]] | None = None) -> list[Route]:
    """The management routes; ``extra`` (``(path, handler, methods)``) are served behind the same auth."""
    store = emu.store

    def admin(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            request.state.request_id = new_request_id()
            authorize(emu, request)  # the admin key, or an API key with the endpoint's scope
            return await handler(request)

        wrapped.__name__ = handler.__name__
        return wrapped

    def need(row: dict[str, Any] | None, what: str) -> dict[str, Any]:
        if row is None:
            raise GatewayError(404, "not_found", f"{what} not found")
        return row

    # ---------------------------------------------------------------- tokens
    def _policy_ids(value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GatewayError(422, "validation_error", "policy_ids must be a list of policy ids")
        for pol_id in value:
            if store.get_policy(pol_id) is None:
                raise GatewayError(422, "validation_error", f"unknown policy id: {pol_id}")
        return value

    def _credential_id(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or store.get_credential(value) is None:
            raise GatewayError(422, "validation_error", "unknown credential_id")
        return value

    async def create_token(request: Request) -> Response:
        doc = await emu.json_body(request)
        name = _str(doc, "name")
        upstream = _http_url(doc.get("upstream_url"), "upstream_url")
        settings = token_settings(emu, doc, creating=True)  # project, circuit breaker, upstream list
        row = store.create_token(name=name or "", upstream_url=upstream,
                                 credential_id=_credential_id(doc.get("credential_id")),
                                 policy_ids=_policy_ids(doc.get("policy_ids")), log_level=log_level(doc),
                                 tags=doc.get("tags"), allowed_models=doc.get("allowed_models"),
                                 project_id=settings.pop("project_id"))
        if settings:
            store.update_token(row["ref"], settings)
        return JSONResponse({"token_id": row["token"], "name": row["name"], "ref": row["ref"],
                             "message": "Token created. Store it now: it is not shown again."}, status_code=201)

    async def list_tokens(request: Request) -> Response:
        rows = store.list_tokens(_int_param(request, "limit", 100, 1, 1000),
                                 _int_param(request, "offset", 0, 0, 10**9), project_param(emu, request))
        return JSONResponse([token_page(r) for r in rows])

    async def get_token(request: Request) -> Response:
        return JSONResponse(token_page(need(store.token_by_id(request.path_params["tid"]), "token")))

    async def patch_token(request: Request) -> Response:
        row = need(store.token_by_id(request.path_params["tid"]), "token")
        doc = await emu.json_body(request)
        changes: dict[str, Any] = {}
        if "name" in doc:
            changes["name"] = _str(doc, "name")
        if "upstream_url" in doc:
            changes["upstream_url"] = _http_url(doc["upstream_url"], "upstream_url")
        if "credential_id" in doc:
            changes["credential_id"] = _credential_id(doc["credential_id"])
        if "policy_ids" in doc:
            changes["policy_ids"] = _policy_ids(doc["policy_ids"])
        if "is_active" in doc:
            if not isinstance(doc["is_active"], bool):
                raise GatewayError(422, "validation_error", "is_active must be a boolean")
            changes["is_active"] = int(doc["is_active"])
        for key in ("tags", "allowed_models"):
            if key in doc:
                changes[key] = doc[key]
        changes.update(token_settings(emu, doc, creating=False))
        store.update_token(row["ref"], changes)
        return JSONResponse(token_page(need(store.token_by_id(row["ref"]), "token")))

    async def delete_token(request: Request) -> Response:
        row = need(store.token_by_id(request.path_params["tid"]), "token")
        store.update_token(row["ref"], {"is_active": 0})
        return Response(status_code=204)

    # ---------------------------------------------------------------- credentials
    async def create_credential(request: Request) -> Response:
        doc = await emu.json_body(request)
        name = _str(doc, "name")
        secret = _str(doc, "secret")
        mode = doc.get("injection_mode") or "bearer"
        if mode not in INJECTION_MODES:
            raise GatewayError(422, "validation_error", f"injection_mode must be one of {', '.join(INJECTION_MODES)}")
        header = _str(doc, "injection_header", required=False) or ("key" if mode == "query" else "Authorization")
        row = store.create_credential({"name": name, "provider": _str(doc, "provider", required=False) or "custom",
                                       "secret": secret, "injection_mode": mode, "injection_header": header,
                                       "project_id": body_project(emu, doc)})
        return JSONResponse({"id": row["id"], "name": row["name"], "message": "Credential stored."}, status_code=201)

    async def list_credentials(request: Request) -> Response:
        return JSONResponse([credential_page(r) for r in store.list_credentials(project_param(emu, request))])

    async def get_credential(request: Request) -> Response:
        return JSONResponse(credential_page(need(store.get_credential(request.path_params["cid"]), "credential")))

    async def delete_credential(request: Request) -> Response:
        cid = request.path_params["cid"]
        if not store.delete_credential(cid):
            raise GatewayError(404, "not_found", "credential not found")
        return JSONResponse({"id": cid, "deleted": True})

    # ---------------------------------------------------------------- policies
    def _check_policy(doc: dict[str, Any], partial: bool) -> None:
        try:
            validate_policy(doc, partial=partial)
        except PolicyError as exc:
            raise GatewayError(422, "validation_error", f"Invalid policy: {exc}") from None

    async def create_policy(request: Request) -> Response:
        doc = await emu.json_body(request)
        _check_policy(doc, partial=False)
        row = store.create_policy({**doc, "project_id": body_project(emu, doc)})
        return JSONResponse({"id": row["id"], "name": row["name"], "message": "Policy created."}, status_code=201)

    async def list_policies(request: Request) -> Response:
        rows = store.list_policies(_int_param(request, "limit", 100, 1, 1000),
                                   _int_param(request, "offset", 0, 0, 10**9), project_param(emu, request))
        return JSONResponse([policy_page(r) for r in rows])

    async def get_policy(request: Request) -> Response:
        return JSONResponse(policy_page(need(store.get_policy(request.path_params["pid"]), "policy")))

    async def update_policy(request: Request) -> Response:
        row = need(store.get_policy(request.path_params["pid"]), "policy")
        doc = await emu.json_body(request)
        _check_policy(doc, partial=True)
        changes: dict[str, Any] = {k: doc[k] for k in ("name", "mode", "phase", "rules", "retry") if k in doc}
        store.update_policy(row["id"], changes)
        updated = need(store.get_policy(row["id"]), "policy")
        return JSONResponse({"id": updated["id"], "name": updated["name"], "message": "Policy updated."})

    async def delete_policy(request: Request) -> Response:
        pid = request.path_params["pid"]
        if not store.delete_policy(pid):
            raise GatewayError(404, "not_found", "policy not found")
        return JSONResponse({"id": pid, "deleted": True})

    # ---------------------------------------------------------------- services
    async def create_service(request: Request) -> Response:
        doc = await emu.json_body(request)
        name = _str(doc, "name")
        assert name is not None
        if "/" in name:
            raise GatewayError(422, "validation_error", "name must not contain '/'")
        if store.get_service(name) is not None:
            raise GatewayError(409, "conflict", f"a service named '{name}' already exists")
        row = store.create_service({
            "name": name, "base_url": _http_url(doc.get("base_url"), "base_url"),
            "description": _str(doc, "description", required=False),
            "service_type": _str(doc, "service_type", required=False) or "generic",
            "credential_id": _credential_id(doc.get("credential_id")), "project_id": body_project(emu, doc),
        })
        return JSONResponse(service_page(row), status_code=201)

    async def list_services(request: Request) -> Response:
        return JSONResponse([service_page(r) for r in store.list_services(project_param(emu, request))])

    async def get_service(request: Request) -> Response:
        return JSONResponse(service_page(need(store.get_service(request.path_params["sid"]), "service")))

    async def patch_service(request: Request) -> Response:
        row = need(store.get_service(request.path_params["sid"]), "service")
        doc = await emu.json_body(request)
        changes: dict[str, Any] = {}
        if "base_url" in doc:
            changes["base_url"] = _http_url(doc["base_url"], "base_url")
        if "credential_id" in doc:
            changes["credential_id"] = _credential_id(doc["credential_id"])
        for key in ("description", "service_type"):
            if key in doc:
                changes[key] = _str(doc, key, required=False)
        store.update_service(row["id"], changes)
        return JSONResponse(service_page(need(store.get_service(row["id"]), "service")))

    async def delete_service(request: Request) -> Response:
        row = need(store.get_service(request.path_params["sid"]), "service")
        store.delete_service(row["id"])
        return JSONResponse({"id": row["id"], "deleted": True})

    # ---------------------------------------------------------------- approvals
    async def list_approvals(request: Request) -> Response:
        emu.expire_due()
        status = request.query_params.get("status") if emu.profile.approval_lookup else None
        rows = store.list_approvals(status, _int_param(request, "limit", 200, 1, 1000),
                                    _int_param(request, "offset", 0, 0, 10**9))
        return JSONResponse([approval_page(emu, r) for r in rows])

    async def get_approval(request: Request) -> Response:
        row = emu.refresh_approval(request.path_params["aid"]) if emu.profile.approval_lookup else None
        if row is None:
            raise GatewayError(404, "approval_not_found", "No such approval request")
        return JSONResponse(approval_page(emu, row))

    async def decide(request: Request) -> Response:
        apr_id = request.path_params["aid"]
        doc = await emu.json_body(request)
        decision, reason = _decision(doc)
        reviewer, channel = _reviewer(request, doc)
        row = emu.refresh_approval(apr_id)
        if row is None:
            if not emu.profile.unknown_approval_not_found:  # the real gateway: nothing updated, still 200
                return JSONResponse({"id": apr_id, "status": decision, "updated": False})
            raise GatewayError(404, "approval_not_found", "No such approval request")
        updated = emu.decide(apr_id, decision, reason, reviewed_by=reviewer, channel=channel)
        row = store.get_approval(apr_id) or row
        return JSONResponse({"id": apr_id, "status": row["status"], "updated": updated})

    async def decide_many(request: Request) -> Response:
        """[ext] ``{"decisions": [{"id", "decision", "reason"?}, ...], "reviewed_by"?, "channel"?}``:
        every item is checked before any is applied; unknown ids are reported, not fatal. Not in the
        ``real`` profile (404): the real gateway decides one approval per call."""
        if not emu.profile.bulk_decisions:
            raise GatewayError(404, "not_found", "No such management endpoint")
        doc = await emu.json_body(request)
        items = doc.get("decisions")
        if not isinstance(items, list) or not items or len(items) > MAX_BULK_DECISIONS:
            raise GatewayError(422, "validation_error",
                               f"decisions must be a list of 1 to {MAX_BULK_DECISIONS} decisions")
        reviewer, channel = _reviewer(request, doc)
        checked: list[tuple[str, str, str | None]] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise GatewayError(422, "validation_error", f"decisions[{index}] must be an object with an id")
            try:
                decision, reason = _decision(item)
            except GatewayError as exc:
                raise GatewayError(422, "validation_error", f"decisions[{index}]: {exc.message}") from None
            checked.append((item["id"], decision, reason))
        rows = store.approvals_by_ids(apr_id for apr_id, _, _ in checked)
        results: list[dict[str, Any]] = []
        for index, (apr_id, decision, reason) in enumerate(checked):
            if index and index % 200 == 0:
                await asyncio.sleep(0)  # a big batch lets the other requests (and the watch streams) through
            if apr_id not in rows or emu.refresh_approval(apr_id) is None:
                results.append({"id": apr_id, "status": None, "updated": False, "error": "approval_not_found"})
                continue
            updated = emu.decide(apr_id, decision, reason, reviewed_by=reviewer, channel=channel)
            row = store.get_approval(apr_id)
            results.append({"id": apr_id, "status": row["status"] if row else None, "updated": updated})
        return JSONResponse({"results": results, "updated": sum(1 for r in results if r["updated"])})

    # ---------------------------------------------------------------- audit
    async def list_audit(request: Request) -> Response:
        rows = store.list_audit(
            limit=_int_param(request, "limit", 50, 1, 200), offset=_int_param(request, "offset", 0, 0, 10**9),
            session_id=request.query_params.get("session_id"), agent_name=request.query_params.get("agent_name"),
            status=request.query_params.get("status"),
        )
        return JSONResponse(with_decisions(store, [audit_page(r) for r in rows]))

    async def get_audit(request: Request) -> Response:
        row = need(store.get_audit(request.path_params["aid"]), "audit log")
        return JSONResponse(with_decisions(store, [audit_page(row)])[0])

    # ---------------------------------------------------------------- sessions
    async def list_sessions(request: Request) -> Response:
        rows = store.session_summaries(_int_param(request, "limit", 100, 1, 500),
                                       _int_param(request, "offset", 0, 0, 10**9))
        return JSONResponse([session_summary(r) for r in rows])

    async def get_session(request: Request) -> Response:
        sid = request.path_params["sid"]
        row = need(store.session_summary(sid), "session")
        out = session_summary(row)
        out["requests"] = session_requests(store, store.list_audit(limit=10_000, offset=0, session_id=sid, order="ASC"))
        return JSONResponse(out)

    def _entity(row: dict[str, Any]) -> dict[str, Any]:
        return {"session_id": row["session_id"], "status": row["status"], "created_at": iso(row["created_at"]),
                "updated_at": iso(row["updated_at"]), "completed_at": iso(row["completed_at"]),
                "spend_cap_usd": _session_cap(row["session_id"]), **_entity_totals(row["session_id"]),
                "metadata": None}

    def _session_cap(session_id: str) -> str | None:  # [H15 routing] the session's spend cap (``_budgets``)
        cap = emu.budgets.session_cap(session_id)
        return decimal_text(cap["limit_usd"]) if cap is not None else None

    def _entity_totals(session_id: str) -> dict[str, Any]:
        totals = store.session_summary(session_id) or {}
        return {"total_cost_usd": decimal_text(totals.get("total_cost_usd")),
                "total_tokens": (totals.get("total_prompt_tokens") or 0) + (totals.get("total_completion_tokens") or 0),
                "total_requests": totals.get("total_requests") or 0}

    async def session_entity(request: Request) -> Response:
        return JSONResponse(_entity(need(store.get_session(request.path_params["sid"]), "session")))

    async def session_spend_cap(request: Request) -> Response:  # [H15 routing]
        sid = request.path_params["sid"]
        doc = await emu.json_body(request)
        row = need(store.get_session(sid), "session")
        emu.budgets.set_session_cap(sid, doc)
        return JSONResponse(_entity(row))

    async def session_status(request: Request) -> Response:
        sid = request.path_params["sid"]
        doc = await emu.json_body(request)
        status = doc.get("status")
        if status not in ("active", "paused", "completed"):
            raise GatewayError(422, "validation_error", "status must be 'active', 'paused' or 'completed'")
        row = need(store.get_session(sid), "session")
        if row["status"] != status:
            if (row["status"], status) not in SESSION_TRANSITIONS:
                raise GatewayError(409, "invalid_transition",
                                   f"cannot change a {row['status']} session to {status}")
            store.set_session_status(sid, status)
        return JSONResponse(_entity(need(store.get_session(sid), "session")))

    # ---------------------------------------------------------------- emulator-only
    async def script_llm(request: Request) -> Response:
        doc = await emu.json_body(request)
        ident = doc.get("token_id")
        token = store.token_by_id(ident) if isinstance(ident, str) else None
        if token is None:
            raise GatewayError(422, "validation_error", "token_id must name an existing token")
        responses = doc.get("responses")
        if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
            raise GatewayError(422, "validation_error", "responses must be a list of objects")
        for r in responses:
            if not ({"content", "tool_calls", "status"} & set(r)):
                raise GatewayError(422, "validation_error", "each response needs content, tool_calls or status")
            for call in r.get("tool_calls") or []:
                if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                    raise GatewayError(422, "validation_error", "each tool call needs a name")
        queued = emu.llm.script(token["ref"], responses)
        return JSONResponse({"token_ref": token["ref"], "queued": queued})

    async def payments_stats(request: Request) -> Response:
        return JSONResponse(emu.payments.stats())

    async def reset_stats(request: Request) -> Response:
        emu.payments.reset()
        emu.llm.reset()
        return JSONResponse({"reset": True})

    async def api_not_found(request: Request) -> Response:
        raise GatewayError(404, "not_found", "No such management endpoint")

    p = "/api/v1"
    table: list[tuple[str, Handler, list[str]]] = [
        ("/tokens", create_token, ["POST"]), ("/tokens", list_tokens, ["GET"]),
        ("/tokens/{tid}", get_token, ["GET"]), ("/tokens/{tid}", patch_token, ["PATCH"]),
        ("/tokens/{tid}", delete_token, ["DELETE"]),
        ("/credentials", create_credential, ["POST"]), ("/credentials", list_credentials, ["GET"]),
        ("/credentials/{cid}", get_credential, ["GET"]), ("/credentials/{cid}", delete_credential, ["DELETE"]),
        ("/policies", create_policy, ["POST"]), ("/policies", list_policies, ["GET"]),
        ("/policies/{pid}", get_policy, ["GET"]), ("/policies/{pid}", update_policy, ["PUT", "PATCH"]),
        ("/policies/{pid}", delete_policy, ["DELETE"]),
        ("/services", create_service, ["POST"]), ("/services", list_services, ["GET"]),
        ("/services/{sid}", get_service, ["GET"]), ("/services/{sid}", patch_service, ["PATCH"]),
        ("/services/{sid}", delete_service, ["DELETE"]),
        ("/approvals", list_approvals, ["GET"]), ("/approvals/{aid}", get_approval, ["GET"]),
        ("/approvals/{aid}/decision", decide, ["POST"]), ("/approvals/decisions", decide_many, ["POST"]),
        ("/audit", list_audit, ["GET"]), ("/audit/{aid}", get_audit, ["GET"]),
        ("/sessions", list_sessions, ["GET"]), ("/sessions/{sid}", get_session, ["GET"]),
        ("/sessions/{sid}/entity", session_entity, ["GET"]),
        ("/sessions/{sid}/status", session_status, ["PATCH", "PUT", "POST"]),
        ("/sessions/{sid}/spend-cap", session_spend_cap, ["PUT", "PATCH"]),
        ("/emulator/llm/script", script_llm, ["POST"]), ("/emulator/payments/stats", payments_stats, ["GET"]),
        ("/emulator/reset-stats", reset_stats, ["POST"]),
        *(extra or []),
    ]
    routes = [Route(p + path, admin(handler), methods=methods) for path, handler, methods in table]
    routes.append(Route(p + "/{rest:path}", admin(api_not_found),
                        methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))
    return routes
