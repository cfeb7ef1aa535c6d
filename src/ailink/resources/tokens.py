"""Virtual tokens: create, list, revoke, circuit breakers, upstream health, spend caps, usage, guardrails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from ailink._models import Token, TokenCreateResponse, Upstream
from ailink.resources import guardrails
from ailink.resources._base import (
    AsyncResource,
    Call,
    SyncResource,
    apages,
    as_dict,
    as_list,
    async_method,
    body,
    many,
    nothing,
    one,
    pages,
    seg,
    sync_method,
)

__all__ = ["AsyncTokensResource", "TokensResource"]


def _revoked(data: Any) -> dict[str, Any]:
    return as_dict(data) or {"revoked": True}


def _create(
    name: str,
    upstream_url: str,
    credential_id: str | None = None,
    project_id: str | None = None,
    policy_ids: list[str] | None = None,
    circuit_breaker: dict[str, Any] | None = None,
    fallback_url: str | None = None,
    upstreams: list[Upstream | dict[str, Any]] | None = None,
    log_level: str | None = None,
    **extra: Any,
) -> Call[TokenCreateResponse]:
    """Create a virtual token; the answer's ``token_id`` is the token (a secret).

    Without ``credential_id`` the token is passthrough (agents bring their own key).
    ``log_level`` is ``"metadata"``, ``"redacted"`` or ``"full"``; ``extra`` are further gateway
    fields (``allowed_models``, ``tags``, ...).
    """
    payload = body(
        name=name, upstream_url=upstream_url, credential_id=credential_id, project_id=project_id,
        policy_ids=policy_ids, circuit_breaker=circuit_breaker, fallback_url=fallback_url,
        upstreams=[u.to_dict() if isinstance(u, Upstream) else dict(u) for u in upstreams] if upstreams else None,
        log_level_name=log_level, **extra,
    )
    return Call("POST", "/api/v1/tokens", one(TokenCreateResponse, name=name, upstream_url=upstream_url,
                                               credential_id=credential_id, project_id=project_id), json=payload)


def _list(project_id: str | None = None, *, limit: int | None = None, offset: int | None = None) -> Call[list[Token]]:
    """Tokens, newest first."""
    return Call("GET", "/api/v1/tokens", many(Token), params=body(project_id=project_id, limit=limit, offset=offset))


def _get(token_id: str) -> Call[Token]:
    """One token (by token or by its reference)."""
    return Call("GET", f"/api/v1/tokens/{seg(token_id)}", one(Token))


def _update(token_id: str, **fields: Any) -> Call[dict[str, Any]]:
    """Change fields of a token (``name``, ``policy_ids``, ``is_active``, ...)."""
    return Call("PATCH", f"/api/v1/tokens/{seg(token_id)}", as_dict, json=fields)


def _revoke(token_id: str) -> Call[dict[str, Any]]:
    """Revoke (soft-delete) a token; its requests are refused from now on."""
    return Call("DELETE", f"/api/v1/tokens/{seg(token_id)}", _revoked)


def _upstream_health() -> Call[list[dict[str, Any]]]:
    """Circuit-breaker health of every upstream of every active token (``token_id``, ``url``,
    ``is_healthy``, ``failure_count``, ``cooldown_remaining_secs``; the emulator adds ``state``,
    ``weight``, ``priority``, ``in_flight``, ``requests`` and ``failures``)."""
    return Call("GET", "/api/v1/health/upstreams", as_list)


def _get_circuit_breaker(token_id: str) -> Call[dict[str, Any]]:
    """A token's circuit-breaker configuration."""
    return Call("GET", f"/api/v1/tokens/{seg(token_id)}/circuit-breaker", as_dict)


def _set_circuit_breaker(
    token_id: str,
    *,
    enabled: bool = True,
    failure_threshold: int = 3,
    recovery_cooldown_secs: int = 30,
    half_open_max_requests: int = 1,
    failure_rate_threshold: float | None = None,
    min_sample_size: int | None = None,
) -> Call[dict[str, Any]]:
    """Replace a token's circuit-breaker configuration; returns it as stored.

    ``failure_threshold`` consecutive failures open a target's circuit; with
    ``failure_rate_threshold`` (0..1] that share of failures among the last ``min_sample_size``
    outcomes opens it too. An open target is skipped for ``recovery_cooldown_secs``, then
    ``half_open_max_requests`` probes at a time decide whether it closes again.
    """
    config = body(enabled=enabled, failure_threshold=failure_threshold, recovery_cooldown_secs=recovery_cooldown_secs,
                  half_open_max_requests=half_open_max_requests, failure_rate_threshold=failure_rate_threshold,
                  min_sample_size=min_sample_size)
    return Call("PATCH", f"/api/v1/tokens/{seg(token_id)}/circuit-breaker", as_dict, json=config)


def _get_spend(token_id: str) -> Call[dict[str, Any]]:
    """A token's spend caps and what it spent: ``{daily,monthly,lifetime}_limit_usd`` (``None`` without a
    cap) and ``current_{daily,monthly,lifetime}_usd``; the emulator adds ``caps`` (mode, remaining, reset)."""
    return Call("GET", f"/api/v1/tokens/{seg(token_id)}/spend", as_dict)


def _set_spend_cap(token_id: str, period: str, limit_usd: float, *, mode: str | None = None) -> Call[None]:
    """Cap a token's spend per ``period`` (``"daily"``, ``"monthly"``, ``"lifetime"``; UTC) at
    ``limit_usd`` (> 0). Over the cap its requests get 402 (:class:`~ailink.BudgetExceededError`);
    ``mode="shadow"`` (emulator) only warns (``x-ailink-warning``)."""
    return Call("PUT", f"/api/v1/tokens/{seg(token_id)}/spend", nothing,
                json=body(period=period, limit_usd=limit_usd, mode=mode))


def _delete_spend_cap(token_id: str, period: str) -> Call[None]:
    """Remove a token's spend cap for ``period``."""
    return Call("DELETE", f"/api/v1/tokens/{seg(token_id)}/spend/{seg(period)}", nothing)


def _usage(token_id: str) -> Call[dict[str, Any]]:
    """What a token used per window (``hour``, ``day``, ``month``, ``lifetime``): requests, tokens, spend,
    the cap and what is left, a ``capacity_state`` (``abundant``/``constrained``/``critical``/``exhausted``)
    and ``predicted_exhaustion_at`` at the current rate (an emulator extension)."""
    return Call("GET", f"/api/v1/tokens/{seg(token_id)}/usage", as_dict)


def _enable_guardrails(
    token_id: str,
    presets: list[str],
    topic_allowlist: list[str] | None = None,
    topic_denylist: list[str] | None = None,
) -> Call[dict[str, Any]]:
    """Attach guardrail presets to a token (as ``guardrails.enable``)."""
    return guardrails._enable(token_id, presets, topic_allowlist=topic_allowlist, topic_denylist=topic_denylist)


def _disable_guardrails(token_id: str, prefix: str | None = None) -> Call[dict[str, Any]]:
    """Remove guardrail policies from a token (as ``guardrails.disable``)."""
    return guardrails._disable(token_id, policy_name_prefix=prefix)


class TokensResource(SyncResource):
    """``client.tokens``."""

    create = sync_method(_create)
    list = sync_method(_list)
    get = sync_method(_get)
    update = sync_method(_update)
    revoke = sync_method(_revoke)
    delete = revoke
    upstream_health = sync_method(_upstream_health)
    get_circuit_breaker = sync_method(_get_circuit_breaker)
    set_circuit_breaker = sync_method(_set_circuit_breaker)
    get_spend = sync_method(_get_spend)
    set_spend_cap = sync_method(_set_spend_cap)
    delete_spend_cap = sync_method(_delete_spend_cap)
    usage = sync_method(_usage)
    enable_guardrails = sync_method(_enable_guardrails)
    disable_guardrails = sync_method(_disable_guardrails)

    def list_all(self, project_id: str | None = None, batch_size: int = 100) -> Iterator[Token]:
        """Every token, fetched ``batch_size`` at a time."""
        return pages(lambda limit, offset: self._client._execute(_list(project_id, limit=limit, offset=offset)),
                     batch_size)


class AsyncTokensResource(AsyncResource):
    """``client.tokens`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    get = async_method(_get)
    update = async_method(_update)
    revoke = async_method(_revoke)
    delete = revoke
    upstream_health = async_method(_upstream_health)
    get_circuit_breaker = async_method(_get_circuit_breaker)
    set_circuit_breaker = async_method(_set_circuit_breaker)
    get_spend = async_method(_get_spend)
    set_spend_cap = async_method(_set_spend_cap)
    delete_spend_cap = async_method(_delete_spend_cap)
    usage = async_method(_usage)
    enable_guardrails = async_method(_enable_guardrails)
    disable_guardrails = async_method(_disable_guardrails)

    def list_all(self, project_id: str | None = None, batch_size: int = 100) -> AsyncIterator[Token]:
        """Every token, fetched ``batch_size`` at a time (``async for``)."""
        return apages(lambda limit, offset: self._client._aexecute(_list(project_id, limit=limit, offset=offset)),
                      batch_size)
