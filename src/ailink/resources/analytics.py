"""Per-token analytics and spend breakdowns."""

from __future__ import annotations

from typing import Any

from ailink.resources._base import (
    AsyncResource,
    Call,
    SyncResource,
    as_dict,
    as_list,
    async_method,
    body,
    seg,
    sync_method,
)

__all__ = ["AnalyticsResource", "AsyncAnalyticsResource"]


def _get_token_summary() -> Call[list[dict[str, Any]]]:
    """Usage and performance of every token."""
    return Call("GET", "/api/v1/analytics/tokens", as_list)


def _get_token_volume(token_id: str) -> Call[list[dict[str, Any]]]:
    """Hourly request volume of a token."""
    return Call("GET", f"/api/v1/analytics/tokens/{seg(token_id)}/volume", as_list)


def _get_token_status(token_id: str) -> Call[list[dict[str, Any]]]:
    """Status-code distribution of a token."""
    return Call("GET", f"/api/v1/analytics/tokens/{seg(token_id)}/status", as_list)


def _get_token_latency(token_id: str) -> Call[dict[str, float]]:
    """Latency percentiles of a token."""
    return Call("GET", f"/api/v1/analytics/tokens/{seg(token_id)}/latency", as_dict)


def _spend_breakdown(group_by: str = "model", hours: int = 720, project_id: str | None = None) -> Call[dict[str, Any]]:
    """Spend grouped by ``model``, ``token`` or ``tag:<key>`` (an ``X-Properties`` key) over ``hours``."""
    params = body(group_by=group_by, hours=hours, project_id=project_id)
    return Call("GET", "/api/v1/analytics/spend/breakdown", as_dict, params=params)


class AnalyticsResource(SyncResource):
    """``client.analytics``."""

    get_token_summary = sync_method(_get_token_summary)
    get_token_volume = sync_method(_get_token_volume)
    get_token_status = sync_method(_get_token_status)
    get_token_latency = sync_method(_get_token_latency)
    spend_breakdown = sync_method(_spend_breakdown)


class AsyncAnalyticsResource(AsyncResource):
    """``client.analytics`` of an :class:`~ailink.AsyncClient`."""

    get_token_summary = async_method(_get_token_summary)
    get_token_volume = async_method(_get_token_volume)
    get_token_status = async_method(_get_token_status)
    get_token_latency = async_method(_get_token_latency)
    spend_breakdown = async_method(_spend_breakdown)
