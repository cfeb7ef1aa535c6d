"""Sessions: the requests of one agent run, with their span tree; pause or complete a run."""

from __future__ import annotations

from typing import Any

from ailink._models import Session
from ailink.resources._base import (
    AsyncResource,
    Call,
    SyncResource,
    as_dict,
    async_method,
    body,
    many,
    one,
    seg,
    sync_method,
)

__all__ = ["AsyncSessionsResource", "SessionsResource"]


def _list(limit: int | None = None, offset: int | None = None) -> Call[list[Session]]:
    """Session summaries."""
    return Call("GET", "/api/v1/sessions", many(Session), params=body(limit=limit, offset=offset))


def _get(session_id: str) -> Call[Session]:
    """A session's summary with its requests (each with ``parent_span_id``)."""
    return Call("GET", f"/api/v1/sessions/{seg(session_id)}", one(Session))


def _set_status(session_id: str, status: str) -> Call[dict[str, Any]]:
    """``active``, ``paused`` or ``completed``; requests in a non-active session are refused."""
    return Call("PATCH", f"/api/v1/sessions/{seg(session_id)}/status", as_dict, json={"status": status})


def _set_spend_cap(session_id: str, spend_cap_usd: float | None, *, mode: str | None = None) -> Call[dict[str, Any]]:
    """Cap what one session (one agent run) may spend, in USD (``None`` removes the cap); its requests
    get 402 (:class:`~ailink.BudgetExceededError`) once it is spent. Returns the session entity
    (``spend_cap_usd``, totals). The session must exist (have made a request)."""
    payload: dict[str, Any] = {"spend_cap_usd": spend_cap_usd}
    if mode is not None:
        payload["mode"] = mode
    return Call("PUT", f"/api/v1/sessions/{seg(session_id)}/spend-cap", as_dict, json=payload)


class SessionsResource(SyncResource):
    """``client.sessions``."""

    list = sync_method(_list)
    get = sync_method(_get)
    set_status = sync_method(_set_status)
    set_spend_cap = sync_method(_set_spend_cap)


class AsyncSessionsResource(AsyncResource):
    """``client.sessions`` of an :class:`~ailink.AsyncClient`."""

    list = async_method(_list)
    get = async_method(_get)
    set_status = async_method(_set_status)
    set_spend_cap = async_method(_set_spend_cap)
