"""Upstream credentials (stored in the gateway's vault; secrets are never returned)."""

from __future__ import annotations

from typing import Any

from ailink._models import Credential, CredentialCreateResponse
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

__all__ = ["AsyncCredentialsResource", "CredentialsResource"]


def _create(
    name: str,
    provider: str,
    secret: str,
    project_id: str | None = None,
    injection_mode: str | None = None,
    injection_header: str | None = None,
    **extra: Any,
) -> Call[CredentialCreateResponse]:
    """Store a credential. ``injection_mode``: ``bearer`` (default), ``basic``, ``header`` or ``query``."""
    payload = body(name=name, provider=provider, secret=secret, project_id=project_id, injection_mode=injection_mode,
                   injection_header=injection_header, **extra)
    return Call("POST", "/api/v1/credentials", one(CredentialCreateResponse, name=name, provider=provider),
                json=payload)


def _list(project_id: str | None = None) -> Call[list[Credential]]:
    """The stored credentials (without secrets)."""
    return Call("GET", "/api/v1/credentials", many(Credential), params=body(project_id=project_id))


def _delete(credential_id: str) -> Call[dict[str, Any]]:
    """Delete a credential."""
    return Call("DELETE", f"/api/v1/credentials/{seg(credential_id)}", as_dict)


def _rotate(credential_id: str, secret: str) -> Call[dict[str, Any]]:
    """Replace a credential's secret, keeping its id (tokens and pools that use it follow);
    returns ``{id, name, version, message}``, never the secret."""
    return Call("POST", f"/api/v1/credentials/{seg(credential_id)}/rotate", as_dict, json={"secret": secret})


class CredentialsResource(SyncResource):
    """``client.credentials``."""

    create = sync_method(_create)
    list = sync_method(_list)
    delete = sync_method(_delete)
    rotate = sync_method(_rotate)


class AsyncCredentialsResource(AsyncResource):
    """``client.credentials`` of an :class:`~ailink.AsyncClient`."""

    create = async_method(_create)
    list = async_method(_list)
    delete = async_method(_delete)
    rotate = async_method(_rotate)
