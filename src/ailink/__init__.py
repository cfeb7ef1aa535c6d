"""AIlink agent toolkit: a client for the AIlink gateway and the core every framework adapter wraps.

``import ailink`` is light: the clients and errors load on first use, and neither openai nor
any agent framework is ever imported by it. The public names are listed once, in ``_EXPORTS``
(name → module); ``__all__`` derives from it, and a test keeps the type-checking imports below in step.
What only framework-adapter authors need lives in :mod:`ailink.adapters`.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # clients
    "AIlinkClient": "ailink._client",
    "Client": "ailink._client",
    "AsyncClient": "ailink._client",
    "AdminClient": "ailink._client",
    "AsyncAdminClient": "ailink._client",
    "HealthPoller": "ailink._health",
    "AsyncHealthPoller": "ailink._health",
    "ClientConfig": "ailink._config",
    "RetryConfig": "ailink._retry",
    # approvals
    "ApprovalResult": "ailink._approval",
    "ApprovalStatus": "ailink._approval",
    "PendingApproval": "ailink._approval",
    # tracing
    "TraceContext": "ailink._tracing",
    "trace": "ailink._tracing",
    "current_trace": "ailink._tracing",
    # what a framework tool's call ended with
    "ToolResult": "ailink._tools",
    "ToolOutcome": "ailink._tools",
    # webhooks
    "verify_webhook": "ailink.webhooks",
    "WebhookVerificationError": "ailink.webhooks",
    # models (also in ailink.types)
    "Token": "ailink._models",
    "TokenCreateResponse": "ailink._models",
    "TokenCreated": "ailink._models",
    "Credential": "ailink._models",
    "CredentialCreateResponse": "ailink._models",
    "Policy": "ailink._models",
    "PolicyCreateResponse": "ailink._models",
    "Service": "ailink._models",
    "AuditLog": "ailink._models",
    "RequestSummary": "ailink._models",
    "ApprovalRequest": "ailink._models",
    "ApprovalDecision": "ailink._models",
    "Response": "ailink._models",
    "Session": "ailink._models",
    "SessionRequest": "ailink._models",
    # LLM calls (models also in ailink.types)
    "ChatStream": "ailink._llm",
    "AsyncChatStream": "ailink._llm",
    "ChatCompletion": "ailink._llm_models",
    "ChatCompletionChunk": "ailink._llm_models",
    "ChatMessage": "ailink._llm_models",
    "Choice": "ailink._llm_models",
    "ChunkChoice": "ailink._llm_models",
    "Delta": "ailink._llm_models",
    "Embedding": "ailink._llm_models",
    "EmbeddingsResponse": "ailink._llm_models",
    "FunctionCall": "ailink._llm_models",
    "MeResponse": "ailink._llm_models",
    "MeSpend": "ailink._llm_models",
    "MetricsBreakdownRow": "ailink._llm_models",
    "MetricsPoint": "ailink._llm_models",
    "MetricsResponse": "ailink._llm_models",
    "MetricsTotals": "ailink._llm_models",
    "ModelInfo": "ailink._llm_models",
    "ModelPricing": "ailink._llm_models",
    "PriceEntry": "ailink._llm_models",
    "StreamChunk": "ailink._llm_models",
    "ToolCall": "ailink._llm_models",
    "Usage": "ailink._llm_models",
    # guardrail presets
    "PRESET_PROMPT_INJECTION": "ailink.resources.guardrails",
    "PRESET_CODE_INJECTION": "ailink.resources.guardrails",
    "PRESET_PII_REDACTION": "ailink.resources.guardrails",
    "PRESET_PII_ENTERPRISE": "ailink.resources.guardrails",
    "PRESET_PII_BLOCK": "ailink.resources.guardrails",
    "PRESET_HIPAA": "ailink.resources.guardrails",
    "PRESET_PCI": "ailink.resources.guardrails",
    "PRESET_TOPIC_FENCE": "ailink.resources.guardrails",
    "PRESET_LENGTH_LIMIT": "ailink.resources.guardrails",
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

#: Adapter-author names that moved to :mod:`ailink.adapters`: still importable from ``ailink`` for
#: one release (with a ``DeprecationWarning``), listed in neither ``__all__`` nor ``dir(ailink)``.
_MOVED_TO_ADAPTERS = frozenset({
    "CallContext", "GatewayTool", "ToolAction", "gateway_tool", "TracingTransport", "http_client",
    "async_http_client", "span_id_from", "span_path_properties", "new_span_id", "derive_idempotency_key",
    "canonical_json",
})

__all__ = [*_EXPORTS, "__version__"]
__version__: str  # the installed distribution's version (resolved by ``__getattr__``, from its metadata)


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed distribution's metadata, on first use
        from ailink._version import __version__

        globals()[name] = __version__
        return __version__
    module = _EXPORTS.get(name)
    if module is None:
        if name not in _MOVED_TO_ADAPTERS:
            raise AttributeError(f"module 'ailink' has no attribute {name!r}")
        warnings.warn(f"ailink.{name} moved to ailink.adapters.{name}; the old name goes away in the next release",
                      DeprecationWarning, stacklevel=2)
        return getattr(import_module("ailink.adapters"), name)
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    # ``X as X`` marks each name as re-exported for type checkers; one statement per module.
    # isort: off
    from ailink._approval import (
        ApprovalResult as ApprovalResult,
        ApprovalStatus as ApprovalStatus,
        PendingApproval as PendingApproval,
    )
    from ailink._client import (
        AdminClient as AdminClient,
        AIlinkClient as AIlinkClient,
        AsyncAdminClient as AsyncAdminClient,
        AsyncClient as AsyncClient,
        Client as Client,
    )
    from ailink._config import (
        ClientConfig as ClientConfig,
    )
    from ailink._errors import (
        AIlinkError as AIlinkError,
        APIConnectionError as APIConnectionError,
        APITimeoutError as APITimeoutError,
        ApprovalPendingError as ApprovalPendingError,
        ApprovalRejectedError as ApprovalRejectedError,
        ApprovalTimeoutError as ApprovalTimeoutError,
        AuthenticationError as AuthenticationError,
        BadRequestError as BadRequestError,
        BudgetExceededError as BudgetExceededError,
        CircuitOpenError as CircuitOpenError,
        ContentBlockedError as ContentBlockedError,
        GatewayError as GatewayError,
        IdempotencyConflictError as IdempotencyConflictError,
        IdempotencyKeyReusedError as IdempotencyKeyReusedError,
        InvalidToolArgumentsError as InvalidToolArgumentsError,
        MalformedResponseError as MalformedResponseError,
        NotFoundError as NotFoundError,
        OutcomeUnknownError as OutcomeUnknownError,
        PayloadTooLargeError as PayloadTooLargeError,
        PermissionDeniedError as PermissionDeniedError,
        PolicyDeniedError as PolicyDeniedError,
        RateLimitError as RateLimitError,
        SpendCapError as SpendCapError,
        SpendCapExceededError as SpendCapExceededError,
        UpstreamError as UpstreamError,
        ValidationError as ValidationError,
    )
    from ailink._health import (
        AsyncHealthPoller as AsyncHealthPoller,
        HealthPoller as HealthPoller,
    )
    from ailink._llm import (
        AsyncChatStream as AsyncChatStream,
        ChatStream as ChatStream,
    )
    from ailink._llm_models import (
        ChatCompletion as ChatCompletion,
        ChatCompletionChunk as ChatCompletionChunk,
        ChatMessage as ChatMessage,
        Choice as Choice,
        ChunkChoice as ChunkChoice,
        Delta as Delta,
        Embedding as Embedding,
        EmbeddingsResponse as EmbeddingsResponse,
        FunctionCall as FunctionCall,
        MeResponse as MeResponse,
        MeSpend as MeSpend,
        MetricsBreakdownRow as MetricsBreakdownRow,
        MetricsPoint as MetricsPoint,
        MetricsResponse as MetricsResponse,
        MetricsTotals as MetricsTotals,
        ModelInfo as ModelInfo,
        ModelPricing as ModelPricing,
        PriceEntry as PriceEntry,
        StreamChunk as StreamChunk,
        ToolCall as ToolCall,
        Usage as Usage,
    )
    from ailink._models import (
        ApprovalDecision as ApprovalDecision,
        ApprovalRequest as ApprovalRequest,
        AuditLog as AuditLog,
        Credential as Credential,
        CredentialCreateResponse as CredentialCreateResponse,
        Policy as Policy,
        PolicyCreateResponse as PolicyCreateResponse,
        RequestSummary as RequestSummary,
        Response as Response,
        Service as Service,
        Session as Session,
        SessionRequest as SessionRequest,
        Token as Token,
        TokenCreated as TokenCreated,
        TokenCreateResponse as TokenCreateResponse,
    )
    from ailink._retry import (
        RetryConfig as RetryConfig,
    )
    from ailink._tools import (
        ToolOutcome as ToolOutcome,
        ToolResult as ToolResult,
    )
    from ailink._tracing import (
        current_trace as current_trace,
        trace as trace,
        TraceContext as TraceContext,
    )
    from ailink.resources.guardrails import (
        PRESET_CODE_INJECTION as PRESET_CODE_INJECTION,
        PRESET_HIPAA as PRESET_HIPAA,
        PRESET_LENGTH_LIMIT as PRESET_LENGTH_LIMIT,
        PRESET_PCI as PRESET_PCI,
        PRESET_PII_BLOCK as PRESET_PII_BLOCK,
        PRESET_PII_ENTERPRISE as PRESET_PII_ENTERPRISE,
        PRESET_PII_REDACTION as PRESET_PII_REDACTION,
        PRESET_PROMPT_INJECTION as PRESET_PROMPT_INJECTION,
        PRESET_TOPIC_FENCE as PRESET_TOPIC_FENCE,
    )
    from ailink.webhooks import (
        verify_webhook as verify_webhook,
        WebhookVerificationError as WebhookVerificationError,
    )
    # isort: on
