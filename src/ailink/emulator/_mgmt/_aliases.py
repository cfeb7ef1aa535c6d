"""Model aliases: a short name (``"fast"``) stands for a real model (``"gpt-4o-mini"``) per project.

``POST /api/v1/model-aliases`` ``{alias, model, project_id?}`` → 201 ``{id, alias, model, project_id,
created_at, updated_at}``; ``POST /model-aliases/bulk`` ``{aliases: {alias: model, ...}, project_id?}``
→ 201 list (all or nothing); ``GET /model-aliases[?project_id=]``; ``GET``/``PUT``/``DELETE
/model-aliases/{alias}[?project_id=]`` (``PUT`` ``{model}``; ``DELETE`` → 204). An alias may not name
itself, point at another alias or be pointed at (no chains): 422. A second alias with the same name in
a project: 409. The proxy replaces an aliased top-level ``model`` of a JSON request body before
policies run (:func:`resolve_model`), so policies, approvals, the audit log and the upstream all see
the real model.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._app import Emulator, GatewayError, iso
from .._store import Store
from ._base import ManagementStore, body_project, new_uuid, project_param


def alias_page(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "alias": row["alias"], "model": row["model"], "project_id": row["project_id"],
            "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"])}


def resolve_model(store: Store, project_id: str, model: str) -> str | None:
    """The model an alias stands for in ``project_id`` (``None`` when ``model`` is no alias)."""
    row = ManagementStore(store).one("SELECT model FROM model_aliases WHERE project_id = ? AND alias = ?",
                                     (project_id, model))
    return str(row["model"]) if row else None


def has_aliases(store: Store, project_id: str) -> bool:
    return ManagementStore(store).one("SELECT 1 AS x FROM model_aliases WHERE project_id = ? LIMIT 1",
                                      (project_id,)) is not None


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or value != value.strip():
        raise GatewayError(422, "validation_error", f"{field} must be a non-empty string of at most 255 "
                                                    "characters without surrounding spaces")
    return value


def check_aliases(existing: dict[str, str], new: dict[str, str], *, replacing: bool = False) -> None:
    """Refuse duplicates (409) and chains (422) among ``existing`` (alias → model) plus ``new``."""
    for alias, model in new.items():
        if alias in existing and not replacing:
            raise GatewayError(409, "conflict", f"model alias '{alias}' already exists")
        if alias == model:
            raise GatewayError(422, "validation_error", f"model alias '{alias}' cannot point at itself")
    combined = {**existing, **new}
    for alias, model in new.items():
        if model in combined:
            raise GatewayError(422, "validation_error",
                               f"model alias '{alias}' points at '{model}', which is itself an alias (no chains)")
        pointing = sorted(a for a, m in combined.items() if m == alias)
        if pointing:
            raise GatewayError(422, "validation_error",
                               f"'{alias}' is the target of alias '{pointing[0]}' and cannot become an alias")


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    mgmt = ManagementStore(emu.store)

    def existing(project_id: str) -> dict[str, str]:
        rows = mgmt.all("SELECT alias, model FROM model_aliases WHERE project_id = ?", (project_id,))
        return {r["alias"]: r["model"] for r in rows}

    def one(project_id: str, alias: str) -> dict[str, Any]:
        row = mgmt.one("SELECT * FROM model_aliases WHERE project_id = ? AND alias = ?", (project_id, alias))
        if row is None:
            raise GatewayError(404, "not_found", f"model alias '{alias}' not found")
        return row

    def insert(project_id: str, aliases: dict[str, str]) -> list[dict[str, Any]]:
        now = time.time()
        return [mgmt.insert("model_aliases", {"id": new_uuid(), "project_id": project_id, "alias": alias,
                                              "model": model, "created_at": now, "updated_at": now})
                for alias, model in aliases.items()]

    async def create(request: Request) -> Response:
        doc = await emu.json_body(request)
        project_id = body_project(emu, doc)
        new = {_name(doc.get("alias"), "alias"): _name(doc.get("model"), "model")}
        check_aliases(existing(project_id), new)
        (row,) = insert(project_id, new)
        return JSONResponse(alias_page(row), status_code=201)

    async def bulk_create(request: Request) -> Response:
        doc = await emu.json_body(request)
        project_id = body_project(emu, doc)
        raw = doc.get("aliases")
        if isinstance(raw, list):
            pairs = [(item.get("alias"), item.get("model")) if isinstance(item, dict) else (None, None)
                     for item in raw]
        elif isinstance(raw, dict):
            pairs = list(raw.items())
        else:
            raise GatewayError(422, "validation_error", "aliases must be an object {alias: model} or a list")
        if not pairs:
            raise GatewayError(422, "validation_error", "aliases must not be empty")
        new: dict[str, str] = {}
        for alias, model in pairs:
            name = _name(alias, "alias")
            if name in new:
                raise GatewayError(422, "validation_error", f"alias '{name}' appears twice")
            new[name] = _name(model, "model")
        check_aliases(existing(project_id), new)
        return JSONResponse([alias_page(r) for r in insert(project_id, new)], status_code=201)

    async def list_aliases(request: Request) -> Response:
        rows = mgmt.all("SELECT * FROM model_aliases WHERE project_id = ? ORDER BY created_at, alias",
                        (project_param(emu, request),))
        return JSONResponse([alias_page(r) for r in rows])

    async def get_alias(request: Request) -> Response:
        return JSONResponse(alias_page(one(project_param(emu, request), request.path_params["alias"])))

    async def update_alias(request: Request) -> Response:
        project_id = project_param(emu, request)
        row = one(project_id, request.path_params["alias"])
        model = _name((await emu.json_body(request)).get("model"), "model")
        others = {a: m for a, m in existing(project_id).items() if a != row["alias"]}
        check_aliases(others, {row["alias"]: model})
        mgmt.update("model_aliases", "id", row["id"], {"model": model, "updated_at": time.time()})
        return JSONResponse(alias_page(one(project_id, row["alias"])))

    async def delete_alias(request: Request) -> Response:
        row = one(project_param(emu, request), request.path_params["alias"])
        mgmt.execute("DELETE FROM model_aliases WHERE id = ?", (row["id"],))
        return Response(status_code=204)

    return [
        ("/model-aliases", list_aliases, ["GET"]), ("/model-aliases", create, ["POST"]),
        ("/model-aliases/bulk", bulk_create, ["POST"]),
        ("/model-aliases/{alias:path}", get_alias, ["GET"]),
        ("/model-aliases/{alias:path}", update_alias, ["PUT", "PATCH"]),
        ("/model-aliases/{alias:path}", delete_alias, ["DELETE"]),
    ]
