"""How a tool call ended: :class:`ToolResult`, and the text a model reads for every outcome."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from ailink._approval import PendingApproval
from ailink._errors import (
    AIlinkError,
    APIConnectionError,
    ApprovalRejectedError,
    ApprovalTimeoutError,
    AuthenticationError,
    InvalidToolArgumentsError,
    PermissionDeniedError,
    PolicyDeniedError,
    RateLimitError,
    SpendCapExceededError,
    json_or_none,
)
from ailink._idempotency import canonical_json
from ailink._secrets import scrub
from ailink._tools.action import ParsedCall, ToolAction


class ToolOutcome(str, Enum):
    """How a tool call ended."""

    OK = "ok"
    PENDING = "pending"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    DENIED = "denied"
    INVALID_ARGUMENTS = "invalid_arguments"
    ERROR = "error"
    UNKNOWN = "outcome_unknown"


_ERROR_CODES = {
    ToolOutcome.PENDING: "approval_pending",
    ToolOutcome.REJECTED: "approval_rejected",
    ToolOutcome.TIMED_OUT: "approval_timeout",
    ToolOutcome.DENIED: "policy_denied",
    ToolOutcome.INVALID_ARGUMENTS: "invalid_arguments",
    ToolOutcome.ERROR: "request_failed",
    ToolOutcome.UNKNOWN: "outcome_unknown",
}


@dataclass(frozen=True)
class ToolResult:
    """The outcome of a tool call: text for the model and the raw details for the program."""

    outcome: ToolOutcome
    content: str
    status_code: int | None = None
    body: Any = None
    approval_id: str | None = None
    idempotency_key: str | None = None
    request_id: str | None = None
    policy: str | None = None
    reason: str | None = None
    replayed: bool = False
    pending: PendingApproval | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is ToolOutcome.OK

    @property
    def is_error(self) -> bool:
        """True for outcomes the model should treat as a failed action (not for pending)."""
        return self.outcome not in (ToolOutcome.OK, ToolOutcome.PENDING)

    @property
    def error_code(self) -> str | None:
        """``policy_denied``, ``approval_rejected``, ``approval_timeout``, ``invalid_arguments``, ..."""
        return _ERROR_CODES.get(self.outcome)

    @property
    def retryable(self) -> bool:
        """True when calling again may succeed without changing anything: no decision arrived in time,
        a rate limit, or a server error that did not perform the action. Never for an outcome
        unknown (the action may have happened) nor for refusals."""
        status = self.status_code
        return self.outcome is ToolOutcome.TIMED_OUT or (
            self.outcome is ToolOutcome.ERROR and status is not None and (status == 429 or status >= 500)
        )

    @property
    def artifact(self) -> dict[str, Any]:
        """Everything about the call, JSON-ready (never shown to the model by the adapters)."""
        return {
            "status": self.outcome.value,
            "status_code": self.status_code,
            "approval_id": self.approval_id,
            "idempotency_key": self.idempotency_key,
            "request_id": self.request_id,
            "policy": self.policy,
            "reason": self.reason,
            "replayed": self.replayed,
            "body": self.body,
            "pending": self.pending.to_dict() if self.pending else None,
        }


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a note saying so."""
    if limit <= 0 or len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated: showing {limit} of {len(text)} characters]"


def _body_of(response: httpx.Response) -> Any:
    if not response.content:
        return None
    body = json_or_none(response.content)
    return body if body is not None else response.text


def _text_of(body: Any) -> str:
    if body is None:
        return ""
    return scrub(body if isinstance(body, str) else canonical_json(body))


def ok_result(action: ToolAction, call: ParsedCall, key: str | None, response: httpx.Response) -> ToolResult:
    """The result of an executed call (first execution, stored replay, or approved and performed)."""
    body = _body_of(response)
    replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
    approval_id = response.headers.get("x-ailink-approval-id") or response.headers.get("x-trueflow-approval-id")
    head = f"HTTP {response.status_code} from {call.method} {call.path}"
    if approval_id:
        head += f" (approved by a human reviewer, approval {approval_id}; performed once)"
    elif replayed:
        head += " (stored result: this exact action was already performed once; it was not repeated)"
    return ToolResult(
        ToolOutcome.OK,
        truncate(f"{head}\n{_text_of(body)}".rstrip(), action.max_response_chars),
        status_code=response.status_code,
        body=body,
        approval_id=approval_id,
        idempotency_key=key,
        request_id=response.request.headers.get("x-request-id") if response.request else None,
        replayed=replayed,
    )


def pending_result(call: ParsedCall, key: str | None, pending: PendingApproval) -> ToolResult:
    """The result of a call the gateway parked until a human decides."""
    return ToolResult(
        ToolOutcome.PENDING,
        f"{call.method} {call.path} is waiting for human approval (approval {pending.approval_id}"
        + (f", policy '{pending.policy}'" if pending.policy else "")
        + "). It has not been performed yet.",
        status_code=202,
        approval_id=pending.approval_id,
        idempotency_key=key,
        policy=pending.policy,
        pending=pending,
    )


def withdrawn_result(call: ParsedCall, key: str | None, approval_id: str, reason: str | None) -> ToolResult:
    """The result of a call the application rejected while it waited: its approval was withdrawn."""
    return ToolResult(
        ToolOutcome.REJECTED,
        f"{call.method} {call.path} was rejected (approval {approval_id} withdrawn)"
        + (f": {reason}" if reason else "")
        + ". The action was not performed; do not retry it unchanged.",
        approval_id=approval_id,
        idempotency_key=key,
        reason=reason,
    )


def not_withdrawn_result(
    action: ToolAction, call: ParsedCall, key: str | None, approval_id: str, error: AIlinkError
) -> ToolResult:
    """The application rejected a call whose approval could not be withdrawn: a reviewer may still approve it."""
    cause = f"HTTP {error.status_code}" if error.status_code else type(error).__name__
    return ToolResult(
        ToolOutcome.UNKNOWN,
        truncate(
            f"OUTCOME UNKNOWN for {call.method} {call.path}: it was rejected, but its approval {approval_id} could "
            f"not be withdrawn ({cause}), so a reviewer may still approve it and it would then be performed. "
            f"Do not repeat it blindly; its idempotency key is \"{key}\".",
            action.max_response_chars,
        ),
        status_code=error.status_code,
        approval_id=approval_id,
        idempotency_key=key,
        request_id=error.request_id,
        reason=error.message,
    )


def _unknown_result(action: ToolAction, call: ParsedCall, key: str | None, error: AIlinkError) -> ToolResult:
    what = f"{call.method} {call.path}"
    approval_id = getattr(error, "approval_id", None)
    cause = f"HTTP {error.status_code}" if error.status_code else type(error).__name__
    if error.resend_tells_outcome:
        learn = (
            f"To learn what happened, call this tool again with the same arguments and "
            f"idempotency_key \"{key}\": the gateway then answers with the stored outcome instead of repeating it."
        )
    else:
        learn = (
            "Check whether it happened (for example by reading the resource) before doing it again; "
            f"its idempotency key is \"{key}\"."
        )
    return ToolResult(
        ToolOutcome.UNKNOWN,
        truncate(
            f"OUTCOME UNKNOWN for {what} ({cause}): the action may or may not have been performed. "
            f"Do not repeat it blindly. {learn}"
            + (f" Approval: {approval_id}." if approval_id else ""),
            action.max_response_chars,
        ),
        status_code=error.status_code,
        idempotency_key=key,
        request_id=error.request_id,
        approval_id=approval_id,
        reason=error.message,
    )


def error_result(action: ToolAction, call: ParsedCall, key: str | None, error: AIlinkError) -> ToolResult:
    """The result of a call that ended with ``error`` (every gateway and network failure has one)."""
    if error.ambiguous:
        return _unknown_result(action, call, key, error)
    what = f"{call.method} {call.path}"
    common: dict[str, Any] = {
        "status_code": error.status_code,
        "idempotency_key": key,
        "request_id": error.request_id,
    }
    if isinstance(error, ApprovalRejectedError):
        reason = error.reason
        return ToolResult(
            ToolOutcome.REJECTED,
            f"A human reviewer rejected {what}"
            + (f" (approval {error.approval_id})" if error.approval_id else "")  # the real gateway names none
            + (f": {reason}" if reason else "")
            + ". The action was not performed; do not retry it unchanged.",
            approval_id=error.approval_id,
            reason=reason,
            **common,
        )
    if isinstance(error, ApprovalTimeoutError):
        return ToolResult(
            ToolOutcome.TIMED_OUT,
            f"No human decision arrived for {what}"
            + (f" (approval {error.approval_id})" if error.approval_id else "")
            + " in time. The action was NOT performed.",
            approval_id=error.approval_id,
            **common,
        )
    if isinstance(error, PolicyDeniedError):
        policy = error.policy_name
        return ToolResult(
            ToolOutcome.DENIED,
            f"{what} was denied by policy '{policy or 'unknown'}': {error.reason}. The action was not performed.",
            policy=policy,
            reason=error.reason,
            **common,
        )
    if isinstance(error, (PermissionDeniedError, SpendCapExceededError)):
        return ToolResult(
            ToolOutcome.DENIED,
            f"{what} was refused by the gateway ({error.code}): {error.message}. The action was not performed.",
            reason=error.message,
            **common,
        )
    if isinstance(error, RateLimitError):
        wait = f" Retry after {error.retry_after:g} s." if error.retry_after is not None else ""
        return ToolResult(
            ToolOutcome.ERROR, f"{what} was rate limited; it was not performed.{wait}", reason=error.message, **common
        )
    if isinstance(error, AuthenticationError):
        return ToolResult(
            ToolOutcome.ERROR,
            f"{what} was not performed: the gateway did not accept this tool's credentials ({error.code}). "
            "Retrying will not help; the tool's configuration must be fixed.",
            reason=error.message,
            **common,
        )
    if isinstance(error, APIConnectionError):
        return ToolResult(
            ToolOutcome.ERROR,
            f"{what} was not performed: the gateway could not be reached ({error.message})",
            reason=error.message,
            **common,
        )
    body = _body_of(error.response) if error.response is not None else None
    detail = _text_of(body) or error.message
    status = f"HTTP {error.status_code}" if error.status_code else type(error).__name__
    return ToolResult(
        ToolOutcome.ERROR,
        truncate(f"{what} failed with {status}: {detail}", action.max_response_chars),
        body=body,
        reason=error.message,
        **common,
    )


def invalid_arguments_result(action: ToolAction, error: InvalidToolArgumentsError) -> ToolResult:
    """The model-readable answer to invalid arguments (nothing was sent)."""
    return ToolResult(
        ToolOutcome.INVALID_ARGUMENTS,
        f"Invalid arguments for tool '{action.name}': {error}. Nothing was sent. Expected {action.argument_hint()}.",
        reason=str(error),
    )
