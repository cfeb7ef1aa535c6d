"""Usage and billing of the organisation."""

from __future__ import annotations

from typing import Any

from ailink.resources._base import AsyncResource, Call, SyncResource, as_dict, async_method, body, sync_method

__all__ = ["AsyncBillingResource", "BillingResource"]


def _get_usage(period: str | None = None) -> Call[dict[str, Any]]:
    """Usage of a billing period (``YYYY-MM-DD``; the current one by default)."""
    return Call("GET", "/api/v1/billing/usage", as_dict, params=body(period=period))


class BillingResource(SyncResource):
    """``client.billing`` (also callable, ``client.billing()``, as the AIlink SDK spells it)."""

    get_usage = sync_method(_get_usage)

    def __call__(self) -> BillingResource:
        return self


class AsyncBillingResource(AsyncResource):
    """``client.billing`` of an :class:`~ailink.AsyncClient`."""

    get_usage = async_method(_get_usage)

    def __call__(self) -> AsyncBillingResource:
        return self
