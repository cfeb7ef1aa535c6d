"""AIlink agent toolkit: a client for the AIlink gateway and the core every framework adapter wraps.

``import ailink`` is light: the clients and errors load on first use, and neither openai nor
any agent framework is ever imported by it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # clients
    "AIlinkClient": "ailink._client",
    "AsyncClient": "ailink._client",
    "AdminClient": "ailink._resources",
    "AsyncAdminClient": "ailink._resources",
    "HealthPoller": "ailink._health",
    "AsyncHealthPoller": "ailink._health",
    "ClientConfig": "ailink._config",
    "RetryConfig": "ailink._retry",
    # approvals
    "ApprovalResult": "ailink._approval",
    "ApprovalStatus": "ailink._approval",
    "PendingApproval": "ailink._approval",
    # tracing and idempotency
    "TraceContext": "ailink._tracing",
    "trace": "ailink._tracing",
    "current_trace": "ailink._tracing",
    "span_id_from": "ailink._tracing",
    "span_path_properties": "ailink._tracing",
    "new_span_id": "ailink._tracing",
    "derive_idempotency_key": "ailink._idempotency",
    "canonical_json": "ailink._idempotency",
    "TracingTransport": "ailink._transport",
    "http_client": "ailink._transport",
    "async_http_client": "ailink._transport",
    # tool actions
    "ToolAction": "ailink._tools",
    "CallContext": "ailink._tools",
    "ToolResult": "ailink._tools",
    "ToolOutcome": "ailink._tools",
    "GatewayTool": "ailink._tools",
    "gateway_tool": "ailink._tools",
    # models
    "Token": "ailink._models",
    "TokenCreated": "ailink._models",
    "Credential": "ailink._models",
    "Policy": "ailink._models",
    "Service": "ailink._models",
    "AuditLog": "ailink._models",
    "ApprovalRequest": "ailink._models",
    "ApprovalDecision": "ailink._models",
    "Session": "ailink._models",
    "SessionRequest": "ailink._models",
    # errors
    "AIlinkError": "ailink._errors",
    "APIConnectionError": "ailink._errors",
    "APITimeoutError": "ailink._errors",
    "ApprovalPendingError": "ailink._errors",
    "ApprovalRejectedError": "ailink._errors",
    "ApprovalTimeoutError": "ailink._errors",
    "AuthenticationError": "ailink._errors",
    "BudgetExceededError": "ailink._errors",
    "CircuitOpenError": "ailink._errors",
    "ContentBlockedError": "ailink._errors",
    "GatewayError": "ailink._errors",
    "IdempotencyConflictError": "ailink._errors",
    "IdempotencyKeyReusedError": "ailink._errors",
    "InvalidToolArgumentsError": "ailink._errors",
    "MalformedResponseError": "ailink._errors",
    "NotFoundError": "ailink._errors",
    "PermissionDeniedError": "ailink._errors",
    "PolicyDeniedError": "ailink._errors",
    "RateLimitError": "ailink._errors",
    "SpendCapExceededError": "ailink._errors",
    "UpstreamError": "ailink._errors",
    "SpendCapError": "ailink._errors",
    "PayloadTooLargeError": "ailink._errors",
    "BadRequestError": "ailink._errors",
    "OutcomeUnknownError": "ailink._errors",
    "ValidationError": "ailink._errors",
}

__all__ = [
    "AIlinkClient",
    "AIlinkError",
    "APIConnectionError",
    "APITimeoutError",
    "AdminClient",
    "ApprovalDecision",
    "ApprovalPendingError",
    "ApprovalRejectedError",
    "ApprovalRequest",
    "ApprovalResult",
    "ApprovalStatus",
    "ApprovalTimeoutError",
    "AsyncAdminClient",
    "AsyncClient",
    "AsyncHealthPoller",
    "AuditLog",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CallContext",
    "CircuitOpenError",
    "ClientConfig",
    "ContentBlockedError",
    "Credential",
    "GatewayError",
    "GatewayTool",
    "HealthPoller",
    "IdempotencyConflictError",
    "IdempotencyKeyReusedError",
    "InvalidToolArgumentsError",
    "MalformedResponseError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PayloadTooLargeError",
    "PendingApproval",
    "PermissionDeniedError",
    "Policy",
    "PolicyDeniedError",
    "RateLimitError",
    "RetryConfig",
    "Service",
    "Session",
    "SessionRequest",
    "SpendCapError",
    "SpendCapExceededError",
    "Token",
    "TokenCreated",
    "ToolAction",
    "ToolOutcome",
    "ToolResult",
    "TraceContext",
    "TracingTransport",
    "UpstreamError",
    "ValidationError",
    "__version__",
    "async_http_client",
    "canonical_json",
    "current_trace",
    "derive_idempotency_key",
    "gateway_tool",
    "http_client",
    "new_span_id",
    "span_id_from",
    "span_path_properties",
    "trace",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ailink' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from ailink._approval import (
        ApprovalResult,
        ApprovalStatus,
        PendingApproval,
    )
    from ailink._client import (
        AIlinkClient,
        AsyncClient,
    )
    from ailink._config import (
        ClientConfig,
    )
    from ailink._errors import (
        AIlinkError,
        APIConnectionError,
        APITimeoutError,
        ApprovalPendingError,
        ApprovalRejectedError,
        ApprovalTimeoutError,
        AuthenticationError,
        BadRequestError,
        BudgetExceededError,
        CircuitOpenError,
        ContentBlockedError,
        GatewayError,
        IdempotencyConflictError,
        IdempotencyKeyReusedError,
        InvalidToolArgumentsError,
        MalformedResponseError,
        NotFoundError,
        OutcomeUnknownError,
        PayloadTooLargeError,
        PermissionDeniedError,
        PolicyDeniedError,
        RateLimitError,
        SpendCapError,
        SpendCapExceededError,
        UpstreamError,
        ValidationError,
    )
    from ailink._health import (
        AsyncHealthPoller,
        HealthPoller,
    )
    from ailink._idempotency import (
        canonical_json,
        derive_idempotency_key,
    )
    from ailink._models import (
        ApprovalDecision,
        ApprovalRequest,
        AuditLog,
        Credential,
        Policy,
        Service,
        Session,
        SessionRequest,
        Token,
        TokenCreated,
    )
    from ailink._resources import (
        AdminClient,
        AsyncAdminClient,
    )
    from ailink._retry import (
        RetryConfig,
    )
    from ailink._tools import (
        CallContext,
        GatewayTool,
        ToolAction,
        ToolOutcome,
        ToolResult,
        gateway_tool,
    )
    from ailink._tracing import (
        TraceContext,
        current_trace,
        new_span_id,
        span_id_from,
        span_path_properties,
        trace,
    )
    from ailink._transport import (
        TracingTransport,
        async_http_client,
        http_client,
    )
