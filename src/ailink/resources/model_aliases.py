"""Model aliases: short names (``"fast"``) that resolve to real models."""

from __future__ import annotations

import builtins
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

__all__ = ["AsyncModelAliasesResource", "ModelAliasesResource"]


def _create(alias: str, model: str, project_id: str | None = None) -> Call[dict[str, Any]]:
    """Map ``alias`` to ``model``."""
    return Call("POST", "/api/v1/model-aliases", as_dict, json=body(alias=alias, model=model, project_id=project_id))


def _list(project_id: str | None = None) -> Call[list[dict[str, Any]]]:
    """The aliases."""
    return Call("GET", "/api/v1/model-aliases", as_list, params=body(project_id=project_id))


def _get(alias: str) -> Call[dict[str, Any]]:
    """One alias."""
    return Call("GET", f"/api/v1/model-aliases/{seg(alias)}", as_dict)


def _delete(alias: str) -> Call[None]:
    """Remove an alias."""
    return Call("DELETE", f"/api/v1/model-aliases/{seg(alias)}", nothing)


class ModelAliasesResource(SyncResource):
    """``client.model_aliases``."""

    create = sync_method(_create)
    list = sync_method(_list)
    get = sync_method(_get)
    delete = sync_method(_delete)

    def bulk_create(self, aliases: dict[str, str], project_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """Create one alias per ``{alias: model}`` entry; returns the created aliases in order."""
        return [self._client._execute(_create(alias, model, project_id)) for alias, model in aliases.items()]


class AsyncModelAliasesResource(AsyncResource):
    """``client.model_aliases`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    get = async_method(_get)
    delete = async_method(_delete)

    async def bulk_create(
        self, aliases: dict[str, str], project_id: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Create one alias per ``{alias: model}`` entry; returns the created aliases in order."""
        return [await self._client._aexecute(_create(alias, model, project_id)) for alias, model in aliases.items()]
