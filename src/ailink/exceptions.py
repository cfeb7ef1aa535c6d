"""Every error this toolkit raises, under the names the AIlink SDK documents.

``PermissionError`` is the AIlink SDK's name for a 403 (:class:`PermissionDeniedError`); it is
importable from here only, so it never shadows Python's built-in ``PermissionError`` in
``from ailink import *``.
"""

from __future__ import annotations

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

PermissionError = PermissionDeniedError  # the AIlink SDK's own name, kept for drop-in use

__all__ = [
    "AIlinkError",
    "APIConnectionError",
    "APITimeoutError",
    "ApprovalPendingError",
    "ApprovalRejectedError",
    "ApprovalTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ContentBlockedError",
    "GatewayError",
    "IdempotencyConflictError",
    "IdempotencyKeyReusedError",
    "InvalidToolArgumentsError",
    "MalformedResponseError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PermissionError",
    "PolicyDeniedError",
    "RateLimitError",
    "SpendCapError",
    "SpendCapExceededError",
    "UpstreamError",
    "ValidationError",
]
