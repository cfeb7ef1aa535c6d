"""LLM usage: the price table, the cost of each LLM call, and the token's own metrics and summary.

* **Price table** (USD per 1,000 input and output tokens): built-in defaults for the mock models and
  common provider models (:data:`DEFAULT_PRICES`), overridden or extended through the management
  API: ``GET /api/v1/pricing``, ``GET|PUT|DELETE /api/v1/pricing/{model}`` (``PUT`` body
  ``{"input_per_1k_usd", "output_per_1k_usd", "provider"?}``; scope family ``billing``). A model
  name resolves exactly, else to the longest priced name it extends (``gpt-4o-2024-08-06`` →
  ``gpt-4o``); prices set here win over the defaults.
* **Metering** (:class:`Meter`, the proxy's one call-out from its forward step): for chat
  completions, completions, embeddings and Anthropic messages, the usage of the answer (buffered or
  streamed) is priced and written to the audit row (``prompt_tokens``, ``completion_tokens``,
  ``estimated_cost_usd``, ``provider``); non-2xx answers cost 0, as on the real gateway. Both
  profiles meter (the real gateway's audit rows carry the cost). **[ext]** (default profile only):
  the cost goes back to the client in ``X-AIlink-Cost-Usd`` (buffered answers) or as ``cost_usd``
  in the ``usage`` object of the stream chunk that carries usage, and ``GET /v1/models`` answers are
  enriched with ``provider`` and ``pricing`` (``None`` for a model without a price).
* **[ext]** ``GET /v1/metrics?range=1h|24h|7d|30d[&group_by=...]`` and ``GET /v1/me``: data-plane
  endpoints scoped to the calling virtual token, computed from its audit rows (see
  :func:`metrics_report` and :func:`me_report`).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ailink._secrets import mask, scrub

from ._app import Emulator, GatewayError, iso, new_request_id
from ._bounds import JSONRefused, NotJSON, load_json
from ._store import DEFAULT_PROJECT, Store

#: The cost header after its brand: ``x-ailink-cost-usd`` (``x-trueflow-cost-usd`` in the trueflow generation).
COST_HEADER = "cost-usd"
#: (input, output) USD per 1,000 tokens, and the provider. Public list prices, late 2024.
DEFAULT_PRICES: dict[str, tuple[float, float, str]] = {
    "mock-gpt": (0.001, 0.002, "emulator"),
    "mock-gpt-mini": (0.0001, 0.0002, "emulator"),
    "mock-embedding": (0.00001, 0.0, "emulator"),
    "gpt-4o": (0.0025, 0.01, "openai"),
    "gpt-4o-mini": (0.00015, 0.0006, "openai"),
    "gpt-4-turbo": (0.01, 0.03, "openai"),
    "gpt-4": (0.03, 0.06, "openai"),
    "gpt-3.5-turbo": (0.0005, 0.0015, "openai"),
    "o1": (0.015, 0.06, "openai"),
    "o1-mini": (0.003, 0.012, "openai"),
    "o3-mini": (0.0011, 0.0044, "openai"),
    "text-embedding-3-small": (0.00002, 0.0, "openai"),
    "text-embedding-3-large": (0.00013, 0.0, "openai"),
    "text-embedding-ada-002": (0.0001, 0.0, "openai"),
    "claude-3-5-sonnet": (0.003, 0.015, "anthropic"),
    "claude-3-5-haiku": (0.0008, 0.004, "anthropic"),
    "claude-3-opus": (0.015, 0.075, "anthropic"),
    "claude-3-haiku": (0.00025, 0.00125, "anthropic"),
    "gemini-1.5-pro": (0.00125, 0.005, "google"),
    "gemini-1.5-flash": (0.000075, 0.0003, "google"),
    "gemini-2.0-flash": (0.0001, 0.0004, "google"),
}
_PROVIDER_PREFIXES = (
    ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("text-embedding-", "openai"), ("dall-e", "openai"),
    ("claude", "anthropic"), ("gemini", "google"), ("mistral", "mistral"), ("mixtral", "mistral"),
    ("command", "cohere"), ("llama", "meta"), ("mock-", "emulator"),
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS pricing (
    model TEXT PRIMARY KEY, input_per_1k_usd REAL NOT NULL, output_per_1k_usd REAL NOT NULL, provider TEXT,
    updated_at REAL NOT NULL
);
"""
#: Paths (suffixes) whose answers carry token usage, and the models list.
METERED_SUFFIXES = ("/chat/completions", "/completions", "/embeddings", "/messages")
MODELS_SUFFIX = "/models"
MAX_PRICE = 1000.0
MAX_MODEL_CHARS = 200
RANGES = {"1h": (3600, 300), "24h": (86400, 3600), "7d": (7 * 86400, 6 * 3600), "30d": (30 * 86400, 86400)}
GROUPS = ("provider", "model", "user", "app", "org", "status")
_VERSION_SEPARATORS = re.compile(r"[-:@/.]")


def install(store: Store) -> None:
    """Create the price table (once per database)."""
    store.ensure_schema(SCHEMA)


# ---------------------------------------------------------------------------------------- prices


def provider_of(model: str | None) -> str | None:
    """The provider a model name belongs to, by its well-known prefix (``None``: unknown)."""
    if not model:
        return None
    lowered = model.lower()
    return next((provider for prefix, provider in _PROVIDER_PREFIXES if lowered.startswith(prefix)), None)


def _entry(model: str, input_price: float, output_price: float, provider: str | None, source: str) -> dict[str, Any]:
    return {"model": model, "input_per_1k_usd": input_price, "output_per_1k_usd": output_price,
            "provider": provider or provider_of(model), "source": source, "currency": "USD"}


def _custom(store: Store) -> dict[str, dict[str, Any]]:
    rows = store._all("SELECT model, input_per_1k_usd, output_per_1k_usd, provider FROM pricing")
    return {r["model"]: _entry(r["model"], r["input_per_1k_usd"], r["output_per_1k_usd"], r["provider"], "custom")
            for r in rows}


def price_entries(store: Store) -> list[dict[str, Any]]:
    """Every priced model (custom prices replace the defaults of the same name), sorted by name."""
    table = {name: _entry(name, i, o, p, "default") for name, (i, o, p) in DEFAULT_PRICES.items()}
    table.update(_custom(store))
    return [table[name] for name in sorted(table)]


def price_of(store: Store, model: str | None) -> dict[str, Any] | None:
    """The price of ``model``: an exact entry, else the longest priced name it extends (custom first)."""
    if not model:
        return None
    for table in (_custom(store), {n: _entry(n, i, o, p, "default") for n, (i, o, p) in DEFAULT_PRICES.items()}):
        if model in table:
            return table[model]
        extended = [name for name in table
                    if model.startswith(name) and _VERSION_SEPARATORS.fullmatch(model[len(name):len(name) + 1])]
        if extended:
            return table[max(extended, key=len)]
    return None


def cost_usd(price: dict[str, Any] | None, prompt_tokens: int, completion_tokens: int) -> float:
    """``prompt × input + completion × output`` (per 1,000 tokens), rounded to 10 decimal places."""
    if price is None:
        return 0.0
    total = (Decimal(str(price["input_per_1k_usd"])) * prompt_tokens
             + Decimal(str(price["output_per_1k_usd"])) * completion_tokens) / 1000
    return float(round(total, 10))


def decimal_text(value: float | None) -> str:
    """A USD amount as the real gateway writes decimals: a JSON string, no exponent (``"0.00015"``)."""
    if value is None:
        return "0"
    text = format(Decimal(str(value)).normalize(), "f")
    return text if text not in ("-0", "") else "0"


# ---------------------------------------------------------------------------------------- metering


def _tokens(usage: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens of an OpenAI or Anthropic ``usage`` object."""
    if not isinstance(usage, dict):
        return None

    def count(*names: str) -> int:
        for name in names:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        return 0

    return count("prompt_tokens", "input_tokens"), count("completion_tokens", "output_tokens")


def _usage_of(doc: Any) -> Any:
    """The ``usage`` object of a stream event: top level (OpenAI, Anthropic ``message_delta``) or in
    ``message`` (Anthropic ``message_start``)."""
    if not isinstance(doc, dict):
        return None
    message = doc.get("message")
    return doc.get("usage") or (message.get("usage") if isinstance(message, dict) else None)


class MeteredCall(Protocol):
    """What a meter reads of a call: a proxied :class:`Call`, or an approved request the gateway runs itself."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def body_json(self) -> Any: ...
    @property
    def audit(self) -> dict[str, Any]: ...


@dataclass
class StoredCall:
    """An approved request the gateway performs from its store; ``audit`` collects the usage fields."""

    method: str
    path: str
    body_json: Any
    audit: dict[str, Any] = field(default_factory=dict)


class Meter:
    """Prices one proxied LLM call from its answer and records the result in its audit row.

    :meth:`start` gives a meter that does nothing for calls that are not LLM calls, so the proxy
    calls :meth:`buffered` / :meth:`stream` unconditionally.
    """

    def __init__(self, emu: Emulator, call: MeteredCall | None, *, models_list: bool = False) -> None:
        self.emu = emu
        self.call = call
        self.models_list = models_list
        self.extensions = emu.profile.llm_extensions
        #: Token counts a stream reported so far (Anthropic streams report input and output apart).
        self._streamed = (0, 0)

    @classmethod
    def start(cls, emu: Emulator, call: MeteredCall) -> Meter:
        path = call.path.rstrip("/")
        if call.method == "POST" and path.endswith(METERED_SUFFIXES):
            return cls(emu, call)
        if call.method == "GET" and path.endswith(MODELS_SUFFIX):
            return cls(emu, None, models_list=True)
        return cls(emu, None)

    # -- what the proxy calls
    def buffered(self, status: int, headers: list[list[str]], content: bytes) -> tuple[bytes, list[list[str]]]:
        """The answer's body and headers to send (and store): priced, or the models list enriched."""
        if self.models_list and self.extensions and 200 <= status < 300:
            return self._enrich_models(content), headers
        if self.call is None:
            return content, headers
        usage = None
        model = None
        if 200 <= status < 300:
            doc = _json(content)
            if isinstance(doc, dict):
                usage = doc.get("usage")
                model = doc.get("model") if isinstance(doc.get("model"), str) else None
        cost = self._record(_tokens(usage), model, priced=200 <= status < 300)
        if self.extensions and cost is not None:
            headers = [*headers, [self.emu.generation.header(COST_HEADER), decimal_text(cost)]]
        return content, headers

    def read_whole(self, status: int, headers: list[list[str]], content: bytes) -> tuple[bytes, list[list[str]]]:
        """:meth:`buffered`, or for an event stream read whole (an approved request's stored answer) its
        chunk with usage priced as :meth:`stream` does."""
        streamed = any(name.lower() == "content-type" and value.startswith("text/event-stream")
                       for name, value in headers)
        if not streamed or self.call is None:
            return self.buffered(status, headers, content)
        self._record(None, None, priced=False)
        return (self._rewrite(content) if 200 <= status < 300 else content), headers

    def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The event stream as sent to the client: the chunk carrying usage gets ``usage.cost_usd``."""
        if self.call is None:
            return chunks
        self._record(None, None, priced=False)  # until the stream reports usage (a cut stream costs 0)
        return self._metered(chunks)

    # -- internals
    def _record(self, tokens: tuple[int, int] | None, answered_model: str | None, *, priced: bool) -> float | None:
        assert self.call is not None
        audit = self.call.audit
        body = self.call.body_json
        requested = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
        model = audit.get("model") or requested or answered_model
        price = price_of(self.emu.store, model) or price_of(self.emu.store, answered_model)
        prompt, completion = tokens or (None, None)
        cost = cost_usd(price, prompt or 0, completion or 0) if priced and tokens is not None else 0.0
        audit.update({"prompt_tokens": prompt, "completion_tokens": completion, "estimated_cost_usd": cost,
                      "provider": (price or {}).get("provider") or provider_of(model)})
        if model and not audit.get("model"):
            audit["model"] = model
        return cost if tokens is not None else None

    async def _metered(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        pending = b""
        async for chunk in chunks:
            pending += chunk
            cut = pending.rfind(b"\n")
            if cut < 0:
                continue
            complete, pending = pending[:cut + 1], pending[cut + 1:]
            yield self._rewrite(complete) if b'"usage"' in complete else complete
        if pending:
            yield self._rewrite(pending) if b'"usage"' in pending else pending

    def _rewrite(self, block: bytes) -> bytes:
        """Lines of an event stream; a ``data:`` line whose chunk has usage is priced (and says so)."""
        lines = block.split(b"\n")
        for i, line in enumerate(lines):
            stripped = line.rstrip(b"\r")
            if not stripped.startswith(b"data:") or b'"usage"' not in stripped:
                continue
            doc = _json(stripped[5:].strip())
            usage = _usage_of(doc)
            tokens = _tokens(usage)
            if tokens is None or not isinstance(usage, dict):
                continue
            self._streamed = tokens = (max(self._streamed[0], tokens[0]), max(self._streamed[1], tokens[1]))
            cost = self._record(tokens, doc.get("model") if isinstance(doc.get("model"), str) else None, priced=True)
            if self.extensions:
                usage["cost_usd"] = cost
                ending = line[len(stripped):]
                lines[i] = b"data: " + json.dumps(doc, separators=(",", ":")).encode() + ending
        return b"\n".join(lines)

    def _enrich_models(self, content: bytes) -> bytes:
        doc = _json(content)
        items = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return content
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            price = price_of(self.emu.store, item["id"])
            item.setdefault("provider", (price or {}).get("provider") or provider_of(item["id"]))
            item.setdefault("pricing", None if price is None else {
                "input_per_1k_usd": price["input_per_1k_usd"], "output_per_1k_usd": price["output_per_1k_usd"],
                "currency": "USD"})
        return json.dumps(doc, separators=(",", ":")).encode()


def _json(content: bytes) -> Any:
    try:
        return load_json(content, strict_numbers=False)
    except (JSONRefused, NotJSON):
        return None


# ---------------------------------------------------------------------------------------- reports


def _sums(rows: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = sum(r["prompt_tokens"] or 0 for r in rows)
    completion = sum(r["completion_tokens"] or 0 for r in rows)
    return {
        "requests": len(rows),
        "errors": sum(1 for r in rows if (r["status_code"] or 0) >= 400),
        "cost_usd": round(sum(r["estimated_cost_usd"] or 0.0 for r in rows), 10),
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
    }


def _app_of(row: dict[str, Any]) -> str | None:
    props = row.get("properties")
    value = props.get("app_id") if isinstance(props, dict) else None
    return value if isinstance(value, str) else None


_DIMENSIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "provider": lambda r: r["provider"] or "unknown",
    "model": lambda r: r["model"] or "unknown",
    "user": lambda r: r["user_id"] or "anonymous",
    "app": lambda r: _app_of(r) or "none",
    "org": lambda r: r["tenant_id"] or "none",
    "status": lambda r: str(r["status_code"]) if r["status_code"] is not None else "unknown",
}
_METRIC_COLUMNS = ("created_at, status_code, latency_ms, model, provider, user_id, tenant_id, properties, "
                   "prompt_tokens, completion_tokens, estimated_cost_usd, cache_hit")


def token_rows(store: Store, token_ref: str, since: float) -> list[dict[str, Any]]:
    return store._all(f"SELECT {_METRIC_COLUMNS} FROM audit WHERE token_ref = ? AND created_at >= ? ORDER BY seq",
                      (token_ref, since))


def metrics_report(store: Store, token_ref: str, range_name: str, group_by: str | None,
                   now: float | None = None) -> dict[str, Any]:
    """Totals, breakdown and timeseries of one token's audit rows over ``range_name``."""
    from ._mgmt._analytics import percentile  # the management package imports this module

    span, bucket = RANGES[range_name]
    now = time.time() if now is None else now
    since = now - span
    rows = token_rows(store, token_ref, since)
    totals = _sums(rows)
    requests = totals["requests"]
    cache_hits = sum(1 for r in rows if r["cache_hit"])
    latencies = sorted(int(r["latency_ms"]) for r in rows if r["latency_ms"] is not None)
    totals.update({
        "error_rate": round(totals["errors"] / requests, 6) if requests else 0.0,
        "cache_hits": cache_hits, "cache_hit_rate": round(cache_hits / requests, 6) if requests else 0.0,
        "p50_latency_ms": percentile(latencies, 50), "p95_latency_ms": percentile(latencies, 95),
    })
    breakdown: list[dict[str, Any]] = []
    for group in ([group_by] if group_by else GROUPS):
        keyed: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            keyed.setdefault(_DIMENSIONS[group](row), []).append(row)
        sums = [(key, _sums(members)) for key, members in keyed.items()]
        breakdown += [{"group": group, "key": key, "requests": s["requests"], "errors": s["errors"],
                       "cost_usd": s["cost_usd"], "total_tokens": s["total_tokens"]}
                      for key, s in sorted(sums, key=lambda ks: (-ks[1]["requests"], ks[0]))]
    first = int(since // bucket * bucket)
    buckets: dict[int, list[dict[str, Any]]] = {start: [] for start in range(first, int(now) + 1, bucket)}
    for row in rows:
        buckets.setdefault(int(row["created_at"] // bucket * bucket), []).append(row)
    timeseries = []
    for start in sorted(buckets):
        s = _sums(buckets[start])
        timeseries.append({"bucket": iso(start), "requests": s["requests"], "errors": s["errors"],
                           "cost_usd": s["cost_usd"], "total_tokens": s["total_tokens"]})
    return {"range": range_name, "since": iso(since), "until": iso(now), "bucket_seconds": bucket,
            "totals": totals, "breakdown": breakdown, "timeseries": timeseries}


def me_report(store: Store, token: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The calling token: name, masked id, project, policy names, scopes and spend so far."""
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    rows = token_rows(store, token["ref"], 0.0)
    everything = _sums(rows)
    policies = [p["name"] for p in store.policies_by_ids(token["policy_ids"] or [])]
    scopes = token.get("scopes")
    return {
        "name": token["name"], "token_id": mask(token["token"]), "ref": token["ref"],
        "project_id": token.get("project_id") or DEFAULT_PROJECT, "policies": policies,
        "scopes": scopes if isinstance(scopes, list) else [], "upstream_url": scrub(token["upstream_url"]),
        "created_at": iso(token["created_at"]),
        "spend": {
            "total_usd": everything["cost_usd"],
            "today_usd": _sums([r for r in rows if r["created_at"] >= today.timestamp()])["cost_usd"],
            "month_usd": _sums([r for r in rows if r["created_at"] >= month.timestamp()])["cost_usd"],
            "requests": everything["requests"], "prompt_tokens": everything["prompt_tokens"],
            "completion_tokens": everything["completion_tokens"],
        },
    }


def data_plane_routes(emu: Emulator) -> list[Route]:
    """``GET /v1/metrics`` and ``GET /v1/me`` (virtual-token auth, the calling token's data only)."""

    async def metrics(request: Request) -> Response:
        rid = request.state.request_id = new_request_id()
        token = emu.auth_token(request)
        range_name = request.query_params.get("range", "24h")
        if range_name not in RANGES:
            raise GatewayError(422, "validation_error", f"range must be one of {', '.join(RANGES)}")
        group_by = request.query_params.get("group_by") or None
        if group_by is not None and group_by not in GROUPS:
            raise GatewayError(422, "validation_error", f"group_by must be one of {', '.join(GROUPS)}")
        return JSONResponse(metrics_report(emu.store, token["ref"], range_name, group_by),
                            headers={"x-request-id": rid})

    async def me(request: Request) -> Response:
        rid = request.state.request_id = new_request_id()
        return JSONResponse(me_report(emu.store, emu.auth_token(request)), headers={"x-request-id": rid})

    return [Route("/v1/metrics", metrics, methods=["GET"]), Route("/v1/me", me, methods=["GET"])]


# ---------------------------------------------------------------------------------------- management


def _price(doc: dict[str, Any], name: str) -> float:
    value = doc.get(name)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or not 0 <= value <= MAX_PRICE):
        raise GatewayError(422, "validation_error", f"{name} must be a number of USD between 0 and {MAX_PRICE:g}")
    return float(value)


def _model_param(request: Request) -> str:
    model = request.path_params["model"]
    if not model.strip() or len(model) > MAX_MODEL_CHARS or any(ord(c) < 0x20 for c in model):
        raise GatewayError(422, "validation_error", f"model must be 1-{MAX_MODEL_CHARS} visible characters")
    return str(model)


def pricing_routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    """``(path under /api/v1, handler, methods)`` of the price table (served behind the management auth)."""
    store = emu.store

    async def list_prices(request: Request) -> Response:
        return JSONResponse(price_entries(store))

    async def get_price(request: Request) -> Response:
        entry = price_of(store, _model_param(request))
        if entry is None:
            raise GatewayError(404, "not_found", "No price for this model")
        return JSONResponse(entry)

    async def put_price(request: Request) -> Response:
        model = _model_param(request)
        doc = await emu.json_body(request)
        input_price, output_price = _price(doc, "input_per_1k_usd"), _price(doc, "output_per_1k_usd")
        provider = doc.get("provider")
        if provider is not None and (not isinstance(provider, str) or not 0 < len(provider) <= 64):
            raise GatewayError(422, "validation_error", "provider must be a string of 1-64 characters")
        store._exec("INSERT OR REPLACE INTO pricing (model, input_per_1k_usd, output_per_1k_usd, provider, "
                    "updated_at) VALUES (?, ?, ?, ?, ?)", (model, input_price, output_price, provider, time.time()))
        return JSONResponse(_entry(model, input_price, output_price, provider, "custom"))

    async def delete_price(request: Request) -> Response:
        model = _model_param(request)
        if store._exec("DELETE FROM pricing WHERE model = ?", (model,)) == 0:
            raise GatewayError(404, "not_found", "No price was set for this model")
        fallback = price_of(store, model)
        return JSONResponse(fallback if fallback is not None else {
            "model": model, "input_per_1k_usd": 0.0, "output_per_1k_usd": 0.0, "provider": provider_of(model),
            "source": "none", "currency": "USD"})

    return [
        ("/pricing", list_prices, ["GET"]),
        ("/pricing/{model:path}", get_price, ["GET"]),
        ("/pricing/{model:path}", put_price, ["PUT"]),
        ("/pricing/{model:path}", delete_price, ["DELETE"]),
    ]


__all__ = ["COST_HEADER", "DEFAULT_PRICES", "Meter", "cost_usd", "data_plane_routes", "decimal_text", "install",
           "me_report", "metrics_report", "price_entries", "price_of", "pricing_routes", "provider_of"]
