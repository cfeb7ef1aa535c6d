"""Config-as-code: export and import policies, tokens, services and model aliases (YAML or JSON).

Real gateway paths: ``GET /api/v1/config/export[?format=yaml|json&project_id=]`` (YAML by default,
``Content-Type: application/yaml``), ``GET /config/export/policies``, ``GET /config/export/tokens``,
``POST /config/import[?project_id=]`` (body YAML or JSON, told apart by ``Content-Type``; without one
YAML, which also reads JSON) → ``{policies_created, policies_updated, tokens_created, tokens_updated,
services_created, services_updated, model_aliases_created, model_aliases_updated, created_tokens}``.

Document (``version: "1"``, names are the keys an import matches on)::

    version: "1"
    policies: [{name, mode, phase, rules, retry?}]
    tokens: [{name, upstream_url, policies: [policy names], log_level: metadata|redacted|full,
              circuit_breaker?, upstreams?: [{url, weight, priority}],
              guardrails?: {presets, topic_allowlist?, topic_denylist?}}]
    services: [{name, base_url, description, service_type}]      # [ext]
    model_aliases: [{alias, model}]                               # [ext]

No secrets leave: tokens are exported without their secret and credentials not at all. An import
validates the whole document first (422 naming the offending entry; nothing is written) and then
applies it in one transaction. Tokens it creates get new secrets, returned once in
``created_tokens: [{name, token_id, token_ref}]`` [ext] (the real gateway creates unusable stubs).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._app import Emulator, GatewayError
from .._policy import PolicyError, validate_policy
from .._store import DEFAULT_PROJECT
from ._aliases import check_aliases
from ._base import ManagementStore, new_uuid, project_param
from ._guardrails import PRESETS, save_guardrails, stored_guardrails, topic_list, usable_presets
from ._tokens import LOG_LEVELS, _upstreams, circuit_breaker_config

VERSION = "1"
SECTIONS = ("policies", "tokens", "services", "model_aliases")
MAX_NODES = 200_000
_LEVEL_NAMES = {v: k for k, v in LOG_LEVELS.items()}


# ---------------------------------------------------------------------- export


def _token_entry(emu: Emulator, token: dict[str, Any], policy_names: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": token["name"], "upstream_url": token["upstream_url"],
                             "policies": [policy_names[p] for p in token["policy_ids"] or [] if p in policy_names],
                             "log_level": _LEVEL_NAMES.get(token["log_level"], "redacted")}
    if token.get("circuit_breaker"):
        entry["circuit_breaker"] = token["circuit_breaker"]
    if token.get("upstreams"):
        entry["upstreams"] = [{"url": u["url"], "weight": u["weight"], "priority": u["priority"]}
                              for u in token["upstreams"]]
    guardrails = stored_guardrails(emu.store, token["ref"])
    if guardrails is not None:
        entry["guardrails"] = {"presets": guardrails["presets"],
                               **{k: guardrails[k] for k in ("topic_allowlist", "topic_denylist") if guardrails[k]}}
    return entry


def build_document(emu: Emulator, project_id: str, sections: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    """The project's configuration, oldest entries first (so an import recreates them in the same order)."""
    store = emu.store
    policies = list(reversed(store.list_policies(10_000, 0, project_id)))
    policy_names = {p["id"]: p["name"] for p in policies}
    doc: dict[str, Any] = {"version": VERSION, "policies": [], "tokens": []}
    if "policies" in sections:
        doc["policies"] = [{"name": p["name"], "mode": p["mode"], "phase": p["phase"], "rules": p["rules"],
                            **({"retry": p["retry"]} if p["retry"] is not None else {})} for p in policies]
    if "tokens" in sections:
        doc["tokens"] = [_token_entry(emu, t, policy_names)
                         for t in reversed(store.list_tokens(10_000, 0, project_id)) if t["is_active"]]
    if "services" in sections:
        doc["services"] = [{"name": s["name"], "base_url": s["base_url"], "description": s["description"] or "",
                            "service_type": s["service_type"]} for s in reversed(store.list_services(project_id))]
    if "model_aliases" in sections:
        doc["model_aliases"] = [{"alias": r["alias"], "model": r["model"]} for r in ManagementStore(store).all(
            "SELECT alias, model FROM model_aliases WHERE project_id = ? ORDER BY created_at, alias", (project_id,))]
    return doc


def render(doc: dict[str, Any], fmt: str) -> Response:
    if fmt == "json":
        return JSONResponse(doc, headers={"content-disposition": 'attachment; filename="ailink_config.json"'})
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return Response(text, media_type="application/yaml; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="ailink_config.yaml"'})


# ---------------------------------------------------------------------- import


def _invalid(message: str) -> GatewayError:
    return GatewayError(422, "validation_error", f"Invalid config: {message}")


def parse_document(raw: bytes, content_type: str) -> dict[str, Any]:
    """The config document in a request body; 422 for anything that is not a JSON-shaped mapping."""
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text) if "json" in content_type.lower() else yaml.safe_load(text)
    except (ValueError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        kind = "JSON" if "json" in content_type.lower() else "YAML"
        raise _invalid(f"not valid {kind} ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise _invalid("the document must be a mapping with 'version' and sections")
    # Iterative walk: JSON types only, bounded size (YAML anchors can make a small text a huge tree).
    stack: list[Any] = [doc]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise _invalid(f"the document has more than {MAX_NODES} values")
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise _invalid("mapping keys must be strings")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif not (item is None or isinstance(item, (str, int, float, bool))):
            raise _invalid(f"unsupported value of type {type(item).__name__} (quote dates and times)")
    return doc


def _entries(doc: dict[str, Any], section: str) -> list[dict[str, Any]]:
    value = doc.get(section) or []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise _invalid(f"'{section}' must be a list of mappings")
    return value


def _unique_names(entries: list[dict[str, Any]], section: str, key: str = "name") -> None:
    names: set[str] = set()
    for i, entry in enumerate(entries):
        name = entry.get(key)
        if not isinstance(name, str) or not name.strip():
            raise _invalid(f"{section}[{i}].{key} must be a non-empty string")
        if name in names:
            raise _invalid(f"{section}: '{name}' appears twice")
        names.add(name)


def _http(value: Any, where: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise _invalid(f"{where} must be an http(s) URL")
    return value


def _reraise(where: str, exc: GatewayError) -> GatewayError:
    return _invalid(f"{where}: {exc.message}")


def validate_document(emu: Emulator, project_id: str, doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every entry checked and normalised; raises 422 before anything is written."""
    version = doc.get("version")
    if str(version) != VERSION:
        raise _invalid(f"version must be \"{VERSION}\" (got {version!r})")
    unknown = set(doc) - {"version", *SECTIONS}
    if unknown:
        raise _invalid(f"unknown sections: {', '.join(sorted(unknown))}")
    policies, tokens = _entries(doc, "policies"), _entries(doc, "tokens")
    services, aliases = _entries(doc, "services"), _entries(doc, "model_aliases")
    _unique_names(policies, "policies")
    _unique_names(tokens, "tokens")
    _unique_names(services, "services")
    _unique_names(aliases, "model_aliases", "alias")

    out: dict[str, list[dict[str, Any]]] = {"policies": [], "tokens": [], "services": [], "model_aliases": []}
    for i, entry in enumerate(policies):
        policy = {"name": entry["name"], "mode": entry.get("mode", "enforce"), "phase": entry.get("phase", "pre"),
                  "rules": entry.get("rules"), "retry": entry.get("retry")}
        extra = set(entry) - set(policy)
        if extra:
            raise _invalid(f"policies[{i}] ('{entry['name']}'): unknown fields {sorted(extra)}")
        try:
            validate_policy({k: v for k, v in policy.items() if v is not None})
        except PolicyError as exc:
            raise _invalid(f"policies[{i}] ('{entry['name']}'): {exc}") from None
        out["policies"].append(policy)

    known_policies = {p["name"] for p in emu.store.list_policies(10_000, 0, project_id)} | \
        {p["name"] for p in out["policies"]}
    for i, entry in enumerate(tokens):
        where = f"tokens[{i}] ('{entry['name']}')"
        extra = set(entry) - {"name", "upstream_url", "policies", "log_level", "circuit_breaker", "upstreams",
                              "guardrails"}
        if extra:
            raise _invalid(f"{where}: unknown fields {sorted(extra)}")
        names = entry.get("policies") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _invalid(f"{where}.policies must be a list of policy names")
        missing = [n for n in names if n not in known_policies]
        if missing:
            raise _invalid(f"{where}.policies: unknown policy {missing[0]!r}")
        level = entry.get("log_level", "redacted")
        if level not in LOG_LEVELS and level not in (0, 1, 2):
            raise _invalid(f"{where}.log_level must be one of {', '.join(LOG_LEVELS)}")
        token = {"name": entry["name"], "upstream_url": _http(entry.get("upstream_url"), f"{where}.upstream_url"),
                 "policies": names, "log_level": LOG_LEVELS.get(level, level)}
        try:
            if entry.get("circuit_breaker") is not None:
                token["circuit_breaker"] = circuit_breaker_config(entry["circuit_breaker"])
            if entry.get("upstreams") is not None:
                token["upstreams"] = _upstreams(entry["upstreams"])
        except GatewayError as exc:
            raise _reraise(where, exc) from None
        guardrails = entry.get("guardrails")
        if guardrails is not None:
            presets = guardrails.get("presets") if isinstance(guardrails, dict) else None
            if not isinstance(presets, list) or not all(isinstance(p, str) for p in presets):
                raise _invalid(f"{where}.guardrails must be a mapping with a 'presets' list of names")
            try:
                allow, deny = topic_list(guardrails, "topic_allowlist"), topic_list(guardrails, "topic_denylist")
            except GatewayError as exc:
                raise _reraise(f"{where}.guardrails", exc) from None
            applied, skipped = usable_presets(guardrails["presets"], allow, deny)
            if skipped:
                raise _invalid(f"{where}.guardrails: unusable presets {skipped} (known: {', '.join(PRESETS)})")
            token["guardrails"] = {"presets": applied, "topic_allowlist": allow, "topic_denylist": deny}
        out["tokens"].append(token)

    for i, entry in enumerate(services):
        where = f"services[{i}] ('{entry['name']}')"
        if "/" in entry["name"]:
            raise _invalid(f"{where}.name must not contain '/'")
        for key in ("description", "service_type"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise _invalid(f"{where}.{key} must be a string")
        existing = emu.store.get_service(entry["name"])
        if existing is not None and (existing.get("project_id") or DEFAULT_PROJECT) != project_id:
            raise _invalid(f"{where}: a service with this name exists in another project")
        out["services"].append({"name": entry["name"], "base_url": _http(entry.get("base_url"), f"{where}.base_url"),
                                "description": entry.get("description") or "",
                                "service_type": entry.get("service_type") or "generic"})

    mgmt = ManagementStore(emu.store)
    current = {r["alias"]: r["model"] for r in mgmt.all(
        "SELECT alias, model FROM model_aliases WHERE project_id = ?", (project_id,))}
    new: dict[str, str] = {}
    for i, entry in enumerate(aliases):
        model = entry.get("model")
        if not isinstance(model, str) or not model.strip():
            raise _invalid(f"model_aliases[{i}].model must be a non-empty string")
        new[entry["alias"]] = model
    try:
        check_aliases({a: m for a, m in current.items() if a not in new}, new)
    except GatewayError as exc:
        raise _reraise("model_aliases", exc) from None
    out["model_aliases"] = [{"alias": a, "model": m} for a, m in new.items()]
    return out


def apply_document(emu: Emulator, project_id: str, plan: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    store = emu.store
    mgmt = ManagementStore(store)
    result: dict[str, Any] = {f"{s}_{k}": 0 for s in SECTIONS for k in ("created", "updated")}
    result["created_tokens"] = []
    policy_ids = {p["name"]: p["id"] for p in reversed(store.list_policies(10_000, 0, project_id))}
    for policy in plan["policies"]:
        if policy["name"] in policy_ids:
            store.update_policy(policy_ids[policy["name"]], {k: policy[k] for k in ("mode", "phase", "rules", "retry")})
            result["policies_updated"] += 1
        else:
            policy_ids[policy["name"]] = store.create_policy({**policy, "project_id": project_id})["id"]
            result["policies_created"] += 1
    for service in plan["services"]:
        existing = store.get_service(service["name"])
        if existing is not None:
            store.update_service(existing["id"], {k: service[k] for k in ("base_url", "description", "service_type")})
            result["services_updated"] += 1
        else:
            store.create_service({**service, "credential_id": None, "project_id": project_id})
            result["services_created"] += 1
    for alias in plan["model_aliases"]:
        now = time.time()
        if mgmt.execute("UPDATE model_aliases SET model = ?, updated_at = ? WHERE project_id = ? AND alias = ?",
                        (alias["model"], now, project_id, alias["alias"])):
            result["model_aliases_updated"] += 1
        else:
            mgmt.insert("model_aliases", {"id": new_uuid(), "project_id": project_id, **alias, "created_at": now,
                                          "updated_at": now})
            result["model_aliases_created"] += 1
    tokens = {t["name"]: t for t in reversed(store.list_tokens(10_000, 0, project_id)) if t["is_active"]}
    for token in plan["tokens"]:
        settings: dict[str, Any] = {k: token[k] for k in ("circuit_breaker", "upstreams") if k in token}
        ids = [policy_ids[name] for name in token["policies"]]
        row = tokens.get(token["name"])
        if row is not None:
            store.update_token(row["ref"], {"upstream_url": token["upstream_url"], "policy_ids": ids,
                                            "log_level": token["log_level"], **settings})
            result["tokens_updated"] += 1
        else:
            row = store.create_token(name=token["name"], upstream_url=token["upstream_url"], credential_id=None,
                                     policy_ids=ids, log_level=token["log_level"], project_id=project_id)
            if settings:
                store.update_token(row["ref"], settings)
            result["tokens_created"] += 1
            result["created_tokens"].append({"name": row["name"], "token_id": row["token"], "token_ref": row["ref"]})
        if "guardrails" in token:
            save_guardrails(store, row["ref"], source="sdk", **token["guardrails"])
    return result


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    def fmt(request: Request) -> str:
        value = request.query_params.get("format", "yaml").lower()
        if value not in ("yaml", "json"):
            raise GatewayError(422, "validation_error", "format must be 'yaml' or 'json'")
        return value

    async def export_all(request: Request) -> Response:
        return render(build_document(emu, project_param(emu, request)), fmt(request))

    async def export_policies(request: Request) -> Response:
        return render(build_document(emu, project_param(emu, request), ("policies",)), fmt(request))

    async def export_tokens(request: Request) -> Response:
        return render(build_document(emu, project_param(emu, request), ("tokens",)), fmt(request))

    async def import_config(request: Request) -> Response:
        project_id = project_param(emu, request)
        doc = parse_document(await emu.read_body(request), request.headers.get("content-type", ""))
        plan = validate_document(emu, project_id, doc)
        mgmt = ManagementStore(emu.store)
        mgmt.execute("BEGIN")
        try:
            result = apply_document(emu, project_id, plan)
        except BaseException:
            mgmt.execute("ROLLBACK")
            raise
        mgmt.execute("COMMIT")
        return JSONResponse(result)

    return [
        ("/config/export", export_all, ["GET"]), ("/config/export/policies", export_policies, ["GET"]),
        ("/config/export/tokens", export_tokens, ["GET"]), ("/config/import", import_config, ["POST"]),
    ]
