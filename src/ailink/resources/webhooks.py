"""Webhook subscriptions."""

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
    nothing,
    seg,
    sync_method,
)

__all__ = ["AsyncWebhooksResource", "WebhooksResource"]


def _create(url: str, events: list[str] | None = None, secret: str | None = None, *,
            payload_format: str | None = None) -> Call[dict[str, Any]]:
    """Subscribe ``url`` to ``events`` (all when omitted); ``secret`` signs the deliveries (check them
    with :func:`ailink.verify_webhook`). ``payload_format="slack"`` sends Slack incoming-webhook
    messages instead of the JSON event (emulator)."""
    return Call("POST", "/api/v1/webhooks", as_dict,
                json=body(url=url, events=events, signing_secret=secret, format=payload_format))


def _list() -> Call[list[dict[str, Any]]]:
    """The subscriptions."""
    return Call("GET", "/api/v1/webhooks", as_list)


def _get(webhook_id: str) -> Call[dict[str, Any]]:
    """One subscription."""
    return Call("GET", f"/api/v1/webhooks/{seg(webhook_id)}", as_dict)


def _delete(webhook_id: str) -> Call[None]:
    """Remove a subscription."""
    return Call("DELETE", f"/api/v1/webhooks/{seg(webhook_id)}", nothing)


def _test(webhook_id: str) -> Call[dict[str, Any]]:
    """Send a test event; returns the delivery result."""
    return Call("POST", f"/api/v1/webhooks/{seg(webhook_id)}/test", as_dict)


def _deliveries(webhook_id: str, limit: int = 50, offset: int = 0) -> Call[list[dict[str, Any]]]:
    """The delivery log, newest first: each delivery's event, status (``pending``, ``delivered``,
    ``failed``), attempts, last answer status and error, and the payload sent."""
    return Call("GET", f"/api/v1/webhooks/{seg(webhook_id)}/deliveries", as_list,
                params={"limit": limit, "offset": offset})


class WebhooksResource(SyncResource):
    """``client.webhooks``."""

    create = sync_method(_create)
    list = sync_method(_list)
    get = sync_method(_get)
    delete = sync_method(_delete)
    test = sync_method(_test)
    deliveries = sync_method(_deliveries)


class AsyncWebhooksResource(AsyncResource):
    """``client.webhooks`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    get = async_method(_get)
    delete = async_method(_delete)
    test = async_method(_test)
    deliveries = async_method(_deliveries)
