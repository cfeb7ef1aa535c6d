"""Projects."""

from __future__ import annotations

from typing import Any

from ailink.resources._base import (
    AsyncResource,
    Call,
    SyncResource,
    as_dict,
    as_list,
    async_method,
    nothing,
    seg,
    sync_method,
)

__all__ = ["AsyncProjectsResource", "ProjectsResource"]


def _list() -> Call[list[dict[str, Any]]]:
    """The projects."""
    return Call("GET", "/api/v1/projects", as_list)


def _create(name: str) -> Call[dict[str, Any]]:
    """Create a project."""
    return Call("POST", "/api/v1/projects", as_dict, json={"name": name})


def _delete(project_id: str) -> Call[None]:
    """Delete a project."""
    return Call("DELETE", f"/api/v1/projects/{seg(project_id)}", nothing)


class ProjectsResource(SyncResource):
    """``client.projects``."""

    list = sync_method(_list)
    create = sync_method(_create)
    delete = sync_method(_delete)


class AsyncProjectsResource(AsyncResource):
    """``client.projects`` of an :class:`~ailink.AsyncClient`."""

    list = async_method(_list)
    create = async_method(_create)
    delete = async_method(_delete)
