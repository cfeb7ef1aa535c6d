"""The audit log: one row per proxied request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from ailink._models import AuditLog
from ailink.resources._base import (
    AsyncResource,
    Call,
    SyncResource,
    apages,
    async_method,
    body,
    many,
    one,
    pages,
    seg,
    sync_method,
)

__all__ = ["AsyncAuditResource", "AuditResource"]


def _list(
    limit: int | None = 50,
    offset: int | None = 0,
    project_id: str | None = None,
    *,
    session_id: str | None = None,
    agent_name: str | None = None,
    status: int | str | None = None,
) -> Call[list[AuditLog]]:
    """Audit rows, newest first. ``session_id``, ``agent_name`` and ``status`` filter (emulator extension)."""
    params = body(limit=limit, offset=offset, project_id=project_id, session_id=session_id, agent_name=agent_name,
                  status=status)
    return Call("GET", "/api/v1/audit", many(AuditLog), params=params)


def _get(audit_id: str) -> Call[AuditLog]:
    """One audit row with its details."""
    return Call("GET", f"/api/v1/audit/{seg(audit_id)}", one(AuditLog))


class AuditResource(SyncResource):
    """``client.audit``."""

    list = sync_method(_list)
    get = sync_method(_get)

    def list_all(self, project_id: str | None = None, batch_size: int = 100) -> Iterator[AuditLog]:
        """Every audit row, fetched ``batch_size`` at a time."""
        return pages(lambda limit, offset: self._client._execute(_list(limit, offset, project_id)), batch_size)


class AsyncAuditResource(AsyncResource):
    """``client.audit`` of an :class:`~ailink.AsyncClient`."""

    list = async_method(_list)
    get = async_method(_get)

    def list_all(self, project_id: str | None = None, batch_size: int = 100) -> AsyncIterator[AuditLog]:
        """Every audit row, fetched ``batch_size`` at a time (``async for``)."""
        return apages(lambda limit, offset: self._client._aexecute(_list(limit, offset, project_id)), batch_size)
