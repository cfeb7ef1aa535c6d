"""Upstream pools, circuit breakers, failover and dynamic routing (issue 15).

Where a proxied request goes, decided once per request right after the policies ran
(:meth:`Router.prepare`) and carried out by :meth:`Router.send` from the proxy's forward step:

* **Pools.** A token's ``upstreams`` (``[{url, weight, priority, credential_id}]``) are tried in
  priority tiers (lowest number first); within the best tier that has a target whose circuit lets
  requests through, targets take turns in proportion to their weights (smooth weighted
  round-robin: exact shares, interleaved). Each target carries its own credential, else the token's.
  A token without ``upstreams`` is a pool of one (its ``upstream_url``).
* **Circuit breakers** (per token and target, in memory; the token's ``circuit_breaker`` settings):
  a transport failure or a 429/500/502/503/504 answer is a failure; ``failure_threshold``
  consecutive failures, or (with ``failure_rate_threshold``) that share of failures among the last
  ``min_sample_size`` outcomes (default 10), open the circuit; an open target is skipped for
  ``recovery_cooldown_secs``, then lets ``half_open_max_requests`` probes through at a time: a probe
  that succeeds closes it, one that fails opens it again. When every target of a pool of two or more
  is open: 503 ``all_upstreams_exhausted`` with ``details {reason, upstream, cooldown_secs}`` and
  ``Retry-After``. A single upstream is always sent to (as the real gateway's load balancer does);
  its state is still tracked and reported.
* **Failover that cannot duplicate.** The next target is tried only when the failure proves the
  request was not processed: the connection was never established (refused, connect timeout), or
  the target answered 429 or 503. A request that reached a target without a complete answer is
  never sent anywhere else (protocol §10.3: *outcome unknown*).
* **Dynamic routing**: the policy action ``{"action": "dynamic_route", "strategy", "pool":
  [{model, upstream_url, credential_id?, weight?}], "fallback"?}`` with the real gateway's
  strategies ``lowest_cost`` (price table, blended input/output price), ``lowest_latency`` (median
  time to the answer's head of the target's last 20 calls; targets never measured are tried
  first), ``round_robin``, ``least_busy`` (fewest requests in flight) and ``weighted_random``, plus
  **[ext]** ``multi_objective`` with ``weights`` over ``cost``, ``latency``, ``reliability`` and
  ``fairness`` (each scored 0..1, the weighted sum wins; default profile only). The chosen target's
  ``model`` replaces the JSON body's ``model``; targets with open circuits are skipped, then the
  ``fallback``; the other pool targets are the failover order.

Every upstream answer carries ``x-ailink-cb-state`` (the target's circuit: ``closed``, ``open``,
``half_open`` or ``disabled``) and ``x-ailink-upstream`` (the target URL without query or
credentials); routed ones (pools of two or more, dynamic routes) also ``x-ailink-route-strategy``
and ``x-ailink-route-reason`` (all ``x-trueflow-*`` in the trueflow generation). The audit row keeps
the target (``upstream_url``), the strategy, the reason and every attempt (``router_info``).
"""

from __future__ import annotations

import functools
import json
import math
import random
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ._paths import join_url
from ._upstream import UpstreamFailure, upstream_request_headers

if TYPE_CHECKING:
    from ._app import Call, Emulator
    from ._policy import MatchedAction

STRATEGIES = ("lowest_cost", "lowest_latency", "round_robin", "least_busy", "weighted_random")
#: Strategies this project adds (default profile only).
EXT_STRATEGIES = ("multi_objective",)
OBJECTIVES = ("cost", "latency", "reliability", "fairness")
#: Answers that prove the target did not process the request: the next target may be tried.
FAILOVER_STATUSES = frozenset({429, 503})
#: Answers a circuit breaker counts as failures (transport failures count too).
BREAKER_FAILURE_STATUSES = frozenset({429, 500, 502, 503, 504})
CIRCUIT_BREAKER_DEFAULTS: dict[str, Any] = {
    "enabled": True, "failure_threshold": 3, "recovery_cooldown_secs": 30, "half_open_max_requests": 1,
}
DEFAULT_MIN_SAMPLE = 10
LATENCY_SAMPLES = 20
FAIRNESS_WINDOW = 100
MAX_POOL = 64


class RouteConfigError(ValueError):
    """A ``dynamic_route`` action that does not follow the schema."""


# ---------------------------------------------------------------------------------------- validation


def _http_url(value: Any) -> bool:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _route_target(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise RouteConfigError(f"{where}: must be an object {{model, upstream_url, credential_id?}}")
    unknown = set(item) - {"model", "upstream_url", "credential_id", "weight", "name"}
    if unknown:
        raise RouteConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(item.get("model"), str) or not item["model"].strip():
        raise RouteConfigError(f"{where}.model: a non-empty string")
    if not _http_url(item.get("upstream_url")):
        raise RouteConfigError(f"{where}.upstream_url: an http(s) URL")
    if item.get("credential_id") is not None and not isinstance(item["credential_id"], str):
        raise RouteConfigError(f"{where}.credential_id: a string")
    weight = item.get("weight", 100)
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 1_000_000:
        raise RouteConfigError(f"{where}.weight: a positive integer")


def validate_route_action(action: dict[str, Any], where: str) -> None:
    """Check a ``dynamic_route`` action (raises :class:`RouteConfigError`)."""
    strategy = action.get("strategy")
    if strategy not in STRATEGIES + EXT_STRATEGIES:
        raise RouteConfigError(f"{where}.strategy: one of {', '.join(STRATEGIES + EXT_STRATEGIES)}")
    pool = action.get("pool")
    if not isinstance(pool, list) or not 1 <= len(pool) <= MAX_POOL:
        raise RouteConfigError(f"{where}.pool: a list of 1-{MAX_POOL} targets")
    for i, item in enumerate(pool):
        _route_target(item, f"{where}.pool[{i}]")
    keys = [(t["upstream_url"], t["model"]) for t in pool]
    if len(set(keys)) != len(keys):
        raise RouteConfigError(f"{where}.pool: a target (upstream_url, model) is listed twice")
    if action.get("fallback") is not None:
        _route_target(action["fallback"], f"{where}.fallback")
    weights = action.get("weights")
    if strategy == "multi_objective":
        if not isinstance(weights, dict) or not weights:
            raise RouteConfigError(f"{where}.weights: an object of {', '.join(OBJECTIVES)} → numbers")
        for name, value in weights.items():
            if name not in OBJECTIVES:
                raise RouteConfigError(f"{where}.weights: unknown objective {name!r} ({', '.join(OBJECTIVES)})")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1000:
                raise RouteConfigError(f"{where}.weights.{name}: a number from 0 to 1000")
        if not sum(weights.values()) > 0:
            raise RouteConfigError(f"{where}.weights: at least one weight above 0")
    elif weights is not None:
        raise RouteConfigError(f"{where}.weights: only for the multi_objective strategy")


# ---------------------------------------------------------------------------------------- breakers


def public_url(url: str) -> str:
    """A target URL as it may be shown: no query string (a credential may sit there), no user info."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<invalid url>"


def breaker_config(token: dict[str, Any]) -> dict[str, Any]:
    """The token's circuit-breaker settings (the real gateway's defaults for missing fields)."""
    stored = token.get("circuit_breaker")
    return {**CIRCUIT_BREAKER_DEFAULTS, **(stored if isinstance(stored, dict) else {})}


@dataclass
class Breaker:
    """The circuit of one target of one token, and what it has seen."""

    consecutive: int = 0
    opened_at: float | None = None
    probes: int = 0
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=1000))
    requests: int = 0
    failures: int = 0

    def state(self, config: dict[str, Any], now: float) -> str:
        if not config["enabled"]:
            return "disabled"
        if self.opened_at is None:
            return "closed"
        return "half_open" if now - self.opened_at >= config["recovery_cooldown_secs"] else "open"

    def cooldown_left(self, config: dict[str, Any], now: float) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + float(config["recovery_cooldown_secs"]) - now)

    def admits(self, config: dict[str, Any], now: float) -> bool:
        """Whether a request may be sent now (without taking a probe slot)."""
        state = self.state(config, now)
        return state in ("closed", "disabled") or (state == "half_open"
                                                    and self.probes < config["half_open_max_requests"])

    def record(self, ok: bool, config: dict[str, Any], now: float, *, probe: bool) -> None:
        if probe:
            self.probes = max(0, self.probes - 1)
        if not config["enabled"]:
            return
        self.requests += 1
        self.outcomes.append(ok)
        if ok:
            self.consecutive = 0
            self.opened_at = None  # a success closes the circuit (a half-open probe, or a lone upstream)
            return
        self.failures += 1
        self.consecutive += 1
        if self.opened_at is not None or self.consecutive >= config["failure_threshold"] or self._rate_trips(config):
            self.opened_at = now  # opened, or re-opened by a failed probe

    def _rate_trips(self, config: dict[str, Any]) -> bool:
        rate = config.get("failure_rate_threshold")
        if rate is None:
            return False
        sample = int(config.get("min_sample_size") or DEFAULT_MIN_SAMPLE)
        if len(self.outcomes) < sample:
            return False
        recent = list(self.outcomes)[-sample:]
        return recent.count(False) / sample >= float(rate)

    def reliability(self) -> float:
        """Share of successes among the recent outcomes, smoothed (1 success and 1 failure assumed)."""
        recent = list(self.outcomes)[-50:]
        return (recent.count(True) + 1) / (len(recent) + 2)


def _header_text(value: str) -> str:
    """A header value that any HTTP stack can send: printable ASCII (others escaped), one line."""
    return "".join(ch if " " <= ch <= "~" else ch.encode("unicode_escape").decode("ascii") for ch in value)


# ---------------------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Target:
    """One place a request can go."""

    url: str
    credential_id: str | None
    weight: int = 100
    priority: int = 1
    #: The model a dynamic route sends (replaces ``body.model``); ``None`` keeps the request's.
    model: str | None = None

    @property
    def key(self) -> str:
        return self.url if self.model is None else f"{self.url}#{self.model}"


@dataclass
class RoutePlan:
    """Where one request goes: targets in the order they may be tried, and why the first."""

    targets: list[Target]
    strategy: str | None
    reason: str | None
    #: More than one place to go: failover allowed, 503 when every circuit is open.
    pooled: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)
    chosen: Target | None = None
    probe: bool = False
    sent_at: float = 0.0
    head_ok: bool = True

    def info(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "reason": self.reason,
                "target": public_url(self.chosen.url) if self.chosen else None,
                "model": self.chosen.model if self.chosen else None, "attempts": self.attempts}


def _blocked(exc_factory: Callable[..., Exception], url: str, cooldown: float) -> Exception:
    seconds = max(1, math.ceil(cooldown))
    return exc_factory(
        503, "all_upstreams_exhausted",
        f"All upstreams are unavailable: every circuit breaker is open (next retry in {seconds} s)",
        details={"reason": "circuit_breaker_open", "upstream": public_url(url), "cooldown_secs": seconds},
        headers={"retry-after": str(seconds)}, forwarded=False)


class Router:
    """Routing state of one emulator: breakers, in-flight counts, latencies, turns (all in memory)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._breakers: dict[tuple[str, str], Breaker] = {}
        self._wrr: dict[str, dict[str, float]] = {}
        self._turns: Counter[str] = Counter()
        self._served: dict[str, deque[str]] = {}
        self.in_flight: Counter[str] = Counter()
        self._latency: dict[str, deque[float]] = {}
        self._random = random.Random()

    # -- state
    def breaker(self, token_ref: str, url: str) -> Breaker:
        found = self._breakers.get((token_ref, url))
        if found is None:
            found = self._breakers[(token_ref, url)] = Breaker()
        return found

    def pool_of(self, token: dict[str, Any]) -> list[Target]:
        """The token's upstream pool (its ``upstream_url`` alone when it has no ``upstreams``)."""
        entries = token.get("upstreams")
        if isinstance(entries, list) and entries:
            return [Target(str(e["url"]), e.get("credential_id") or token["credential_id"], int(e.get("weight", 100)),
                           int(e.get("priority", 1))) for e in entries if isinstance(e, dict) and e.get("url")]
        return [Target(token["upstream_url"], token["credential_id"])]

    def health(self, token: dict[str, Any]) -> list[dict[str, Any]]:
        """Per target of the token's pool: its circuit and what it has seen."""
        config = breaker_config(token)
        now = time.monotonic()
        rows = []
        for target in self.pool_of(token):
            b = self.breaker(token["ref"], target.url)
            state = b.state(config, now)
            rows.append({
                "url": public_url(target.url), "state": state, "is_healthy": state in ("closed", "disabled"),
                "failure_count": b.consecutive,
                "cooldown_remaining_secs": math.ceil(b.cooldown_left(config, now)) if state == "open" else None,
                "circuit_breaker_enabled": config["enabled"], "weight": target.weight, "priority": target.priority,
                "in_flight": self.in_flight[target.url], "requests": b.requests, "failures": b.failures,
            })
        return rows

    # -- planning
    def prepare(self, call: Call) -> None:
        """Plan where ``call`` goes (503 when nothing can take it); the first target becomes the
        call's upstream (approvals store it). Service paths keep their service's base URL."""
        from ._app import GatewayError

        action = call.route_action
        try:
            if call.target.service is not None:  # a registered service: its base URL, no pool
                base, credential_id = self.emu.route(call.token, call.target)
                plan = RoutePlan([Target(base, credential_id)], None, None, pooled=False)
            elif action is not None:
                plan = self._dynamic(call, action, GatewayError)
            else:
                plan = self._pooled(call, GatewayError)
        except GatewayError as exc:
            self.emu._audit(call, exc.status, policy_result="error", error_code=exc.code, deny_reason=exc.message)
            raise
        call.route = plan
        self._aim(call, plan.targets[0])

    def _aim(self, call: Call, target: Target) -> None:
        """Point the call at ``target``: URL, credential, model, audit row."""
        query = call.query if self.emu.profile.forward_query else ""
        call.upstream_url = join_url(target.url, call.target.forward_path, query)
        call.credential_id = target.credential_id
        call.audit["upstream_url"] = join_url(target.url, call.target.forward_path)
        if target.model is not None and isinstance(call.body_json, dict):
            if call.body_json.get("model") != target.model:
                call.body_json = {**call.body_json, "model": target.model}
                call.body = json.dumps(call.body_json, separators=(",", ":"), ensure_ascii=False).encode()
            call.audit["model"] = target.model

    def _available(self, token: dict[str, Any], targets: list[Target]) -> list[Target]:
        config = breaker_config(token)
        now = time.monotonic()
        return [t for t in targets if self.breaker(token["ref"], t.url).admits(config, now)]

    def _exhausted(self, token: dict[str, Any], targets: list[Target], factory: Callable[..., Exception]) -> Exception:
        config = breaker_config(token)
        now = time.monotonic()
        soonest = min(targets, key=lambda t: self.breaker(token["ref"], t.url).cooldown_left(config, now))
        return _blocked(factory, soonest.url, self.breaker(token["ref"], soonest.url).cooldown_left(config, now))

    def _pooled(self, call: Call, factory: Callable[..., Exception]) -> RoutePlan:
        token = call.token
        pool = self.pool_of(token)
        if len(pool) == 1:
            return RoutePlan(pool, None, None, pooled=False)
        available = self._available(token, pool)
        if not available:
            raise self._exhausted(token, pool, factory)
        tier = min(t.priority for t in available)
        candidates = [t for t in available if t.priority == tier]
        chosen = self._weighted_turn(token["ref"], candidates)
        rest = sorted((t for t in available if t is not chosen), key=lambda t: (t.priority, -t.weight, pool.index(t)))
        skipped = len(pool) - len(available)
        reason = f"weight {chosen.weight} of {sum(t.weight for t in candidates)} in priority {tier}"
        if skipped:
            reason += f"; {skipped} target{'s' if skipped > 1 else ''} skipped (circuit open)"
        return RoutePlan([chosen, *rest], "weighted", reason, pooled=True)

    def _weighted_turn(self, token_ref: str, candidates: list[Target]) -> Target:
        """Smooth weighted round-robin: every target gains its weight, the richest is chosen and pays the total."""
        if len(candidates) == 1:
            return candidates[0]
        current = self._wrr.setdefault(token_ref, {})
        total = sum(t.weight for t in candidates)
        for t in candidates:
            current[t.url] = current.get(t.url, 0.0) + t.weight
        chosen = max(candidates, key=lambda t: current[t.url])
        current[chosen.url] -= total
        return chosen

    def _dynamic(self, call: Call, matched: MatchedAction, factory: Callable[..., Exception]) -> RoutePlan:
        action = matched.action
        strategy = str(action.get("strategy"))
        if strategy in EXT_STRATEGIES and not self.emu.profile.routing_extensions:
            raise factory(500, "internal_server_error",
                          f"Policy '{matched.policy_name}' uses the routing strategy '{strategy}', which only the "
                          "emulator's default profile has", forwarded=False)
        token = call.token
        pool = [self._route_target(item, token) for item in action.get("pool") or []]
        weights = {t.key: int(item.get("weight", 100)) for t, item in zip(pool, action.get("pool") or [], strict=True)}
        available = self._available(token, pool)
        fallback = self._route_target(action["fallback"], token) if action.get("fallback") else None
        if not available:
            if fallback is not None and self._available(token, [fallback]):
                return RoutePlan([fallback], "fallback", "all pool targets unhealthy", pooled=True)
            raise self._exhausted(token, pool + ([fallback] if fallback else []), factory)
        scope = f"{token['ref']}:{matched.policy_id}:{matched.rule_index}"
        chosen, reason = self._choose(strategy, available, weights, scope, token["ref"], action.get("weights") or {})
        self._served.setdefault(scope, deque(maxlen=FAIRNESS_WINDOW)).append(chosen.key)
        rest = [t for t in available if t is not chosen]
        listed = {t.key for t in available}
        if fallback is not None and fallback.key not in listed and self._available(token, [fallback]):
            rest.append(fallback)
        return RoutePlan([chosen, *rest], strategy, reason, pooled=True)

    @staticmethod
    def _route_target(item: dict[str, Any], token: dict[str, Any]) -> Target:
        return Target(str(item["upstream_url"]), item.get("credential_id") or token["credential_id"],
                      int(item.get("weight", 100)), 1, str(item["model"]))

    # -- strategies
    def _price(self, target: Target) -> float | None:
        from ._metering import price_of

        price = price_of(self.emu.store, target.model)
        if price is None:
            return None
        return (float(price["input_per_1k_usd"]) + float(price["output_per_1k_usd"])) / 2

    def _p50(self, target: Target) -> float | None:
        samples = self._latency.get(target.key)
        return statistics.median(samples) if samples else None

    def _choose(self, strategy: str, targets: list[Target], weights: dict[str, int], scope: str, token_ref: str,
                objectives: dict[str, float]) -> tuple[Target, str]:
        if strategy == "lowest_cost":
            priced = [(p, t) for t in targets if (p := self._price(t)) is not None]
            if not priced:
                return targets[0], "no pricing data; selected the first healthy target"
            cost, chosen = min(priced, key=lambda pt: pt[0])
            return chosen, f"cheapest at ${cost * 1000:.4f}/M blended ({chosen.model})"
        if strategy == "lowest_latency":
            unmeasured = [t for t in targets if self._p50(t) is None]
            if unmeasured:
                return unmeasured[0], "no latency data yet; measuring this target"
            chosen = min(targets, key=lambda t: self._p50(t) or 0.0)
            return chosen, f"fastest at {(self._p50(chosen) or 0.0) * 1000:.0f}ms p50"
        if strategy == "round_robin":
            slot = self._turns[scope] % len(targets)
            self._turns[scope] += 1
            return targets[slot], f"round-robin slot {slot}"
        if strategy == "least_busy":
            chosen = min(targets, key=lambda t: self.in_flight[t.url])
            return chosen, f"{self.in_flight[chosen.url]} in-flight requests"
        if strategy == "weighted_random":
            chosen = self._random.choices(targets, weights=[weights.get(t.key, 100) for t in targets])[0]
            total = sum(weights.get(t.key, 100) for t in targets)
            return chosen, f"random pick with weight {weights.get(chosen.key, 100)} of {total}"
        return self._multi_objective(targets, scope, token_ref, objectives)

    def _multi_objective(self, targets: list[Target], scope: str, token_ref: str,
                         objectives: dict[str, float]) -> tuple[Target, str]:
        """Each objective scored 0..1 per target (1 = best), summed with the policy's weights."""
        total_weight = sum(objectives.values())
        prices = {t.key: self._price(t) for t in targets}
        known = [p for p in prices.values() if p is not None]
        cheapest = min(known) if known else None
        latencies = {t.key: self._p50(t) for t in targets}
        measured = [v for v in latencies.values() if v is not None]
        fastest = min(measured) if measured else None
        served = self._served.get(scope) or deque()
        counts = Counter(served)

        def score(t: Target) -> tuple[float, dict[str, float]]:
            price, latency = prices[t.key], latencies[t.key]
            parts = {
                "cost": 0.0 if price is None else (1.0 if not price or cheapest is None else cheapest / price),
                "latency": 1.0 if latency is None or not latency or fastest is None else fastest / latency,
                "reliability": self.breaker(token_ref, t.url).reliability(),
                "fairness": 1.0 - counts[t.key] / len(served) if served else 1.0,
            }
            return sum(parts[name] * objectives.get(name, 0.0) for name in OBJECTIVES) / total_weight, parts

        scored = [(score(t), i, t) for i, t in enumerate(targets)]
        (best, parts), _, chosen = max(scored, key=lambda s: (s[0][0], -s[1]))
        detail = ", ".join(f"{name} {parts[name]:.2f}*{objectives[name]:g}" for name in OBJECTIVES
                           if objectives.get(name))
        return chosen, f"score {best:.2f} ({detail})"

    # -- sending
    async def send(self, call: Call, retries: int) -> httpx.Response:
        """Send ``call`` to its planned targets in turn, failing over only when the target provably
        did not process it; returns the answer whose head arrived (its body unread)."""
        if not isinstance(call.route, RoutePlan):
            self.prepare(call)
        plan: RoutePlan = call.route
        token = call.token
        config = breaker_config(token)
        key = call.key if self.emu.profile.forward_idempotency_key else None
        targets = plan.targets
        from ._app import GatewayError

        for index, target in enumerate(targets):
            breaker = self.breaker(token["ref"], target.url)
            now = time.monotonic()
            last = index == len(targets) - 1
            probe = breaker.state(config, now) == "half_open"
            if plan.pooled and not breaker.admits(config, now):
                plan.attempts.append({"upstream": public_url(target.url), "outcome": "skipped (circuit open)"})
                if last:  # every target was taken (probe slots) or opened since the plan: nothing was sent
                    exc = self._exhausted(token, targets, GatewayError)
                    self.emu._audit(call, 503, policy_result="error", error_code="all_upstreams_exhausted",
                                    deny_reason=str(exc))
                    raise exc
                continue
            if probe:
                breaker.probes += 1
            self._aim(call, target)
            headers, url = upstream_request_headers(call.headers, credential=self.emu._credential(call.credential_id),
                                                    token_ref=token["ref"], url=call.upstream_url, idempotency_key=key,
                                                    set_headers=call.set_headers, remove_headers=call.remove_headers)
            plan.chosen, plan.probe, plan.sent_at = target, probe, time.monotonic()
            self.in_flight[target.url] += 1
            try:
                resp = await self.emu.upstream.open_with_retries(call.method, url, headers, call.body, retries=retries)
            except UpstreamFailure as failure:
                self.in_flight[target.url] -= 1
                breaker.record(False, config, time.monotonic(), probe=probe)
                plan.attempts.append({"upstream": public_url(target.url), "outcome": failure.message,
                                      "forwarded": failure.forwarded})
                if failure.forwarded or last or not plan.pooled:
                    plan.chosen = target
                    raise
                plan.reason = f"failover from {public_url(target.url)}: {failure.message}"
                continue
            self._latency.setdefault(target.key, deque(maxlen=LATENCY_SAMPLES)).append(time.monotonic() - plan.sent_at)
            ok = resp.status_code not in BREAKER_FAILURE_STATUSES
            plan.attempts.append({"upstream": public_url(target.url), "status": resp.status_code})
            if not ok and plan.pooled and not last and resp.status_code in FAILOVER_STATUSES:
                breaker.record(False, config, time.monotonic(), probe=probe)
                try:  # a complete answer that says "not processed": drop it and try the next target
                    await self.emu.upstream.read(resp)
                except UpstreamFailure:
                    pass
                finally:
                    self.in_flight[target.url] -= 1
                plan.reason = f"failover from {public_url(target.url)}: it answered {resp.status_code}"
                continue
            plan.head_ok = ok
            breaker.record(ok, config, time.monotonic(), probe=probe)
            call.on_done.append(functools.partial(self._done, call, target))
            return resp
        raise AssertionError("a route plan always has a target")  # pragma: no cover

    def _done(self, call: Call, target: Target, status: int, extra: dict[str, Any]) -> None:
        """The answer of ``call`` is settled (audited): the target has one request less in flight; a body
        cut after a good head counts against its circuit."""
        self.in_flight[target.url] = max(0, self.in_flight[target.url] - 1)
        plan = call.route
        if isinstance(plan, RoutePlan) and plan.head_ok and extra.get("error_code") == "upstream_failed":
            self.breaker(call.token["ref"], target.url).record(False, breaker_config(call.token), time.monotonic(),
                                                               probe=False)

    def answer_headers(self, call: Call) -> list[list[str]]:
        """``x-ailink-cb-state``, ``x-ailink-upstream`` and, when routed, the strategy and the reason
        (``x-trueflow-*`` in the trueflow generation)."""
        plan = call.route if isinstance(call.route, RoutePlan) else None
        target = plan.chosen if plan is not None and plan.chosen is not None else None
        url = target.url if target is not None else call.upstream_url
        state = self.breaker(call.token["ref"], url).state(breaker_config(call.token), time.monotonic())
        branded = self.emu.generation.header
        out = [[self.emu.generation.cb_state, state],
               [branded("upstream"), _header_text(public_url(call.upstream_url))]]
        if plan is not None and plan.strategy is not None:
            out += [[branded("route-strategy"), plan.strategy],
                    [branded("route-reason"), _header_text(plan.reason or "")]]
        return out

    def audit_fields(self, call: Call) -> dict[str, Any]:
        plan = call.route if isinstance(call.route, RoutePlan) else None
        if plan is None:
            return {}
        return {"route_strategy": plan.strategy, "route_reason": plan.reason, "router_info": plan.info()}


__all__ = ["BREAKER_FAILURE_STATUSES", "CIRCUIT_BREAKER_DEFAULTS", "EXT_STRATEGIES", "FAILOVER_STATUSES",
           "OBJECTIVES", "STRATEGIES", "Breaker", "RouteConfigError", "RoutePlan", "Router", "Target",
           "breaker_config", "public_url", "validate_route_action"]
