"""**[ext]** Quotas you can read: ``GET /api/v1/tokens/{id}/usage`` (default profile only; issue 15).

One entry per window: ``hour`` (the trailing 60 minutes), ``day`` and ``month`` (UTC, as the
``daily`` and ``monthly`` spend caps count them) and ``lifetime``. Each has, from the token's audit
rows (the same rows ``GET /api/v1/audit`` lists): ``requests``, ``prompt_tokens``,
``completion_tokens``, ``total_tokens``, ``spend_usd``; the window's spend cap as ``limit_usd``
(``null`` without one), ``remaining_usd``, ``used_fraction`` and ``capacity_state``:

* ``abundant``: no cap, or more than half of it left;
* ``constrained``: 20-50 % left; ``critical``: less than 20 % left; ``exhausted``: nothing left.

``rate_usd_per_hour`` is the spend of the trailing hour; at that rate the cap runs out at
``predicted_exhaustion_at`` (``null`` when nothing is being spent or there is no cap; the time
itself when already exhausted), and ``exhausts_before_reset`` says whether that comes before the
window's ``resets_at``. ``as_of`` is the time the report was computed (all times ISO-8601 UTC).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._budgets import period_end, period_start

if TYPE_CHECKING:
    from ._app import Emulator

#: window → the spend-cap period that limits it.
WINDOWS = {"hour": None, "day": "daily", "month": "monthly", "lifetime": "lifetime"}
CONSTRAINED_BELOW = 0.5
CRITICAL_BELOW = 0.2


def capacity_state(limit: float | None, spent: float) -> str:
    """``abundant`` / ``constrained`` / ``critical`` / ``exhausted`` by the share of the cap left."""
    if limit is None:
        return "abundant"
    left = (limit - spent) / limit
    if left <= 0:
        return "exhausted"
    if left < CRITICAL_BELOW:
        return "critical"
    if left <= CONSTRAINED_BELOW:
        return "constrained"
    return "abundant"


def _sums(emu: Emulator, token_ref: str, since: float) -> dict[str, Any]:
    row = emu.store._one(
        "SELECT COUNT(*) AS requests, COALESCE(SUM(prompt_tokens), 0) AS prompt, "
        "COALESCE(SUM(completion_tokens), 0) AS completion, COALESCE(SUM(estimated_cost_usd), 0) AS spend "
        "FROM audit WHERE token_ref = ? AND created_at >= ?", (token_ref, since)) or {}
    prompt, completion = int(row.get("prompt") or 0), int(row.get("completion") or 0)
    return {"requests": int(row.get("requests") or 0), "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "spend_usd": round(float(row.get("spend") or 0.0), 10)}


def usage_report(emu: Emulator, token: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The token's usage per window, with its caps, capacity states and predicted exhaustion."""
    from ._app import iso

    now = time.time() if now is None else now
    caps = emu.budgets.token_caps(token["ref"])
    rate = _sums(emu, token["ref"], now - 3600)["spend_usd"]  # USD in the trailing hour = USD per hour
    windows = []
    for window, period in WINDOWS.items():
        since = now - 3600 if period is None else period_start(period, now)
        resets = now + 3600 if period is None else period_end(period, now)
        sums = _sums(emu, token["ref"], since)
        cap = caps.get(period) if period is not None else None
        limit = float(cap["limit_usd"]) if cap is not None else None
        spent = sums["spend_usd"]
        remaining = None if limit is None else round(max(0.0, limit - spent), 10)
        predicted: float | None = None
        if limit is not None and remaining is not None:
            if remaining <= 0:
                predicted = now
            elif rate > 0:
                predicted = now + remaining / rate * 3600
        windows.append({
            "window": window, "period": period, "since": iso(since if since > 0 else token["created_at"]),
            "resets_at": iso(resets), **sums, "limit_usd": limit, "mode": cap["mode"] if cap is not None else None,
            "remaining_usd": remaining, "used_fraction": None if limit is None else round(min(1.0, spent / limit), 6),
            "capacity_state": capacity_state(limit, spent), "rate_usd_per_hour": rate,
            "predicted_exhaustion_at": iso(predicted),
            "exhausts_before_reset": None if predicted is None else (resets is None or predicted <= resets),
        })
    worst = max((w["capacity_state"] for w in windows),
                key=("abundant", "constrained", "critical", "exhausted").index)
    return {"token_ref": token["ref"], "name": token["name"], "as_of": iso(now), "capacity_state": worst,
            "windows": windows}


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    """``GET /tokens/{tid}/usage`` (behind the management auth); 404 in the ``real`` profile."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from ._app import GatewayError

    async def usage(request: Request) -> Response:
        token = emu.store.token_by_id(request.path_params["tid"])
        if token is None or not emu.profile.routing_extensions:
            raise GatewayError(404, "not_found", "Token not found" if token is None else "No such management endpoint")
        return JSONResponse(usage_report(emu, token))

    return [("/tokens/{tid}/usage", usage, ["GET"])]


__all__ = ["WINDOWS", "capacity_state", "routes", "usage_report"]
