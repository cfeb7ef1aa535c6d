"""The models management calls return (pydantic, readable as objects and as mappings), and
:class:`Upstream` for ``tokens.create(upstreams=[...])``."""

from ailink._models import (
    ApprovalDecision,
    ApprovalRequest,
    AuditLog,
    Credential,
    CredentialCreateResponse,
    Policy,
    PolicyCreateResponse,
    RequestSummary,
    Response,
    Service,
    Session,
    SessionRequest,
    Token,
    TokenCreated,
    TokenCreateResponse,
    Upstream,
)

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
