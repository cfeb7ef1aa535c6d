"""Pydantic models of management-API data. Unknown fields are kept, never rejected.

Every model reads like an object and like a read-only mapping (``m.id``, ``m["id"]``,
``"id" in m``, ``m.get("id")``, ``dict(m)``), as the AIlink SDK's models do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ailink._secrets import mask

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "AuditLog",
    "Credential",
    "CredentialCreateResponse",
    "Policy",
    "PolicyCreateResponse",
    "RequestSummary",
    "Response",
    "Service",
    "Session",
    "SessionRequest",
    "Token",
    "TokenCreateResponse",
    "TokenCreated",
    "Upstream",
]


class _Model(BaseModel):
    """Base of every model: tolerant of unknown fields, readable as a mapping."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in type(self).model_fields or key in (self.model_extra or {}))

    def get(self, key: str, default: Any = None) -> Any:
        """The value of field ``key``, or ``default`` when the model has no such field."""
        if key in self:
            return getattr(self, key)
        return default

    def keys(self) -> list[str]:
        """The field names (declared ones first, then the unknown fields the gateway sent)."""
        return [*type(self).model_fields, *(self.model_extra or {})]


class Token(_Model):
    """A virtual token. ``id`` is the token itself (a secret): it is masked in ``repr``."""

    id: str = Field(repr=False)
    name: str | None = None
    credential_id: str | None = None
    upstream_url: str | None = None
    project_id: str | None = None
    policy_ids: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    is_active: bool = True
    created_at: str | None = None

    def __repr_args__(self) -> Any:
        yield "id", mask(self.id)
        yield from ((k, v) for k, v in super().__repr_args__() if k not in ("id", None))


class TokenCreateResponse(_Model):
    """The answer to creating a token: ``token_id`` (also ``id``) is the new virtual token, a secret."""

    token_id: str = Field(repr=False)
    id: str = Field(default="", repr=False)
    name: str | None = None
    upstream_url: str | None = None
    credential_id: str | None = None
    project_id: str | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _id_is_the_token(self) -> TokenCreateResponse:
        if not self.id:
            self.id = self.token_id
        return self

    def __repr_args__(self) -> Any:
        yield "token_id", mask(self.token_id)
        yield "name", self.name


#: Earlier name of :class:`TokenCreateResponse`.
TokenCreated = TokenCreateResponse


class Credential(_Model):
    """A stored upstream credential (its secret is never returned)."""

    id: str
    name: str | None = None
    provider: str | None = None
    injection_mode: str | None = None
    injection_header: str | None = None
    is_active: bool = True
    created_at: str | None = None
    #: Goes up by one at every rotation (the id stays).
    version: int | None = None


class CredentialCreateResponse(_Model):
    """The answer to storing a credential."""

    id: str
    name: str | None = None
    provider: str | None = None
    message: str | None = None


class Policy(_Model):
    """A policy (``rules`` as in protocol §8)."""

    id: str
    name: str
    mode: str = "enforce"
    phase: str = "pre"
    rules: list[dict[str, Any]] = Field(default_factory=list)
    is_active: bool = True
    created_at: str | None = None


class PolicyCreateResponse(_Model):
    """The answer to creating a policy."""

    id: str
    name: str | None = None
    mode: str | None = None
    phase: str | None = None
    message: str | None = None


class Service(_Model):
    """A registered upstream service, reached at ``/v1/proxy/services/{name}/...``."""

    id: str
    name: str
    description: str | None = None
    base_url: str | None = None
    service_type: str | None = None
    credential_id: str | None = None
    is_active: bool = True
    created_at: str | None = None
    updated_at: str | None = None


class RequestSummary(_Model):
    """What an approval is about: the request's method, path, agent, upstream, tool and session."""

    method: str | None = None
    path: str | None = None
    agent: str | None = None
    upstream: str | None = None
    tool_name: str | None = None
    session_id: str | None = None
    body_preview: str | None = None


class ApprovalRequest(_Model):
    """A request waiting for (or past) a human decision. ``token_id`` is masked in ``repr``."""

    id: str
    status: str
    token_id: str | None = Field(default=None, repr=False)
    idempotency_key: str | None = None
    request_summary: RequestSummary = Field(default_factory=RequestSummary)
    reason: str | None = None
    expires_at: str | None = None
    created_at: str | None = None
    reviewed_at: str | None = None
    updated: bool | None = None
    policy: str | None = None
    #: Who decided and through which channel (``inbox``, ``cli``, ``api``, ``sdk``, ``agent``, ``expiry``).
    reviewed_by: str | None = None
    review_channel: str | None = None
    decided_at: str | None = None
    #: The whole request as the gateway will send it (method, path, query, headers, body), secrets hidden.
    request: dict[str, Any] | None = None
    #: The reviewers' page of this approval, when the gateway has one (the emulator's inbox).
    review_url: str | None = None

    @property
    def summary_text(self) -> str:
        """``"POST /v1/charges"``."""
        s = self.request_summary
        return f"{s.method or ''} {s.path or ''}".strip()


class ApprovalDecision(_Model):
    """The answer to a decision; ``updated`` is False when the approval was no longer pending (in a
    bulk decision, an unknown id has ``status`` None and ``get("error")`` ``"approval_not_found"``)."""

    id: str
    status: str | None
    updated: bool


class AuditLog(_Model):
    """One audited request."""

    id: str
    created_at: str | None = None
    method: str | None = None
    path: str | None = None
    status_code: int | None = None
    upstream_status: int | None = None
    response_latency_ms: float | None = None
    latency_ms: float | None = None
    session_id: str | None = None
    parent_span_id: str | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    policy_result: str | None = None
    approval_id: str | None = None
    hitl_required: bool = False
    hitl_decision: str | None = None
    hitl_latency_ms: float | None = None
    fields_redacted: list[str] | None = None
    shadow_violations: list[str] | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    is_streaming: bool | None = None
    cache_hit: bool | None = None
    #: The upstream that served it, how it was chosen and every attempt (pools and dynamic routes).
    upstream_url: str | None = None
    route_strategy: str | None = None
    route_reason: str | None = None
    router_info: dict[str, Any] | None = None


class Response(_Model):
    """A ``{message, data}`` answer."""

    message: str | None = None
    data: Any = None


class SessionRequest(_Model):
    """One request of a session, with its place in the span tree."""

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
    deny_reason: str | None = None
    #: The decision of the request's approval, who made it, through which channel, and why.
    hitl_decision: str | None = None
    reviewed_by: str | None = None
    review_channel: str | None = None
    review_reason: str | None = None
    #: The upstream that served it and, when a pool or a dynamic route chose it, how and why.
    upstream_url: str | None = None
    route_strategy: str | None = None
    route_reason: str | None = None


class Session(_Model):
    """A session's summary and its requests."""

    session_id: str
    status: str | None = None
    total_requests: int | None = None
    first_request_at: str | None = None
    last_request_at: str | None = None
    requests: list[SessionRequest] = Field(default_factory=list)


@dataclass(frozen=True)
class Upstream:
    """One load-balanced upstream of a token (``tokens.create(upstreams=[...])``)."""

    url: str
    weight: int = 100
    priority: int = 1
    credential_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON the gateway expects (``credential_id`` left out when unset)."""
        return {k: v for k, v in asdict(self).items() if v is not None}
