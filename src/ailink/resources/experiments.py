"""A/B experiments over models, prompts or routes."""

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

__all__ = ["AsyncExperimentsResource", "ExperimentsResource"]


def _create(
    name: str, variants: list[dict[str, Any]], scope: str = "project", project_id: str | None = None
) -> Call[dict[str, Any]]:
    """Start an experiment; each variant has ``name``, ``weight`` and ``set_body_fields``."""
    payload = body(name=name, variants=variants, scope=scope, project_id=project_id)
    return Call("POST", "/api/v1/experiments", as_dict, json=payload)


def _list(project_id: str | None = None) -> Call[list[dict[str, Any]]]:
    """The experiments."""
    return Call("GET", "/api/v1/experiments", as_list, params=body(project_id=project_id))


def _results(experiment_id: str) -> Call[dict[str, Any]]:
    """Results per variant (usage, latency, cost)."""
    return Call("GET", f"/api/v1/experiments/{seg(experiment_id)}/results", as_dict)


def _stop(experiment_id: str) -> Call[dict[str, Any]]:
    """Stop an experiment."""
    return Call("POST", f"/api/v1/experiments/{seg(experiment_id)}/stop", as_dict)


class ExperimentsResource(SyncResource):
    """``client.experiments``."""

    create = sync_method(_create)
    list = sync_method(_list)
    results = sync_method(_results)
    stop = sync_method(_stop)


class AsyncExperimentsResource(AsyncResource):
    """``client.experiments`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    results = async_method(_results)
    stop = async_method(_stop)
