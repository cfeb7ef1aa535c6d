"""Management API keys (``ak_live_...``) with a role and scopes."""

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

__all__ = ["ApiKeysResource", "AsyncApiKeysResource"]


def _create(
    name: str,
    role: str,
    scopes: list[str],
    key_prefix: str | None = None,
    org_id: str | None = None,
    user_id: str | None = None,
) -> Call[dict[str, Any]]:
    """Create a key (``role``: ``admin``, ``member`` or ``readonly``); the secret is returned only now."""
    payload = body(name=name, role=role, scopes=list(scopes), key_prefix=key_prefix, org_id=org_id, user_id=user_id)
    return Call("POST", "/api/v1/auth/keys", as_dict, json=payload)


def _list(limit: int = 50, offset: int = 0) -> Call[list[dict[str, Any]]]:
    """The keys (without secrets)."""
    return Call("GET", "/api/v1/auth/keys", as_list, params={"limit": limit, "offset": offset})


def _revoke(key_id: str) -> Call[dict[str, Any]]:
    """Revoke a key."""
    return Call("DELETE", f"/api/v1/auth/keys/{seg(key_id)}", as_dict)


def _whoami() -> Call[dict[str, Any]]:
    """Who the configured key is (``org_id``, ``role``, ``scopes``)."""
    return Call("GET", "/api/v1/auth/whoami", as_dict)


class ApiKeysResource(SyncResource):
    """``client.api_keys``."""

    create = sync_method(_create)
    list = sync_method(_list)
    revoke = sync_method(_revoke)
    whoami = sync_method(_whoami)


class AsyncApiKeysResource(AsyncResource):
    """``client.api_keys`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    revoke = async_method(_revoke)
    whoami = async_method(_whoami)
