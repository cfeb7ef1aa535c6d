"""Analytics and billing, computed from the audit log (real gateway paths and shapes).

* ``GET /api/v1/analytics/tokens[?project_id=]`` → ``[{token_id, token_ref, name, total_requests, errors,
  avg_latency_ms, last_active}]`` for the tokens with traffic (``errors``: status >= 400).
* ``GET /analytics/tokens/{id}/volume`` → ``[{hour, count}]``; ``/status`` → ``[{status, count}]``;
  ``/latency`` → ``{p50, p90, p99}`` (milliseconds, nearest rank): all over the last 24 hours.
* ``GET /analytics/spend/breakdown?group_by=model|token|tag:<key>&hours=`` → ``{group_by,
  dimension_label, hours, total_cost_usd, total_requests, breakdown: [{dimension, request_count,
  total_cost_usd}]}`` (``tag:<key>`` groups by that key of ``X-Properties``).
* ``GET /api/v1/billing/usage[?period=YYYY-MM or YYYY-MM-DD]`` → ``{org_id, period, total_requests,
  total_tokens_used, total_spend_usd, updated_at}`` for that calendar month (UTC; default: this month).

Costs and token counts are the ones the proxy metered into the audit rows (``_metering``).
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ailink._secrets import mask

from .._app import Emulator, GatewayError, iso
from .._management import _int_param
from ._base import ORG_ID, ManagementStore, project_param

DAY = 24 * 3600.0


def percentile(sorted_values: list[int], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def _month_bounds(period: str | None) -> tuple[str, float, float]:
    now = datetime.now(timezone.utc)
    if period is None:
        year, month = now.year, now.month
    else:
        try:
            parsed = datetime.strptime(period[:10], "%Y-%m-%d") if len(period) > 7 else \
                datetime.strptime(period, "%Y-%m")
        except ValueError:
            raise GatewayError(422, "validation_error", "period must be YYYY-MM or YYYY-MM-DD") from None
        year, month = parsed.year, parsed.month
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    return f"{year:04d}-{month:02d}", start.timestamp(), end.timestamp()


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    mgmt = ManagementStore(emu.store)

    def project_tokens(request: Request) -> dict[str, dict[str, Any]]:
        return {t["ref"]: t for t in emu.store.list_tokens(10_000, 0, project_param(emu, request))}

    def token(request: Request) -> dict[str, Any]:
        row = emu.store.token_by_id(request.path_params["tid"])
        if row is None:
            raise GatewayError(404, "not_found", "Token not found")
        return row

    def last_day(token_ref: str, columns: str) -> list[dict[str, Any]]:
        return mgmt.all(f"SELECT {columns} FROM audit WHERE token_ref = ? AND created_at >= ? ORDER BY seq",
                        (token_ref, time.time() - DAY))

    async def token_summary(request: Request) -> Response:
        tokens = project_tokens(request)
        rows = mgmt.all("SELECT token_ref, COUNT(*) AS total, SUM(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END) "
                        "AS errors, AVG(COALESCE(latency_ms, 0)) AS avg_latency, MAX(created_at) AS last_active "
                        "FROM audit WHERE token_ref IS NOT NULL GROUP BY token_ref ORDER BY total DESC")
        return JSONResponse([
            {"token_id": mask(tokens[r["token_ref"]]["token"]), "token_ref": r["token_ref"],
             "name": tokens[r["token_ref"]]["name"], "total_requests": r["total"], "errors": r["errors"] or 0,
             "avg_latency_ms": round(float(r["avg_latency"] or 0), 3), "last_active": iso(r["last_active"])}
            for r in rows if r["token_ref"] in tokens
        ])

    async def token_volume(request: Request) -> Response:
        counts: dict[int, int] = {}
        for row in last_day(token(request)["ref"], "created_at"):
            hour = int(row["created_at"] // 3600 * 3600)
            counts[hour] = counts.get(hour, 0) + 1
        return JSONResponse([{"hour": iso(h), "count": n} for h, n in sorted(counts.items())])

    async def token_status(request: Request) -> Response:
        counts: dict[int, int] = {}
        for row in last_day(token(request)["ref"], "status_code"):
            if row["status_code"] is not None:
                counts[row["status_code"]] = counts.get(row["status_code"], 0) + 1
        return JSONResponse([{"status": s, "count": n} for s, n in sorted(counts.items())])

    async def token_latency(request: Request) -> Response:
        values = sorted(int(r["latency_ms"]) for r in last_day(token(request)["ref"], "latency_ms")
                        if r["latency_ms"] is not None)
        return JSONResponse({"p50": percentile(values, 50), "p90": percentile(values, 90),
                             "p99": percentile(values, 99)})

    async def spend_breakdown(request: Request) -> Response:
        tokens = project_tokens(request)
        hours = _int_param(request, "hours", 720, -10**9, 10**9)
        if not 1 <= hours <= 8760:
            raise GatewayError(400, "validation_error", "hours must be between 1 and 8760")
        group_by = request.query_params.get("group_by", "model")
        tag = group_by[len("tag:"):] if group_by.startswith("tag:") else None
        if group_by not in ("model", "token") and not (tag and len(tag) <= 64):
            raise GatewayError(400, "validation_error", "group_by must be model, token or tag:<key>")
        counts: dict[str, int] = {}
        costs: dict[str, float] = {}
        for row in mgmt.all("SELECT token_ref, model, properties, estimated_cost_usd FROM audit WHERE created_at >= ?",
                            (time.time() - hours * 3600,)):
            if row["token_ref"] not in tokens:
                continue
            if group_by == "model":
                dimension = row["model"] or "unknown"
            elif group_by == "token":
                dimension = tokens[row["token_ref"]]["name"]
            else:
                props = row["properties"]
                if isinstance(props, str):
                    try:
                        props = json.loads(props)
                    except ValueError:
                        props = None
                value = props.get(tag) if isinstance(props, dict) else None
                dimension = "untagged" if value is None else str(value)
            counts[dimension] = counts.get(dimension, 0) + 1
            costs[dimension] = costs.get(dimension, 0.0) + (row["estimated_cost_usd"] or 0.0)
        breakdown = [{"dimension": d, "request_count": n, "total_cost_usd": round(costs[d], 10)}
                     for d, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return JSONResponse({"group_by": group_by, "dimension_label": tag or group_by, "hours": hours,
                             "total_cost_usd": round(sum(costs.values()), 10), "total_requests": sum(counts.values()),
                             "breakdown": breakdown})

    async def billing_usage(request: Request) -> Response:
        period, start, end = _month_bounds(request.query_params.get("period"))
        row = mgmt.one("SELECT COUNT(*) AS n, COALESCE(SUM(prompt_tokens), 0) + COALESCE(SUM(completion_tokens), 0) "
                       "AS tokens, COALESCE(SUM(estimated_cost_usd), 0) AS spend FROM audit "
                       "WHERE created_at >= ? AND created_at < ?", (start, end)) or {"n": 0, "tokens": 0, "spend": 0}
        return JSONResponse({"org_id": ORG_ID, "period": period, "total_requests": row["n"],
                             "total_tokens_used": row["tokens"], "total_spend_usd": round(row["spend"], 10),
                             "updated_at": iso(time.time())})

    return [
        ("/analytics/tokens", token_summary, ["GET"]),
        ("/analytics/tokens/{tid}/volume", token_volume, ["GET"]),
        ("/analytics/tokens/{tid}/status", token_status, ["GET"]),
        ("/analytics/tokens/{tid}/latency", token_latency, ["GET"]),
        ("/analytics/spend/breakdown", spend_breakdown, ["GET"]),
        ("/billing/usage", billing_usage, ["GET"]),
    ]
