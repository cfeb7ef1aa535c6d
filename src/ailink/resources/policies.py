"""Policies: deny, rate-limit or require a human approval for matching requests (protocol §8)."""

from __future__ import annotations

from typing import Any

from ailink._models import Policy, PolicyCreateResponse
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

__all__ = ["AsyncPoliciesResource", "PoliciesResource"]


def _create(
    name: str,
    rules: list[dict[str, Any]],
    mode: str = "enforce",
    phase: str = "pre",
    retry: dict[str, Any] | None = None,
    project_id: str | None = None,
) -> Call[PolicyCreateResponse]:
    """Create a policy. Rules are ``{"when": condition, "then": action}``; ``mode`` is ``enforce`` or ``shadow``."""
    payload = body(name=name, rules=rules, mode=mode, phase=phase, retry=retry, project_id=project_id)
    return Call("POST", "/api/v1/policies", one(PolicyCreateResponse, name=name, mode=mode, phase=phase),
                json=payload)


def _list(project_id: str | None = None) -> Call[list[Policy]]:
    """The policies."""
    return Call("GET", "/api/v1/policies", many(Policy), params=body(project_id=project_id))


def _get(policy_id: str) -> Call[Policy]:
    """One policy."""
    return Call("GET", f"/api/v1/policies/{seg(policy_id)}", one(Policy))


def _update(
    policy_id: str,
    name: str | None = None,
    mode: str | None = None,
    phase: str | None = None,
    retry: dict[str, Any] | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> Call[dict[str, Any]]:
    """Change the given fields of a policy."""
    payload = body(name=name, mode=mode, phase=phase, retry=retry, rules=rules)
    return Call("PUT", f"/api/v1/policies/{seg(policy_id)}", as_dict, json=payload)


def _delete(policy_id: str) -> Call[dict[str, Any]]:
    """Delete a policy."""
    return Call("DELETE", f"/api/v1/policies/{seg(policy_id)}", as_dict)


class PoliciesResource(SyncResource):
    """``client.policies``."""

    create = sync_method(_create)
    list = sync_method(_list)
    get = sync_method(_get)
    update = sync_method(_update)
    delete = sync_method(_delete)


class AsyncPoliciesResource(AsyncResource):
    """``client.policies`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    get = async_method(_get)
    update = async_method(_update)
    delete = async_method(_delete)
