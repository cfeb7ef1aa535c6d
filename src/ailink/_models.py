"""Pydantic models of management-API data. Unknown fields are kept, never rejected."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ailink._secrets import mask

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "AuditLog",
    "Created",
    "Credential",
    "Policy",
    "Service",
    "Session",
    "SessionRequest",
    "Token",
    "TokenCreated",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Token(_Model):
    """A virtual token. ``id`` is the token itself (a secret): it is masked in ``repr``."""

    id: str = Field(repr=False)
    name: str | None = None
    upstream_url: str | None = None
    credential_id: str | None = None
    policy_ids: list[str] = Field(default_factory=list)
    is_active: bool = True
    created_at: str | None = None

    def __repr_args__(self) -> Any:
        yield "id", mask(self.id)
        yield from ((k, v) for k, v in super().__repr_args__() if k not in ("id", None))


class TokenCreated(_Model):
    """The answer to creating a token: ``token_id`` is the new virtual token (a secret)."""

    token_id: str = Field(repr=False)
    name: str | None = None
    message: str | None = None

    def __repr_args__(self) -> Any:
        yield "token_id", mask(self.token_id)
        yield "name", self.name


class Created(_Model):
    """``{id, name, message}`` answers of create calls."""

    id: str
    name: str | None = None
    message: str | None = None


class Credential(_Model):
    """A stored upstream credential (its secret is never returned)."""

    id: str
    name: str | None = None
    provider: str | None = None
    injection_mode: str | None = None
    injection_header: str | None = None
    is_active: bool = True
    created_at: str | None = None


class Policy(_Model):
    id: str
    name: str
    mode: str = "enforce"
    phase: str = "pre"
    rules: list[dict[str, Any]] = Field(default_factory=list)
    is_active: bool = True
    created_at: str | None = None


class Service(_Model):
    id: str
    name: str
    base_url: str | None = None
    description: str | None = None
    service_type: str | None = None
    credential_id: str | None = None
    is_active: bool = True


class ApprovalRequest(_Model):
    id: str
    status: str
    token_id: str | None = Field(default=None, repr=False)
    idempotency_key: str | None = None
    request_summary: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    expires_at: str | None = None
    created_at: str | None = None
    reviewed_at: str | None = None

    @property
    def summary_text(self) -> str:
        s = self.request_summary
        return f"{s.get('method', '')} {s.get('path', '')}".strip()


class ApprovalDecision(_Model):
    id: str
    status: str
    updated: bool


class AuditLog(_Model):
    id: str
    created_at: str | None = None
    method: str | None = None
    path: str | None = None
    status_code: int | None = None
    session_id: str | None = None
    parent_span_id: str | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    policy_result: str | None = None
    approval_id: str | None = None
    latency_ms: float | None = None


class SessionRequest(_Model):
    id: str
    created_at: str | None = None
    method: str | None = None
    path: str | None = None
    status_code: int | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    tool_name: str | None = None
    agent_name: str | None = None
    properties: dict[str, Any] | None = None
    policy_result: str | None = None
    approval_id: str | None = None
    approval_wait_ms: float | None = None
    latency_ms: float | None = None


class Session(_Model):
    session_id: str
    status: str | None = None
    total_requests: int | None = None
    first_request_at: str | None = None
    last_request_at: str | None = None
    requests: list[SessionRequest] = Field(default_factory=list)
