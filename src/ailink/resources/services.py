"""Registered services: upstream APIs reached at ``/v1/proxy/services/{name}/...``."""

from __future__ import annotations

from typing import Any

from ailink._models import Service
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

__all__ = ["AsyncServicesResource", "ServicesResource"]


def _create(
    name: str,
    base_url: str,
    description: str = "",
    service_type: str = "generic",
    credential_id: str | None = None,
    project_id: str | None = None,
) -> Call[dict[str, Any]]:
    """Register a service; returns the stored service."""
    payload = body(name=name, base_url=base_url, description=description, service_type=service_type,
                   credential_id=credential_id, project_id=project_id)
    return Call("POST", "/api/v1/services", as_dict, json=payload)


def _list(project_id: str | None = None) -> Call[list[Service]]:
    """The registered services."""
    return Call("GET", "/api/v1/services", many(Service), params=body(project_id=project_id))


def _get(service_id: str) -> Call[Service]:
    """One service."""
    return Call("GET", f"/api/v1/services/{seg(service_id)}", one(Service))


def _delete(service_id: str, project_id: str | None = None) -> Call[dict[str, Any]]:
    """Remove a service."""
    return Call("DELETE", f"/api/v1/services/{seg(service_id)}", as_dict, params=body(project_id=project_id))


class ServicesResource(SyncResource):
    """``client.services``."""

    create = sync_method(_create)
    list = sync_method(_list)
    get = sync_method(_get)
    delete = sync_method(_delete)


class AsyncServicesResource(AsyncResource):
    """``client.services`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    get = async_method(_get)
    delete = async_method(_delete)
