"""One error hierarchy for everything the gateway (or the network) can answer."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from ailink._secrets import scrub

__all__ = [
    "AIlinkError",
    "APIConnectionError",
    "APITimeoutError",
    "ApprovalPendingError",
    "ApprovalRejectedError",
    "ApprovalTimeoutError",
    "AuthenticationError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ContentBlockedError",
    "GatewayError",
    "IdempotencyConflictError",
    "IdempotencyKeyReusedError",
    "InvalidToolArgumentsError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyDeniedError",
    "RateLimitError",
    "SpendCapExceededError",
    "UpstreamError",
    "ValidationError",
    "error_from_response",
]

_POLICY_IN_MESSAGE = re.compile(r"[Bb]locked by policy '([^']+)'(?::\s*(.*))?", re.S)

GATEWAY_ERROR_CODES = frozenset(
    {
        "token_not_found",
        "token_revoked",
        "spend_cap_reached",
        "policy_denied",
        "content_blocked",
        "model_access_denied",
        "approval_rejected",
        "approval_not_found",
        "approval_pending",
        "approval_timeout",
        "idempotency_in_progress",
        "idempotency_key_reused",
        "validation_error",
        "rate_limit_exceeded",
        "internal_server_error",
        "upstream_failed",
        "all_upstreams_exhausted",
        "not_found",
        "payload_too_large",
        "invalid_request",
        "forbidden",
        "unauthorized",
    }
)


class AIlinkError(Exception):
    """Base class of every error this toolkit raises for a gateway answer or a network failure."""

    status_code: int | None
    code: str | None
    message: str
    request_id: str | None
    response: httpx.Response | None
    details: dict[str, Any]

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        response: httpx.Response | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = scrub(message)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.response = response
        self.details = dict(details or {})
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None or self.code:
            parts.append(f"(status={self.status_code}, code={self.code}, request_id={self.request_id})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code}, code={self.code!r})"


class GatewayError(AIlinkError):
    """The gateway failed internally (500)."""


class AuthenticationError(AIlinkError):
    """The virtual token or admin key was not accepted by the gateway (401)."""


class SpendCapExceededError(AIlinkError):
    """A spend cap was reached (402)."""


BudgetExceededError = SpendCapExceededError


class PermissionDeniedError(AIlinkError):
    """The gateway refused the request (403)."""


class PolicyDeniedError(PermissionDeniedError):
    """A policy denied the request (403 ``policy_denied``)."""

    @property
    def policy_name(self) -> str | None:
        name = self.details.get("policy")
        return str(name) if name is not None else None

    @property
    def reason(self) -> str:
        return str(self.details.get("reason") or self.message)


class ContentBlockedError(PermissionDeniedError):
    """A guardrail blocked the content of the request (403 ``content_blocked``)."""


class ApprovalRejectedError(PermissionDeniedError):
    """A reviewer rejected the request (403 ``approval_rejected``)."""

    def __init__(self, message: str, *, approval_id: str | None = None, reason: str | None = None, **kw: Any):
        details = dict(kw.pop("details", None) or {})
        details.setdefault("approval_id", approval_id)
        details.setdefault("reason", reason)
        kw.setdefault("code", "approval_rejected")
        kw.setdefault("status_code", 403)
        super().__init__(message, details=details, **kw)

    @property
    def approval_id(self) -> str | None:
        value = self.details.get("approval_id")
        return str(value) if value else None

    @property
    def reason(self) -> str | None:
        value = self.details.get("reason")
        return str(value) if value else None


class NotFoundError(AIlinkError):
    """Not found (404), including an approval id this token may not see."""


class ApprovalTimeoutError(AIlinkError):
    """No decision arrived in time (408 ``approval_timeout``, or the client's own deadline).

    A timed-out approval is never an approval: the action was not performed.
    """

    def __init__(self, message: str, *, approval_id: str | None = None, timeout: float | None = None, **kw: Any):
        details = dict(kw.pop("details", None) or {})
        details.setdefault("approval_id", approval_id)
        details.setdefault("timeout", timeout)
        kw.setdefault("code", "approval_timeout")
        super().__init__(message, details=details, **kw)

    @property
    def approval_id(self) -> str | None:
        value = self.details.get("approval_id")
        return str(value) if value else None

    @property
    def timeout(self) -> float | None:
        value = self.details.get("timeout")
        return float(value) if value is not None else None


class ApprovalPendingError(AIlinkError):
    """The approval is still pending (409 ``approval_pending`` from the result endpoint)."""


class IdempotencyConflictError(AIlinkError):
    """A request with the same idempotency key is still in flight (409)."""


class ValidationError(AIlinkError):
    """The gateway rejected the request as invalid (422)."""


class IdempotencyKeyReusedError(ValidationError):
    """The idempotency key was already used for a different request (422)."""


class RateLimitError(AIlinkError):
    """Rate limited (429); ``retry_after`` is in seconds when the gateway said."""

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retry_after")
        return float(value) if value is not None else None


class UpstreamError(AIlinkError):
    """The upstream failed (502) or answered with an error of its own (any status)."""


class CircuitOpenError(AIlinkError):
    """Every upstream is unavailable (503 ``all_upstreams_exhausted``)."""


class APIConnectionError(AIlinkError):
    """The gateway could not be reached, or the connection failed, after retries."""


class APITimeoutError(APIConnectionError):
    """The request timed out after retries."""


class MalformedResponseError(AIlinkError):
    """The gateway answered something this client cannot interpret."""


class InvalidToolArgumentsError(ValueError):
    """Arguments given to a tool action are invalid; nothing was sent."""


_BY_CODE: dict[str, type[AIlinkError]] = {
    "token_not_found": AuthenticationError,
    "token_revoked": AuthenticationError,
    "spend_cap_reached": SpendCapExceededError,
    "policy_denied": PolicyDeniedError,
    "content_blocked": ContentBlockedError,
    "model_access_denied": PermissionDeniedError,
    "approval_rejected": ApprovalRejectedError,
    "approval_not_found": NotFoundError,
    "approval_pending": ApprovalPendingError,
    "approval_timeout": ApprovalTimeoutError,
    "idempotency_in_progress": IdempotencyConflictError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "rate_limit_exceeded": RateLimitError,
    "internal_server_error": GatewayError,
    "upstream_failed": UpstreamError,
    "all_upstreams_exhausted": CircuitOpenError,
}

_BY_STATUS: dict[int, type[AIlinkError]] = {
    401: AuthenticationError,
    402: SpendCapExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: ApprovalTimeoutError,
    409: IdempotencyConflictError,
    422: ValidationError,
    429: RateLimitError,
    500: GatewayError,
    502: UpstreamError,
    503: CircuitOpenError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


#: The AIlink gateway marks responses that came from an upstream with its circuit-breaker state.
_UPSTREAM_MARKERS = ("x-ailink-cb-state", "x-trueflow-cb-state")


def is_gateway_error(response: httpx.Response) -> bool:
    """True when the error body was written by the gateway itself, not passed through from upstream."""
    if any(marker in response.headers for marker in _UPSTREAM_MARKERS):
        return False
    body = _error_body(response)
    return body is not None and body.get("code") in GATEWAY_ERROR_CODES


def error_from_response(response: httpx.Response) -> AIlinkError:
    """Build the typed error for an error ``response`` (status >= 400), per protocol §3."""
    status = response.status_code
    body = _error_body(response)
    if body is None or not is_gateway_error(response):
        # An upstream error passed through: never an AuthenticationError, even for 401.
        text = response.text[:500] if response.content else ""
        return UpstreamError(
            f"Upstream answered HTTP {status}: {text}".rstrip(": "),
            status_code=status,
            code=str(body.get("code")) if body and body.get("code") else None,
            request_id=response.headers.get("x-request-id"),
            response=response,
            details={"upstream": True},
        )
    code = str(body["code"])
    message = scrub(str(body.get("message") or f"HTTP {status}"))
    details = dict(body.get("details") or {}) if isinstance(body.get("details"), dict) else {}
    request_id = body.get("request_id") or response.headers.get("x-request-id")
    if code == "policy_denied":
        match = _POLICY_IN_MESSAGE.search(message)
        if match:
            details.setdefault("policy", match.group(1))
            if match.group(2):
                details.setdefault("reason", match.group(2).strip())
    if status == 429 or code == "rate_limit_exceeded":
        details.setdefault("retry_after", parse_retry_after(response.headers.get("retry-after")))
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or AIlinkError
    if cls is ValidationError and status != 422:
        cls = _BY_STATUS.get(status, AIlinkError)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "request_id": str(request_id) if request_id else None,
        "response": response,
        "details": details,
    }
    if cls is ApprovalRejectedError:
        return ApprovalRejectedError(
            message,
            approval_id=details.get("approval_id") or response.headers.get("x-ailink-approval-id"),
            reason=details.get("reason"),
            **kwargs,
        )
    if cls is ApprovalTimeoutError:
        return ApprovalTimeoutError(
            message,
            approval_id=details.get("approval_id") or response.headers.get("x-ailink-approval-id"),
            **kwargs,
        )
    return cls(message, **kwargs)
