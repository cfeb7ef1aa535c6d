"""Batch jobs through the gateway (``/v1/batches``, openai-shaped answers, the virtual token)."""

from __future__ import annotations

from typing import Any

from ailink.resources._base import AsyncResource, Call, SyncResource, as_dict, async_method, body, seg, sync_method

__all__ = ["AsyncBatchesResource", "BatchesResource"]


def _create(
    *, input_file_id: str, endpoint: str, completion_window: str = "24h", metadata: dict[str, str] | None = None
) -> Call[dict[str, Any]]:
    """Start a batch over an uploaded input file (``/v1/files``)."""
    payload = body(input_file_id=input_file_id, endpoint=endpoint, completion_window=completion_window,
                   metadata=metadata)
    return Call("POST", "/v1/batches", as_dict, json=payload, admin=False)


def _retrieve(batch_id: str) -> Call[dict[str, Any]]:
    """One batch."""
    return Call("GET", f"/v1/batches/{seg(batch_id)}", as_dict, admin=False)


def _list(*, after: str | None = None, limit: int = 20) -> Call[dict[str, Any]]:
    """A page of batches (``{"object": "list", "data": [...]}``)."""
    return Call("GET", "/v1/batches", as_dict, params=body(after=after, limit=limit), admin=False)


def _cancel(batch_id: str) -> Call[dict[str, Any]]:
    """Cancel a batch."""
    return Call("POST", f"/v1/batches/{seg(batch_id)}/cancel", as_dict, admin=False)


class BatchesResource(SyncResource):
    """``client.batches``."""

    create = sync_method(_create)
    retrieve = sync_method(_retrieve)
    list = sync_method(_list)
    cancel = sync_method(_cancel)


class AsyncBatchesResource(AsyncResource):
    """``client.batches`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    retrieve = async_method(_retrieve)
    list = async_method(_list)
    cancel = async_method(_cancel)
