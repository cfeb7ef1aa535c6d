"""Token settings beyond the core ones: project, log level names, upstream list, circuit breaker.

Endpoints: ``GET``/``PATCH /api/v1/tokens/{id}/circuit-breaker`` and ``GET /api/v1/health/upstreams``
(real gateway paths and shapes). The breakers themselves live in ``_routing``: upstream health is
each target's circuit (``state``, consecutive ``failure_count``, ``cooldown_remaining_secs`` while
open) for every active token's pool.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ailink._secrets import mask

from .._app import Emulator, GatewayError
from .._routing import CIRCUIT_BREAKER_DEFAULTS
from ._base import body_project, project_param

_CB_POSITIVE_INTS = ("failure_threshold", "recovery_cooldown_secs", "half_open_max_requests", "min_sample_size")
LOG_LEVELS = {"metadata": 0, "redacted": 1, "full": 2}


def circuit_breaker_config(value: Any) -> dict[str, Any]:
    """Validate a circuit-breaker object; missing fields take the real gateway's defaults."""
    if not isinstance(value, dict):
        raise GatewayError(422, "invalid_config", "circuit_breaker must be an object")
    unknown = set(value) - set(CIRCUIT_BREAKER_DEFAULTS) - {"failure_rate_threshold", "min_sample_size"}
    if unknown:
        raise GatewayError(422, "invalid_config", f"unknown circuit breaker fields: {', '.join(sorted(unknown))}")
    if "enabled" in value and not isinstance(value["enabled"], bool):
        raise GatewayError(422, "invalid_config", "enabled must be a boolean")
    for name in _CB_POSITIVE_INTS:
        if name in value:
            number = value[name]
            if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 1_000_000:
                raise GatewayError(422, "invalid_config", f"{name} must be an integer >= 1")
    if "failure_rate_threshold" in value:
        rate = value["failure_rate_threshold"]
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate <= 1:
            raise GatewayError(422, "invalid_config", "failure_rate_threshold must be a number in (0, 1]")
    return {**CIRCUIT_BREAKER_DEFAULTS, **value}


def _upstreams(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise GatewayError(422, "validation_error", "upstreams must be a list of {url, weight, priority}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise GatewayError(422, "validation_error", f"upstreams[{i}] must be an object")
        url = item.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise GatewayError(422, "validation_error", f"upstreams[{i}].url must be an http(s) URL")
        entry: dict[str, Any] = {"url": url, "weight": item.get("weight", 100), "priority": item.get("priority", 1),
                                 "credential_id": item.get("credential_id")}
        for key in ("weight", "priority"):
            number = entry[key]
            if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 1_000_000:
                raise GatewayError(422, "validation_error", f"upstreams[{i}].{key} must be a positive integer")
        if entry["credential_id"] is not None and not isinstance(entry["credential_id"], str):
            raise GatewayError(422, "validation_error", f"upstreams[{i}].credential_id must be a string")
        out.append(entry)
    urls = [u["url"] for u in out]
    if len(set(urls)) != len(urls):
        raise GatewayError(422, "validation_error", "upstreams must not repeat a URL")
    return out


def log_level(doc: dict[str, Any]) -> int:
    """``log_level_name`` (``metadata|redacted|full``) wins over ``log_level`` (0-2 or one of those names)."""
    name = doc.get("log_level_name")
    value = doc.get("log_level", 1) if name is None else name
    if isinstance(value, str) and value in LOG_LEVELS:
        return LOG_LEVELS[value]
    if value in (0, 1, 2) and not isinstance(value, bool):
        return int(value)
    raise GatewayError(422, "validation_error", "log_level must be 0, 1, 2 or one of metadata, redacted, full")


def token_settings(emu: Emulator, doc: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Column values for the optional token fields of a create (or patch) body, validated."""
    settings: dict[str, Any] = {}
    if creating:
        settings["project_id"] = body_project(emu, doc)
    if "circuit_breaker" in doc and doc["circuit_breaker"] is not None:
        settings["circuit_breaker"] = circuit_breaker_config(doc["circuit_breaker"])
    if "upstreams" in doc and doc["upstreams"] is not None:
        settings["upstreams"] = _upstreams(doc["upstreams"])
    if "fallback_url" in doc and doc["fallback_url"] is not None:  # accepted, unused (like the real gateway)
        fallback = doc["fallback_url"]
        if not isinstance(fallback, str) or urlsplit(fallback).scheme not in ("http", "https"):
            raise GatewayError(422, "validation_error", "fallback_url must be an http(s) URL")
    return settings


def _token(emu: Emulator, ident: str) -> dict[str, Any]:
    row = emu.store.token_by_id(ident)
    if row is None:
        raise GatewayError(404, "not_found", "Token not found")
    return row


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    async def get_circuit_breaker(request: Request) -> Response:
        row = _token(emu, request.path_params["tid"])
        return JSONResponse(row.get("circuit_breaker") or dict(CIRCUIT_BREAKER_DEFAULTS))

    async def patch_circuit_breaker(request: Request) -> Response:
        row = _token(emu, request.path_params["tid"])
        config = circuit_breaker_config(await emu.json_body(request))
        emu.store.update_token(row["ref"], {"circuit_breaker": config})
        return JSONResponse(config)

    async def upstream_health(request: Request) -> Response:
        project_id = project_param(emu, request)
        out: list[dict[str, Any]] = []
        for token in emu.store.list_tokens(1000, 0, project_id):
            if token["is_active"]:
                out += [{"token_id": mask(token["token"]), "token_ref": token["ref"], **row}
                        for row in emu.routing.health(token)]
        return JSONResponse(out)

    return [
        ("/tokens/{tid}/circuit-breaker", get_circuit_breaker, ["GET"]),
        ("/tokens/{tid}/circuit-breaker", patch_circuit_breaker, ["PATCH", "PUT"]),
        ("/health/upstreams", upstream_health, ["GET"]),
    ]
