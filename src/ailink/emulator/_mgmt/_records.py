"""Experiments (stored and listed; no traffic is split) and webhook subscriptions (delivered by ``_webhooks``).

* ``POST /api/v1/experiments`` ``{name, variants: [{name, weight, model?, set_body_fields?}] (>= 2),
  scope?: project|org, condition?, project_id?}`` → 201 ``{id, name, status: "running", scope,
  variants, project_id, created_at}``; ``GET /experiments[?project_id=]``; ``GET /experiments/{id}``;
  ``PUT /experiments/{id}`` ``{variants}``; ``GET /experiments/{id}/results`` → ``{experiment, status,
  variants: [{variant, total_requests, avg_latency_ms, total_cost_usd, avg_tokens, error_count,
  error_rate}]}`` (all zero: no traffic is split); ``POST /experiments/{id}/stop`` → ``{id, status:
  "stopped"}`` (stopping a stopped experiment answers the same).
* ``POST /api/v1/webhooks`` ``{url, events?, secret? (or signing_secret), format?: json|slack,
  project_id?}`` → 201 ``{id, project_id, url, events, format, is_active, created_at, signing_secret}``
  (the secret is shown only here; generated when not given); events: ``approval.requested``,
  ``approval.decided``, ``approval.expired``, ``policy.denied`` (all when omitted), and the real
  gateway's names (``approval_requested``, ``policy_violation`` are aliases; the others are accepted
  and never sent); ``GET /webhooks``; ``GET``/``DELETE /webhooks/{id}`` (``DELETE`` → 204);
  ``POST /webhooks/{id}/test`` and the real gateway's ``POST /webhooks/test`` ``{url}`` deliver a
  ``webhook.test`` event once, now → ``{success, delivered, status_code, message, delivery_id}``;
  ``GET /webhooks/{id}/deliveries?limit&offset`` (also for the global targets ``global-N``/``slack-N``)
  and ``GET /webhooks/deliveries?webhook_id&event&status&limit&offset`` list the delivery log.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._app import Emulator, GatewayError, iso
from .._events import EVENTS
from .._management import _http_url, _int_param
from .._webhooks import EVENT_ALIASES, FORMATS, SILENT_EVENTS, Target
from ._base import ManagementStore, body_project, new_uuid, project_param

WEBHOOK_EVENTS = (*EVENTS, *EVENT_ALIASES, *SILENT_EVENTS)


def _variants(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) < 2:
        raise GatewayError(400, "validation_error", "variants must be a list of at least two variants")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise GatewayError(422, "validation_error", f"variants[{i}] needs a name")
        weight = item.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 1_000_000:
            raise GatewayError(422, "validation_error", f"variants[{i}].weight must be a non-negative integer")
        if not isinstance(item.get("set_body_fields") or {}, dict):
            raise GatewayError(422, "validation_error", f"variants[{i}].set_body_fields must be an object")
        fields = dict(item.get("set_body_fields") or {})
        if item.get("model") is not None:
            if not isinstance(item["model"], str):
                raise GatewayError(422, "validation_error", f"variants[{i}].model must be a string")
            fields["model"] = item["model"]
        out.append({"name": item["name"], "weight": weight, "set_body_fields": fields})
    if len({v["name"] for v in out}) != len(out):
        raise GatewayError(422, "validation_error", "variant names must be unique")
    if sum(v["weight"] for v in out) <= 0:
        raise GatewayError(422, "validation_error", "variant weights must not all be zero")
    return out


def experiment_page(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "status": row["status"], "scope": row["scope"],
            "variants": row["variants"], "condition": row["condition"], "project_id": row["project_id"],
            "created_at": iso(row["created_at"]), "stopped_at": iso(row["stopped_at"])}


def webhook_page(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "project_id": row["project_id"], "url": row["url"], "events": row["events"],
            "format": row.get("format") or "json", "is_active": bool(row["is_active"]),
            "created_at": iso(row["created_at"])}


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    mgmt = ManagementStore(emu.store)

    def experiment(exp_id: str) -> dict[str, Any]:
        row = mgmt.one("SELECT * FROM experiments WHERE id = ?", (exp_id,))
        if row is None:
            raise GatewayError(404, "not_found", "experiment not found")
        return row

    def webhook(hook_id: str) -> dict[str, Any]:
        row = mgmt.one("SELECT * FROM webhooks WHERE id = ? AND is_active = 1", (hook_id,))
        if row is None:
            raise GatewayError(404, "not_found", "webhook not found")
        return row

    def results(row: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"variant": v["name"], "total_requests": 0, "avg_latency_ms": 0.0, "total_cost_usd": 0.0,
                 "avg_tokens": 0.0, "error_count": 0, "error_rate": 0.0} for v in row["variants"]]

    async def create_experiment(request: Request) -> Response:
        doc = await emu.json_body(request)
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise GatewayError(422, "validation_error", "name must be a non-empty string")
        scope = doc.get("scope", "project")
        if scope not in ("project", "org"):
            raise GatewayError(422, "validation_error", "scope must be 'project' or 'org'")
        condition = doc.get("condition")
        if condition is not None and not isinstance(condition, dict):
            raise GatewayError(422, "validation_error", "condition must be an object")
        project_id = body_project(emu, doc)
        if mgmt.one("SELECT id FROM experiments WHERE project_id = ? AND name = ? AND status = 'running'",
                    (project_id, name)):
            raise GatewayError(409, "conflict", f"a running experiment named '{name}' already exists")
        row = mgmt.insert("experiments", {
            "id": new_uuid(), "project_id": project_id, "name": name, "scope": scope,
            "variants": _variants(doc.get("variants")), "condition": condition, "status": "running",
            "created_at": time.time(), "stopped_at": None,
        })
        return JSONResponse(experiment_page(row), status_code=201)

    async def list_experiments(request: Request) -> Response:
        rows = mgmt.all("SELECT * FROM experiments WHERE project_id = ? ORDER BY created_at",
                        (project_param(emu, request),))
        return JSONResponse([experiment_page(r) for r in rows])

    async def get_experiment(request: Request) -> Response:
        row = experiment(request.path_params["eid"])
        return JSONResponse({**experiment_page(row), "results": results(row)})

    async def update_experiment(request: Request) -> Response:
        row = experiment(request.path_params["eid"])
        if row["status"] != "running":
            raise GatewayError(409, "conflict", "the experiment is stopped")
        variants = _variants((await emu.json_body(request)).get("variants"))
        mgmt.update("experiments", "id", row["id"], {"variants": variants})
        return JSONResponse(experiment_page(experiment(row["id"])))

    async def experiment_results(request: Request) -> Response:
        row = experiment(request.path_params["eid"])
        return JSONResponse({"experiment": row["name"], "status": row["status"], "variants": results(row)})

    async def stop_experiment(request: Request) -> Response:
        row = experiment(request.path_params["eid"])
        if row["status"] == "running":
            mgmt.update("experiments", "id", row["id"], {"status": "stopped", "stopped_at": time.time()})
        return JSONResponse({"id": row["id"], "status": "stopped"})

    async def create_webhook(request: Request) -> Response:
        doc = await emu.json_body(request)
        url = _http_url(doc.get("url"), "url")
        events = doc.get("events")
        if events is None:
            events = list(EVENTS)
        if not isinstance(events, list) or not events or not all(e in WEBHOOK_EVENTS for e in events):
            raise GatewayError(422, "validation_error",
                               f"events must be a non-empty list of: {', '.join(WEBHOOK_EVENTS)}")
        secret = doc.get("secret", doc.get("signing_secret"))
        if secret is not None and (not isinstance(secret, str) or not 8 <= len(secret) <= 512):
            raise GatewayError(422, "validation_error", "secret must be a string of 8 to 512 characters")
        fmt = doc.get("format", "json")
        if fmt not in FORMATS:
            raise GatewayError(422, "validation_error", f"format must be one of {', '.join(FORMATS)}")
        row = mgmt.insert("webhooks", {
            "id": new_uuid(), "project_id": body_project(emu, doc), "url": url, "events": list(dict.fromkeys(events)),
            "secret": secret or "whsec_" + secrets.token_hex(24), "is_active": 1, "created_at": time.time(),
            "format": fmt,
        })
        return JSONResponse({**webhook_page(row), "signing_secret": row["secret"]}, status_code=201)

    async def list_webhooks(request: Request) -> Response:
        rows = mgmt.all("SELECT * FROM webhooks WHERE project_id = ? AND is_active = 1 ORDER BY created_at",
                        (project_param(emu, request),))
        return JSONResponse([webhook_page(r) for r in rows])

    async def get_webhook(request: Request) -> Response:
        return JSONResponse(webhook_page(webhook(request.path_params["wid"])))

    async def delete_webhook(request: Request) -> Response:
        row = webhook(request.path_params["wid"])
        mgmt.update("webhooks", "id", row["id"], {"is_active": 0})
        return Response(status_code=204)

    dispatcher = emu.events.webhooks

    async def test_webhook(request: Request) -> Response:
        row = webhook(request.path_params["wid"])
        target = Target(row["id"], row["url"], secret=row["secret"], format=row.get("format") or "json")
        return JSONResponse(await dispatcher.test(target))

    async def test_url(request: Request) -> Response:
        url = _http_url((await emu.json_body(request)).get("url"), "url")
        return JSONResponse(await dispatcher.test(Target("test", url)))

    def page(request: Request) -> dict[str, Any]:
        return {"limit": _int_param(request, "limit", 50, 1, 500), "offset": _int_param(request, "offset", 0, 0, 10**9)}

    async def deliveries(request: Request) -> Response:
        hook_id = request.path_params["wid"]
        if dispatcher.target(hook_id) is None:  # a global target, else a registered webhook
            hook_id = webhook(hook_id)["id"]
        return JSONResponse(dispatcher.deliveries(webhook_id=hook_id, **page(request)))

    async def all_deliveries(request: Request) -> Response:
        q = request.query_params
        return JSONResponse(dispatcher.deliveries(webhook_id=q.get("webhook_id"), event=q.get("event"),
                                                  status=q.get("status"), **page(request)))

    return [
        ("/experiments", list_experiments, ["GET"]), ("/experiments", create_experiment, ["POST"]),
        ("/experiments/{eid}", get_experiment, ["GET"]), ("/experiments/{eid}", update_experiment, ["PUT"]),
        ("/experiments/{eid}/results", experiment_results, ["GET"]),
        ("/experiments/{eid}/stop", stop_experiment, ["POST"]),
        ("/webhooks", list_webhooks, ["GET"]), ("/webhooks", create_webhook, ["POST"]),
        ("/webhooks/test", test_url, ["POST"]), ("/webhooks/deliveries", all_deliveries, ["GET"]),
        ("/webhooks/{wid}", get_webhook, ["GET"]), ("/webhooks/{wid}", delete_webhook, ["DELETE"]),
        ("/webhooks/{wid}/test", test_webhook, ["POST"]), ("/webhooks/{wid}/deliveries", deliveries, ["GET"]),
    ]
