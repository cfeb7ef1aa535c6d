"""One error hierarchy for everything the gateway (or the network) can answer.

::

    AIlinkError                      .status_code .code .message .request_id .response
    │                                .idempotency_key .ambiguous (outcome unknown)
    ├── AuthenticationError          401
    ├── SpendCapExceededError        402  (aliases SpendCapError, BudgetExceededError)
    ├── PermissionDeniedError        403  (``ailink.exceptions.PermissionError``)
    │   ├── PolicyDeniedError        403 policy_denied
    │   ├── ContentBlockedError      403 content_blocked
    │   └── ApprovalRejectedError    403 approval_rejected
    ├── NotFoundError                404
    ├── ApprovalTimeoutError         408
    ├── ApprovalPendingError         409 approval_pending
    ├── IdempotencyConflictError     409 idempotency_in_progress
    ├── ValidationError              422 (and other 4xx the gateway calls invalid)
    │   ├── BadRequestError          400
    │   └── IdempotencyKeyReusedError 422 idempotency_key_reused
    ├── PayloadTooLargeError         413
    ├── RateLimitError               429
    ├── GatewayError                 every 5xx
    │   ├── UpstreamError            502, or any error answer written by the upstream
    │   │   └── OutcomeUnknownError  502 outcome_unknown (stored as "may have happened")
    │   └── CircuitOpenError         503 all_upstreams_exhausted
    ├── APIConnectionError           network failure after retries
    │   └── APITimeoutError
    └── MalformedResponseError       an answer this client cannot interpret
"""

from __future__ import annotations

import json
import math
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
    "PolicyDeniedError",
    "RateLimitError",
    "SpendCapError",
    "SpendCapExceededError",
    "UpstreamError",
    "ValidationError",
    "error_from_response",
]

#: Longest message an error carries (the whole answer stays on ``exc.response``).
MAX_MESSAGE_CHARS = 1000

_CAP_IN_MESSAGE = re.compile(r"(?:cap of \$|spend cap \()(\d+(?:\.\d+)?)")
_CURRENT_IN_MESSAGE = re.compile(r"current: \$(\d+(?:\.\d+)?)")
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
        "outcome_unknown",
        "all_upstreams_exhausted",
        "not_found",
        "payload_too_large",
        "invalid_request",
        "invalid_path",
        "invalid_json",
        "forbidden",
        "unauthorized",
    }
)


def cap_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"


class AIlinkError(Exception):
    """Base class of every error this toolkit raises for a gateway answer or a network failure.

    ``idempotency_key`` is the key the request was sent with (re-send with it to learn a stored
    outcome); ``ambiguous`` is True when the action may or may not have happened.
    """

    status_code: int | None
    code: str | None
    message: str
    request_id: str | None
    response: httpx.Response | None
    details: dict[str, Any]
    idempotency_key: str | None
    ambiguous: bool
    #: With ``ambiguous``: the gateway stores outcomes, so re-sending with the key tells what happened.
    resend_tells_outcome: bool

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        response: httpx.Response | None = None,
        details: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        self.message = cap_text(scrub(message))
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.response = response
        self.details = dict(details or {})
        self.idempotency_key = idempotency_key
        self.ambiguous = ambiguous
        self.resend_tells_outcome = False
        super().__init__(self.message)

    @property
    def detail(self) -> str:
        """The human-readable message (the spelling some gateway SDKs use)."""
        return self.message

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None or self.code:
            parts.append(f"(status={self.status_code}, code={self.code}, request_id={self.request_id})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code}, code={self.code!r})"

    def mark_outcome_unknown(self, key: str | None, *, resend_helps: bool) -> None:
        """Say that the action may have happened, and how to learn whether it did.

        ``resend_helps``: the gateway stores outcomes, so re-sending with the key tells.
        """
        self.ambiguous = True
        self.idempotency_key = self.idempotency_key or key
        self.resend_tells_outcome = bool(resend_helps and key)
        if "outcome unknown" in self.message.lower():
            return
        how = (
            "re-send it with the same key to get its stored outcome"
            if resend_helps and key
            else "check with the upstream whether it happened before repeating it"
        )
        named = f" (idempotency key {key!r})" if key else ""
        self.message = (
            f"{cap_text(self.message, 800)} Outcome unknown: the action may have been performed{named}; "
            f"do not repeat it blindly; {how}."
        )
        self.args = (self.message,)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class GatewayError(AIlinkError):
    """The gateway, or what stands behind it, failed (every 5xx)."""


class AuthenticationError(AIlinkError):
    """The virtual token or admin key was not accepted by the gateway (401)."""


class SpendCapExceededError(AIlinkError):
    """A spend cap was reached (402). ``limit``/``current`` (USD) and ``period`` when the gateway says:
    from ``error.details``, else from the real gateway's message (``... spend cap of $X exceeded
    (current: $Y)``, ``... exceeded its spend cap (X USD)``)."""

    def _number(self, *names: str) -> float | None:
        for name in names:
            value = self.details.get(name)
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
        return None

    def _from_message(self, pattern: re.Pattern[str]) -> float | None:
        match = pattern.search(self.message)
        return float(match.group(1)) if match else None

    @property
    def limit(self) -> float | None:
        found = self._number("limit_usd", "limit", "spend_cap_usd")
        return found if found is not None else self._from_message(_CAP_IN_MESSAGE)

    @property
    def current(self) -> float | None:
        found = self._number("current_usd", "current", "total_cost_usd")
        return found if found is not None else self._from_message(_CURRENT_IN_MESSAGE)

    @property
    def period(self) -> str | None:
        return _text(self.details.get("period"))


SpendCapError = SpendCapExceededError
BudgetExceededError = SpendCapExceededError


class PermissionDeniedError(AIlinkError):
    """The gateway refused the request (403)."""


class PolicyDeniedError(PermissionDeniedError):
    """A policy denied the request (403 ``policy_denied``)."""

    @property
    def policy_name(self) -> str | None:
        return _text(self.details.get("policy"))

    @property
    def reason(self) -> str:
        return _text(self.details.get("reason")) or self.message


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
        return _text(self.details.get("approval_id"))

    @property
    def reason(self) -> str | None:
        return _text(self.details.get("reason"))


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
        return _text(self.details.get("approval_id"))

    @property
    def timeout(self) -> float | None:
        value = self.details.get("timeout")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return None


class ApprovalPendingError(AIlinkError):
    """The approval is still pending (409 ``approval_pending`` from the result endpoint)."""


class IdempotencyConflictError(AIlinkError):
    """A request with the same idempotency key is still in flight (409)."""


class ValidationError(AIlinkError):
    """The gateway rejected the request as invalid (422, and 4xx answers it calls invalid)."""


class BadRequestError(ValidationError):
    """The gateway could not read the request (400)."""


class IdempotencyKeyReusedError(ValidationError):
    """The idempotency key was already used for a different request (422)."""


class PayloadTooLargeError(AIlinkError):
    """The request body is larger than the gateway accepts (413)."""


class RateLimitError(AIlinkError):
    """Rate limited (429); ``retry_after`` is in seconds when the gateway said."""

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retry_after")
        if isinstance(value, str):
            return parse_retry_after(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return max(0.0, float(value))
        return None


class UpstreamError(GatewayError):
    """The upstream failed (502) or answered with an error of its own (any status)."""


class OutcomeUnknownError(UpstreamError):
    """The gateway forwarded the request earlier and never got a complete answer (502 ``outcome_unknown``).

    It will not forward it again under this key: check with the upstream whether it happened.
    """


class CircuitOpenError(GatewayError):
    """Every upstream is unavailable (503 ``all_upstreams_exhausted``): every circuit breaker of the
    token's upstreams is open. Nothing was sent. ``upstream`` (the one tried again first) and
    ``cooldown_secs`` (when) when the gateway says."""

    @property
    def upstream(self) -> str | None:
        return _text(self.details.get("upstream"))

    @property
    def cooldown_secs(self) -> float | None:
        value = self.details.get("cooldown_secs")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return float(value)
        return None


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
    "unauthorized": AuthenticationError,
    "spend_cap_reached": SpendCapExceededError,
    "policy_denied": PolicyDeniedError,
    "content_blocked": ContentBlockedError,
    "model_access_denied": PermissionDeniedError,
    "forbidden": PermissionDeniedError,
    "approval_rejected": ApprovalRejectedError,
    "approval_not_found": NotFoundError,
    "not_found": NotFoundError,
    "approval_pending": ApprovalPendingError,
    "approval_timeout": ApprovalTimeoutError,
    "idempotency_in_progress": IdempotencyConflictError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "payload_too_large": PayloadTooLargeError,
    "rate_limit_exceeded": RateLimitError,
    "internal_server_error": GatewayError,
    "upstream_failed": UpstreamError,
    "outcome_unknown": OutcomeUnknownError,
    "all_upstreams_exhausted": CircuitOpenError,
}

_BY_STATUS: dict[int, type[AIlinkError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: SpendCapExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: ApprovalTimeoutError,
    409: IdempotencyConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    502: UpstreamError,
    503: CircuitOpenError,
}


def _class_for_status(status: int) -> type[AIlinkError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return GatewayError
    if 400 <= status < 500:
        return ValidationError
    return AIlinkError


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), or None for anything else."""
    if not value:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def json_or_none(content: bytes) -> Any:
    """``content`` parsed as JSON, or None when it is not JSON (or nests absurdly deep)."""
    try:
        return json.loads(content or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    data = json_or_none(response.content)
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def error_code(response: httpx.Response) -> str | None:
    """The gateway error code of ``response`` (None for an upstream answer or a body not ours)."""
    if any(marker in response.headers for marker in _UPSTREAM_MARKERS):
        return None
    body = _error_body(response)
    code = body.get("code") if body is not None else None
    return code if isinstance(code, str) and code in GATEWAY_ERROR_CODES else None


def error_details(response: httpx.Response) -> dict[str, Any]:
    """``error.details`` of a gateway error answer (empty when absent or not an object)."""
    if error_code(response) is None:
        return {}
    body = _error_body(response) or {}
    details = body.get("details")
    return dict(details) if isinstance(details, dict) else {}


#: The AIlink gateway marks responses that came from an upstream with its circuit-breaker state.
_UPSTREAM_MARKERS = ("x-ailink-cb-state", "x-trueflow-cb-state")


def is_gateway_error(response: httpx.Response) -> bool:
    """True when the error body was written by the gateway itself, not passed through from upstream."""
    return error_code(response) is not None


def _approval_header(response: httpx.Response) -> str | None:
    value = response.headers.get("x-ailink-approval-id") or response.headers.get("x-trueflow-approval-id")
    return str(value) if value else None


def error_from_response(response: httpx.Response, *, management: bool = False) -> AIlinkError:
    """Build the typed error for an error ``response`` (status >= 400), per protocol §3.

    ``management=True`` is for the management API, whose errors the real gateway sends as bare
    status codes with empty bodies: anything not in the gateway's error shape is typed by status.
    """
    status = response.status_code
    code = error_code(response)
    request_header = response.headers.get("x-request-id")
    if code is None:
        text = response.text if response.content else ""
        body = _error_body(response)
        upstream_code = body.get("code") if body is not None else None
        if management:
            return _class_for_status(status)(
                f"Management API answered HTTP {status}: {text}".rstrip(": "),
                status_code=status,
                request_id=request_header,
                response=response,
            )
        # An upstream error passed through: never an AuthenticationError, even for 401.
        return UpstreamError(
            f"Upstream answered HTTP {status}: {text}".rstrip(": "),
            status_code=status,
            code=upstream_code if isinstance(upstream_code, str) else None,
            request_id=request_header,
            response=response,
            details={"upstream": True},
        )
    body = _error_body(response) or {}
    raw_message = body.get("message")
    message = scrub(cap_text(raw_message)) if isinstance(raw_message, str) and raw_message else f"HTTP {status} {code}"
    details = {k: scrub(cap_text(v)) if isinstance(v, str) else v for k, v in error_details(response).items()}
    request_id = _text(body.get("request_id")) or request_header
    if code == "policy_denied":
        match = _POLICY_IN_MESSAGE.search(message)
        if match:
            details.setdefault("policy", match.group(1))
            if match.group(2):
                details.setdefault("reason", match.group(2).strip())
    if status == 429 or code == "rate_limit_exceeded":
        header = parse_retry_after(response.headers.get("retry-after"))
        if header is not None or "retry_after" not in details:
            details["retry_after"] = header
    cls = _BY_CODE.get(code) or _class_for_status(status)
    if cls is ValidationError and status != 422:
        cls = _class_for_status(status)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "request_id": request_id,
        "response": response,
        "details": details,
        "ambiguous": details.get("ambiguous") is True,
        "idempotency_key": _text(details.get("idempotency_key")),
    }
    if cls is ApprovalRejectedError:
        return ApprovalRejectedError(
            message,
            approval_id=_text(details.get("approval_id")) or _approval_header(response),
            reason=_text(details.get("reason")),
            **kwargs,
        )
    if cls is ApprovalTimeoutError:
        return ApprovalTimeoutError(
            message,
            approval_id=_text(details.get("approval_id")) or _approval_header(response),
            **kwargs,
        )
    return cls(message, **kwargs)
