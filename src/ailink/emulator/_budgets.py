"""Spend caps: token budgets per period and session budgets, enforced from the per-call cost (issue 15).

* **Token caps** (the real gateway's paths): ``PUT /api/v1/tokens/{id}/spend`` ``{"period":
  "daily"|"monthly"|"lifetime", "limit_usd": > 0, "mode"?: "enforce"|"shadow"}`` → 204;
  ``GET /api/v1/tokens/{id}/spend`` → ``{daily_limit_usd, monthly_limit_usd, lifetime_limit_usd,
  current_daily_usd, current_monthly_usd, current_lifetime_usd}`` (**[ext]** also ``caps``: one entry
  per cap with its ``mode``, ``remaining_usd`` and ``resets_at``); ``DELETE
  /api/v1/tokens/{id}/spend/{period}`` (or ``/spend?period=``; without one, every cap) → 204. Periods
  are UTC days and months.
* **Session caps**: ``PUT /api/v1/sessions/{id}/spend-cap`` ``{"spend_cap_usd": number|string|null,
  "mode"?}`` → the session entity (404 for a session that has made no request yet).
* **Enforcement** (both profiles). Spend is the sum of ``estimated_cost_usd`` over the audit rows
  (the per-call cost ``_metering`` writes), so replays and refusals cost nothing. A request on a
  token or session whose hard cap is reached gets 402 ``spend_cap_reached`` before anything is sent
  (``details {period, limit_usd, current_usd}`` **[ext]**; ``forwarded: false``). Concurrent calls
  cannot overspend a hard cap by more than one call's cost: just before a request is forwarded it
  *reserves* its estimated cost (the prompt's size and ``max_tokens``, else the most completion
  tokens the model has answered with, at the model's price); it goes ahead when the spend plus
  every reservation in flight still fits under the cap, or when nothing else is in flight; otherwise
  it waits for a call in flight to settle (its audit row written) and checks again (after
  :data:`RESERVATION_WAIT` seconds it goes ahead).
* **Shadow caps** (``mode: "shadow"``) never refuse: the answer carries ``x-ailink-warning``
  instead. Answers of tokens with ``log_level >= 1`` carry ``x-ailink-budget-remaining-{daily,
  monthly,lifetime}`` (USD, 4 decimal places) for each cap the token has, after the call's cost
  (a stream's before it: its cost is known at its end). Both are ``x-trueflow-*`` in the trueflow
  generation.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import Call, Emulator

PERIODS = ("daily", "monthly", "lifetime")
MODES = ("enforce", "shadow")
MAX_LIMIT = 1_000_000_000.0
#: Completion tokens assumed for a model that has not answered yet and a request without ``max_tokens``.
DEFAULT_COMPLETION_ESTIMATE = 1024
#: How long a request waits for calls in flight to settle before it is refused.
RESERVATION_WAIT = 120.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS spend_caps (
    token_ref TEXT NOT NULL, period TEXT NOT NULL, limit_usd REAL NOT NULL, mode TEXT NOT NULL DEFAULT 'enforce',
    created_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (token_ref, period)
);
CREATE TABLE IF NOT EXISTS session_spend_caps (
    session_id TEXT PRIMARY KEY, limit_usd REAL NOT NULL, mode TEXT NOT NULL DEFAULT 'enforce', updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_token_time ON audit (token_ref, created_at);
"""


def period_start(period: str, now: float) -> float:
    """When the current ``daily``/``monthly`` period began (UTC); 0 for ``lifetime``."""
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day.timestamp()
    if period == "monthly":
        return day.replace(day=1).timestamp()
    return 0.0


def period_end(period: str, now: float) -> float | None:
    """When the current period ends (``None`` for ``lifetime``)."""
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day.timestamp() + 86400
    if period == "monthly":
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return day.replace(year=year, month=month, day=1).timestamp()
    return None


def usd(value: Any, name: str) -> float:
    """A positive USD amount (a number or a decimal string), else 422."""
    from ._app import GatewayError

    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or not 0 < value <= MAX_LIMIT):
        raise GatewayError(422, "validation_error", f"{name} must be a positive number of USD (at most {MAX_LIMIT:g})")
    return float(value)


def _mode(doc: dict[str, Any]) -> str:
    from ._app import GatewayError

    mode = doc.get("mode", "enforce")
    if mode not in MODES:
        raise GatewayError(422, "validation_error", "mode must be 'enforce' or 'shadow'")
    return str(mode)


@dataclass
class Cap:
    """One cap that applies to a request, with what has been spent against it."""

    scope: str  # "token:<ref>" or "session:<id>"
    period: str  # daily | monthly | lifetime | session
    limit: float
    mode: str
    spent: float

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit - self.spent)

    def refusal(self, subject: str) -> Any:
        from ._app import GatewayError
        from ._metering import decimal_text

        if self.period == "session":
            message = f"Session '{subject}' has exceeded its spend cap ({decimal_text(self.limit)} USD)"
        else:
            message = (f"Spend cap reached (USD): {self.period} spend cap of ${decimal_text(self.limit)} exceeded "
                       f"(current: ${decimal_text(round(self.spent, 10))}). Raise or remove the cap to continue.")
        return GatewayError(402, "spend_cap_reached", message, forwarded=False,
                            details={"period": self.period, "limit_usd": self.limit,
                                     "current_usd": round(self.spent, 10)})


class Budgets:
    """Caps, what was spent against them, and the reservations of calls in flight."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.store.ensure_schema(SCHEMA)
        self._reserved: dict[str, float] = {}
        self._in_flight: dict[str, int] = {}
        self._settled: asyncio.Event | None = None
        #: The most completion tokens each model has answered with (for estimates).
        self._completion: dict[str, int] = {}

    # -- caps and spend
    def token_caps(self, token_ref: str) -> dict[str, dict[str, Any]]:
        rows = self.store._all("SELECT period, limit_usd, mode, updated_at FROM spend_caps WHERE token_ref = ?",
                               (token_ref,))
        return {r["period"]: r for r in rows}

    def session_cap(self, session_id: str) -> dict[str, Any] | None:
        return self.store._one("SELECT limit_usd, mode FROM session_spend_caps WHERE session_id = ?", (session_id,))

    def token_spent(self, token_ref: str, period: str, now: float | None = None) -> float:
        row = self.store._one("SELECT COALESCE(SUM(estimated_cost_usd), 0) AS spent FROM audit "
                              "WHERE token_ref = ? AND created_at >= ?",
                              (token_ref, period_start(period, time.time() if now is None else now)))
        return float(row["spent"]) if row else 0.0

    def session_spent(self, session_id: str) -> float:
        row = self.store._one("SELECT COALESCE(SUM(estimated_cost_usd), 0) AS spent FROM audit WHERE session_id = ?",
                              (session_id,))
        return float(row["spent"]) if row else 0.0

    def caps_for(self, call: Call) -> list[Cap]:
        """Every cap on the call's token and session, with the spend so far."""
        now = time.time()
        ref = call.token["ref"]
        caps = [Cap(f"token:{ref}", period, float(row["limit_usd"]), row["mode"], self.token_spent(ref, period, now))
                for period, row in sorted(self.token_caps(ref).items(), key=lambda kv: PERIODS.index(kv[0]))]
        sid = call.ctx.session_id
        if sid:
            row = self.session_cap(sid)
            if row is not None:
                caps.append(Cap(f"session:{sid}", "session", float(row["limit_usd"]), row["mode"],
                                self.session_spent(sid)))
        return caps

    # -- the proxy's call-outs
    def check(self, call: Call) -> None:
        """Before anything else happens to a request: 402 when a hard cap is already reached."""
        for cap in self.caps_for(call):
            if cap.mode == "enforce" and cap.spent >= cap.limit:
                self._refuse(call, cap)

    def _refuse(self, call: Call, cap: Cap) -> None:
        exc = cap.refusal(call.ctx.session_id or "")
        self.emu._audit(call, 402, policy_result="denied", deny_reason=exc.message[:1000], error_code=exc.code)
        raise exc

    def estimate(self, call: Call) -> float:
        """An upper estimate of what the call will cost (0 for calls that are not LLM calls or unpriced)."""
        from ._metering import METERED_SUFFIXES, cost_usd, price_of  # _metering imports the proxy module

        body = call.body_json
        if call.method != "POST" or not call.path.rstrip("/").endswith(METERED_SUFFIXES) or not isinstance(body, dict):
            return 0.0
        model = call.audit.get("model") or body.get("model")
        price = price_of(self.store, model if isinstance(model, str) else None)
        if price is None:
            return 0.0
        limit = next((body[k] for k in ("max_tokens", "max_completion_tokens")
                      if isinstance(body.get(k), int) and not isinstance(body.get(k), bool) and body[k] > 0), None)
        completion = limit if limit is not None else self._completion.get(str(model), DEFAULT_COMPLETION_ESTIMATE)
        return cost_usd(price, len(call.body) // 2 + 16, completion)

    async def reserve(self, call: Call) -> None:
        """Just before forwarding: hold the call's estimated cost against its hard caps (released when
        the call is audited); wait while calls in flight may use what is left; 402 once a cap is reached."""
        estimate = self.estimate(call)
        deadline = time.monotonic() + RESERVATION_WAIT
        while True:
            caps = [c for c in self.caps_for(call) if c.mode == "enforce"]
            for cap in caps:
                if cap.spent >= cap.limit:
                    self._refuse(call, cap)
            scopes = sorted({c.scope for c in caps})
            fits = all(c.spent + self._reserved.get(c.scope, 0.0) + estimate <= c.limit for c in caps)
            alone = not any(self._in_flight.get(s) for s in scopes)
            if not caps or estimate == 0.0 or fits or alone or time.monotonic() >= deadline:
                break
            if self._settled is None or self._settled.is_set():
                self._settled = asyncio.Event()
            try:
                await asyncio.wait_for(self._settled.wait(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        if not caps or estimate == 0.0:  # nothing to hold back (free calls do not make others wait)
            call.on_done.append(lambda status, extra: self._learn(call))
            return
        for scope in scopes:
            self._reserved[scope] = self._reserved.get(scope, 0.0) + estimate
            self._in_flight[scope] = self._in_flight.get(scope, 0) + 1
        released = False

        def release(status: int, extra: dict[str, Any]) -> None:
            nonlocal released
            if released:
                return
            released = True
            for scope in scopes:
                self._reserved[scope] = max(0.0, self._reserved.get(scope, 0.0) - estimate)
                self._in_flight[scope] = max(0, self._in_flight.get(scope, 0) - 1)
                if not self._in_flight[scope]:
                    self._reserved.pop(scope, None)
                    self._in_flight.pop(scope, None)
            self._learn(call)
            if self._settled is not None:
                self._settled.set()

        call.on_done.append(release)

    def _learn(self, call: Call) -> None:
        model, completion = call.audit.get("model"), call.audit.get("completion_tokens")
        if isinstance(model, str) and isinstance(completion, int) and completion > self._completion.get(model, 0):
            self._completion[model] = completion

    def answer_headers(self, call: Call) -> list[list[str]]:
        """Budget headers for an upstream answer: what is left of each cap after this call, and a warning
        for shadow caps that are exceeded."""
        from ._metering import decimal_text

        cost = call.audit.get("estimated_cost_usd")
        cost = float(cost) if isinstance(cost, (int, float)) else 0.0
        out: list[list[str]] = []
        warnings = []
        for cap in self.caps_for(call):
            spent = cap.spent + cost
            if cap.period != "session" and (call.token.get("log_level") or 0) >= 1:
                out.append([self.emu.generation.header(f"budget-remaining-{cap.period}"),
                            f"{max(0.0, cap.limit - spent):.4f}"])
            if cap.mode == "shadow" and spent >= cap.limit:
                warnings.append(f"{cap.period} spend cap of ${decimal_text(cap.limit)} exceeded "
                                f"(current: ${decimal_text(round(spent, 10))}; shadow mode, not enforced)")
        if warnings:
            out.append([self.emu.generation.header("warning"), "; ".join(warnings)])
        return out

    # -- management
    def status(self, token_ref: str, *, extended: bool) -> dict[str, Any]:
        """The real gateway's ``SpendStatus`` (and, **[ext]**, every cap in detail)."""
        now = time.time()
        caps = self.token_caps(token_ref)
        spent = {period: round(self.token_spent(token_ref, period, now), 10) for period in PERIODS}
        out: dict[str, Any] = {}
        for period in PERIODS:
            out[f"{period}_limit_usd"] = float(caps[period]["limit_usd"]) if period in caps else None
        for period in PERIODS:
            out[f"current_{period}_usd"] = spent[period]
        if extended:
            from ._app import iso

            out["caps"] = [{
                "period": period, "limit_usd": float(row["limit_usd"]), "mode": row["mode"],
                "current_usd": spent[period], "remaining_usd": round(max(0.0, row["limit_usd"] - spent[period]), 10),
                "resets_at": iso(period_end(period, now)),
            } for period, row in sorted(caps.items(), key=lambda kv: PERIODS.index(kv[0]))]
        return out

    def set_token_cap(self, token_ref: str, doc: dict[str, Any]) -> None:
        from ._app import GatewayError

        period = doc.get("period")
        if period not in PERIODS:
            raise GatewayError(422, "validation_error", "period must be 'daily', 'monthly' or 'lifetime'")
        limit, mode, now = usd(doc.get("limit_usd"), "limit_usd"), _mode(doc), time.time()
        self.store._exec("INSERT INTO spend_caps (token_ref, period, limit_usd, mode, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(token_ref, period) DO UPDATE SET "
                         "limit_usd = excluded.limit_usd, mode = excluded.mode, updated_at = excluded.updated_at",
                         (token_ref, period, limit, mode, now, now))

    def delete_token_cap(self, token_ref: str, period: str | None) -> None:
        from ._app import GatewayError

        if period is None:
            self.store._exec("DELETE FROM spend_caps WHERE token_ref = ?", (token_ref,))
            return
        if period not in PERIODS:
            raise GatewayError(422, "validation_error", "period must be 'daily', 'monthly' or 'lifetime'")
        self.store._exec("DELETE FROM spend_caps WHERE token_ref = ? AND period = ?", (token_ref, period))

    def set_session_cap(self, session_id: str, doc: dict[str, Any]) -> None:
        """``spend_cap_usd`` (``null`` removes the cap) and **[ext]** ``mode``."""
        value = doc.get("spend_cap_usd")
        if value is None:
            self.store._exec("DELETE FROM session_spend_caps WHERE session_id = ?", (session_id,))
            return
        limit, mode = usd(value, "spend_cap_usd"), _mode(doc)
        self.store._exec("INSERT INTO session_spend_caps (session_id, limit_usd, mode, updated_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(session_id) DO UPDATE SET limit_usd = excluded.limit_usd, mode = excluded.mode, "
                         "updated_at = excluded.updated_at", (session_id, limit, mode, time.time()))


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    """``(path under /api/v1, handler, methods)`` of the token spend caps (behind the management auth)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from ._app import GatewayError

    def token_ref(request: Request) -> str:
        row = emu.store.token_by_id(request.path_params["tid"])
        if row is None:
            raise GatewayError(404, "not_found", "Token not found")
        return str(row["ref"])

    async def get_spend(request: Request) -> Response:
        return JSONResponse(emu.budgets.status(token_ref(request), extended=emu.profile.routing_extensions))

    async def put_spend(request: Request) -> Response:
        ref = token_ref(request)
        emu.budgets.set_token_cap(ref, await emu.json_body(request))
        return Response(status_code=204)

    async def delete_spend(request: Request) -> Response:
        ref = token_ref(request)
        emu.budgets.delete_token_cap(ref, request.path_params.get("period") or request.query_params.get("period"))
        return Response(status_code=204)

    return [
        ("/tokens/{tid}/spend", get_spend, ["GET"]),
        ("/tokens/{tid}/spend", put_spend, ["PUT", "POST"]),
        ("/tokens/{tid}/spend", delete_spend, ["DELETE"]),
        ("/tokens/{tid}/spend/{period}", delete_spend, ["DELETE"]),
    ]


__all__ = ["MODES", "PERIODS", "Budgets", "Cap", "period_end", "period_start", "routes", "usd"]
