"""Human approval: the pending answer, the result, and the one wait state machine (protocol §4.3)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from urllib.parse import quote

import httpx

from ailink import _extensions
from ailink._config import ClientConfig
from ailink._errors import (
    AIlinkError,
    APIConnectionError,
    APITimeoutError,
    ApprovalRejectedError,
    ApprovalTimeoutError,
    GatewayError,
    MalformedResponseError,
    NotFoundError,
    error_from_response,
    is_gateway_error,
    json_or_none,
    parse_retry_after,
)
from ailink._flow import POLL_LANE, WAIT_LANE, Notify, Sleep, WatchDecision, WatchSignal, monotonic
from ailink._logs import logger
from ailink._retry import answer_error, idempotency_key_of, is_write, send_with_retries

LONG_POLL_SECONDS = 50
POLL_START_SECONDS = 1.0
POLL_CAP_SECONDS = 10.0


class ApprovalStatus(str, Enum):
    """Where an approval stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    data = json_or_none(response.content)
    if data is None:
        raise MalformedResponseError(
            f"Gateway answered HTTP {response.status_code} with a body that is not JSON",
            status_code=response.status_code,
            response=response,
        )
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"Gateway answered HTTP {response.status_code} with JSON that is not an object",
            status_code=response.status_code,
            response=response,
        )
    return data


@dataclass(frozen=True)
class PendingApproval:
    """A request the gateway parked until a human decides (the 202 answer of protocol §4.2)."""

    approval_id: str
    expires_at: datetime | None = None
    poll_url: str | None = None
    idempotency_key: str | None = None
    policy: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None
    #: The reviewers' page of this approval, when the gateway names one (the emulator's inbox).
    review_url: str | None = None
    #: Where the gateway's approval watch must start to see this approval settle (§4.4), when it has one.
    event_cursor: int | None = None

    @classmethod
    def from_response(cls, response: httpx.Response) -> PendingApproval:
        body = _json_object(response)
        approval_id = body.get("approval_id") or body.get("request_id")
        if not isinstance(approval_id, str) or not approval_id:
            raise MalformedResponseError(
                "Gateway answered 202 without an approval id", status_code=202, response=response
            )
        summary = body.get("summary")
        return cls(
            approval_id=approval_id,
            expires_at=_parse_time(body.get("expires_at")),
            poll_url=_str_or_none(body.get("poll_url")) or response.headers.get("location"),
            idempotency_key=_str_or_none(body.get("idempotency_key")),
            policy=_str_or_none(body.get("policy")),
            summary=summary if isinstance(summary, dict) else {},
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            review_url=_str_or_none(body.get("review_url")),
            event_cursor=_cursor_of(body),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for events, interrupts and tool artifacts)."""
        return {
            "approval_id": self.approval_id,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "policy": self.policy,
            "summary": dict(self.summary),
            "idempotency_key": self.idempotency_key,
            "review_url": self.review_url,
        }

    def describe(self) -> str:
        method = self.summary.get("method", "")
        path = self.summary.get("path", "")
        what = f"{method} {path}".strip() or "the request"
        policy = f" (policy '{self.policy}')" if self.policy else ""
        return f"{what} is waiting for human approval {self.approval_id}{policy}"


def decide_hint(approval_id: str, review_url: str | None = None) -> str:
    """How a person decides ``approval_id``: the CLI commands, and the inbox page when known."""
    hint = f"ailink approvals approve {approval_id} --reason '...' (or: ailink approvals reject {approval_id})"
    return hint + (f", or in the inbox: {review_url}" if review_url else "")


def _log_parked(approval_id: str, pending: PendingApproval | None, timeout: float) -> None:
    what = f"{pending.summary.get('method', '')} {pending.summary.get('path', '')}".strip() if pending else ""
    policy = f" (policy '{pending.policy}')" if pending and pending.policy else ""
    expires = f", expires {pending.expires_at.isoformat()}" if pending and pending.expires_at else ""
    logger.info("%s is waiting for human approval %s%s%s; waiting up to %g s. Decide with: %s",
                what or "a call", approval_id, policy, expires, timeout,
                decide_hint(approval_id, pending.review_url if pending else None))


def _log_not_waiting(request: httpx.Request, response: httpx.Response) -> None:
    try:
        parked = PendingApproval.from_response(response)
    except MalformedResponseError:
        return  # the caller gets the answer as it is
    logger.info("%s %s was parked for human approval %s (not waiting). Decide with: %s", request.method,
                request.url.path, parked.approval_id, decide_hint(parked.approval_id, parked.review_url))


def _log_outcome(result: ApprovalResult, waited: float) -> None:
    reason = f": {result.reason}" if result.reason else ""
    log = logger.info if result.approved else logger.warning
    log("approval %s %s after %.1f s%s", result.approval_id, result.status.value, waited, reason)


def is_pending_response(response: httpx.Response) -> bool:
    """True when ``response`` is the gateway's 202 "pending approval" answer."""
    if response.status_code != 202:
        return False
    body = json_or_none(response.content)
    return isinstance(body, dict) and body.get("status") == "pending_approval"


@dataclass(frozen=True)
class ApprovalResult:
    """How an approval ended. ``response`` is the stored upstream response when approved."""

    approval_id: str
    status: ApprovalStatus
    reason: str | None = None
    response: httpx.Response | None = None
    decided_at: str | None = None

    @property
    def approved(self) -> bool:
        return self.status is ApprovalStatus.APPROVED

    def raise_for_status(self) -> httpx.Response:
        """The approved response, or the typed error for any other ending (fail closed)."""
        if self.approved and self.response is not None:
            return self.response
        if self.status in (ApprovalStatus.REJECTED, ApprovalStatus.CANCELLED):
            raise ApprovalRejectedError(
                f"Approval {self.approval_id} was {self.status.value}"
                + (f": {self.reason}" if self.reason else ""),
                approval_id=self.approval_id,
                reason=self.reason,
            )
        raise ApprovalTimeoutError(
            f"Approval {self.approval_id} {self.status.value} without a decision; the request was not performed",
            approval_id=self.approval_id,
        )


def _deadline(timeout: float, expires_at: datetime | None, start: float) -> float:
    deadline = start + timeout
    if expires_at is not None:
        left = (expires_at - datetime.now(timezone.utc)).total_seconds()
        deadline = min(deadline, start + max(0.0, left))
    return deadline


#: The jitter of poll backoffs (tests pass a seeded one).
_JITTER = random.Random()
#: Read allowance of a status poll beyond the long-poll wait it asks for.
POLL_MARGIN_SECONDS = 5.0
#: How long a long poll waits for a free connection before it is built again with the time left.
POLL_POOL_SECONDS = 1.0
#: The longest the client spends withdrawing an approval it stopped waiting for.
WITHDRAW_SECONDS = 5.0


def _lost_contact(error: AIlinkError, approval_id: str, key: str | None) -> AIlinkError:
    """An error met while waiting: the decision, and so the action, is unknown to this client."""
    error.mark_outcome_unknown(key, resend_helps=False)
    error.message = (
        f"Lost track of approval {approval_id} while waiting for its decision: it may still be approved "
        f"and performed. Wait again with wait_for_approval({approval_id!r})"
        + (f" or re-send with idempotency key {key!r}" if key else "")
        + f" to learn the outcome. ({error.message})"
    )
    error.args = (error.message,)
    return error


def _withdraw(
    config: ClientConfig,
    path: str,
    approval_id: str,
    key: str | None,
    timeout: float,
    waited: float,
    expires_at: datetime | None,
) -> Generator[Any, Any, ApprovalResult]:
    """Give up on a pending approval without leaving it to run later: withdraw it, and report
    what the gateway says it became (approved in the meantime → its stored result). If it cannot
    be withdrawn, the outcome is unknown, unless the approval's own expiry has passed."""
    request = config.build_request(
        "DELETE", path, may_hold=False, read_timeout=min(config.timeout, WITHDRAW_SECONDS), lane=WAIT_LANE
    )
    not_withdrawn = ApprovalTimeoutError(
        f"No decision on approval {approval_id} after {waited:.0f} s, and it could not be withdrawn",
        approval_id=approval_id,
        timeout=timeout,
        idempotency_key=key,
    )
    try:
        response = yield from send_with_retries(request, config.retry)
    except AIlinkError:
        response = None
    status = None
    if response is not None and response.status_code < 300:
        body = json_or_none(response.content)
        status = body.get("status") if isinstance(body, dict) else None
    if status == ApprovalStatus.APPROVED.value:
        stored = yield from _stored_result(config, path)
        return ApprovalResult(approval_id, ApprovalStatus.APPROVED, None, stored, None)
    expired = expires_at is not None and datetime.now(timezone.utc) >= expires_at
    if expired or status in (ApprovalStatus.CANCELLED.value, ApprovalStatus.EXPIRED.value,
                             ApprovalStatus.REJECTED.value):
        raise ApprovalTimeoutError(
            f"No decision on approval {approval_id} after {waited:.0f} s (deadline: the sooner of the "
            f"{timeout:g} s timeout and the approval's expiry); the request was not performed"
            + ("" if expired and status is None else " (the approval was withdrawn)"),
            approval_id=approval_id,
            timeout=timeout,
            idempotency_key=key,
        )
    not_withdrawn.mark_outcome_unknown(key, resend_helps=False)
    raise not_withdrawn


def _stored_result(config: ClientConfig, path: str) -> Generator[Any, Any, httpx.Response | None]:
    """The stored answer of an approved request (None while the gateway cannot replay it yet)."""
    request = config.build_request("GET", path + "/result", may_hold=False, lane=WAIT_LANE)
    stored = yield from send_with_retries(request, config.retry)
    if stored.status_code == 409 and is_gateway_error(stored):
        return None
    if stored.status_code >= 400 and is_gateway_error(stored):
        raise error_from_response(stored)
    return stored


def require_approval_endpoints(config: ClientConfig, approval_id: str) -> Generator[Any, Any, None]:
    """Make sure the gateway serves the agent-side approval endpoints (``respond-async``, §4.2).

    A gateway that never answered this process is asked once (``GET /healthz``: its answer says
    which extensions it has). On a gateway without them (the real one) ``/v1/approvals/...`` would be
    proxied to the upstream service like any path, so nothing is sent there: :class:`NotFoundError`.
    """
    url = httpx.URL(config.gateway_url)
    if not _extensions.known(url):
        probe = config.build_request("GET", "/healthz", may_hold=False)
        yield from send_with_retries(probe, config.retry)
    if _extensions.supports(url, _extensions.RESPOND_ASYNC):
        return
    raise NotFoundError(
        f"Approval {approval_id!r} cannot be looked up, waited for or withdrawn through this gateway: it has no "
        "agent-side approval endpoints (it does not advertise 'respond-async', like the real AIlink gateway). "
        "There an approval-gated call is held open until a reviewer decides and answers with the final "
        "result; re-send the same call with the same idempotency key to re-attach to its approval, or "
        "look the approval up with an admin key (GET /api/v1/approvals).",
        code="approval_endpoints_unavailable",
    )


def withdraw(config: ClientConfig, approval_id: str) -> Generator[Any, Any, httpx.Response]:
    """Withdraw a pending approval (``DELETE /v1/approvals/{id}``) on a gateway that serves it."""
    yield from require_approval_endpoints(config, approval_id)
    request = config.build_request("DELETE", f"/v1/approvals/{quote(approval_id, safe='')}", may_hold=False)
    response = yield from send_with_retries(request, config.retry)
    if response.status_code >= 400:
        raise answer_error(response)
    return response


def wait_for_decision(
    config: ClientConfig,
    approval_id: str,
    *,
    timeout: float,
    pending: PendingApproval | None = None,
    on_pending: Callable[[PendingApproval], Any] | None = None,
    withdraw_on_timeout: bool = True,
    idempotency_key: str | None = None,
    clock: Callable[[], float] = monotonic,
    rng: random.Random | None = None,
) -> Generator[Any, Any, ApprovalResult]:
    """Wait for a human decision on ``approval_id`` (the single state machine of protocol §4.3).

    Long-polls first; if the gateway answers a long poll at once, falls back to polling with
    backoff and jitter (1 s doubling to 10 s), honouring ``Retry-After``. The deadline is
    ``min(timeout, expires_at)`` and bounds every request of the wait. Past it the approval is
    withdrawn (``withdraw_on_timeout``) so it cannot run later, and :class:`ApprovalTimeoutError`
    is raised (a timeout is never an approval). Losing contact with the gateway raises an error
    marked *outcome unknown*. ``on_pending`` fires once, when the wait starts. The ``ailink``
    logger says when the wait starts (with how to decide) and how it ended. Started from a bare id
    on a gateway without agent-side approval endpoints, raises :class:`NotFoundError` at once.
    """
    if pending is None:
        yield from require_approval_endpoints(config, approval_id)
    start = clock()
    _log_parked(approval_id, pending, timeout)
    try:
        result = yield from _wait(config, approval_id, timeout=timeout, pending=pending, on_pending=on_pending,
                                  withdraw_on_timeout=withdraw_on_timeout, idempotency_key=idempotency_key,
                                  clock=clock, rng=rng)
    except AIlinkError as error:
        logger.warning("approval %s: the wait ended after %.1f s without a result: %s", approval_id,
                       clock() - start, error.message)
        raise
    _log_outcome(result, clock() - start)
    return result


def _wait(
    config: ClientConfig,
    approval_id: str,
    *,
    timeout: float,
    pending: PendingApproval | None = None,
    on_pending: Callable[[PendingApproval], Any] | None = None,
    withdraw_on_timeout: bool = True,
    idempotency_key: str | None = None,
    clock: Callable[[], float] = monotonic,
    rng: random.Random | None = None,
) -> Generator[Any, Any, ApprovalResult]:
    rng = rng or _JITTER  # shared: a Random holds 2.5 KB of state, and a client may hold thousands of waits
    key = idempotency_key or (pending.idempotency_key if pending else None)
    start = clock()
    expiry = pending.expires_at if pending else None
    deadline = _deadline(timeout, expiry, start)
    if on_pending is not None:
        yield Notify(on_pending, pending or PendingApproval(approval_id=approval_id))
    path = f"/v1/approvals/{quote(approval_id, safe='')}"
    long_poll = True
    backoff = POLL_START_SECONDS
    retry_after = pending.retry_after if pending else None
    peek = pending is None  # started from a bare id: read the status (and expiry) once before long-polling
    # The client's shared approval watch (§4.4) when the gateway has it and gave a cursor; else long polls.
    cursor = pending.event_cursor if pending else None
    watching = True

    def watch_supported() -> bool:
        return _extensions.supports(config.gateway_url, _extensions.APPROVALS_WATCH)

    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            waited = clock() - start
            if expiry is not None and datetime.now(timezone.utc) >= expiry:
                raise ApprovalTimeoutError(
                    f"No decision on approval {approval_id} before it expired ({waited:.0f} s); the request "
                    "was not performed",
                    approval_id=approval_id,
                    timeout=timeout,
                    idempotency_key=key,
                )
            if withdraw_on_timeout:
                return (yield from _withdraw(config, path, approval_id, key, timeout, waited, expiry))
            still = ApprovalTimeoutError(
                f"No decision on approval {approval_id} after {waited:.0f} s; it is still pending and would "
                "be performed if approved later",
                approval_id=approval_id,
                timeout=timeout,
                idempotency_key=key,
            )
            still.mark_outcome_unknown(key, resend_helps=False)
            raise still
        response: httpx.Response | None = None
        if watching and cursor is not None and not peek and watch_supported():
            news = yield WatchDecision(config, approval_id, cursor, min(LONG_POLL_SECONDS, remaining))
            if news is None:
                continue  # still pending: the deadline is checked again
            if news is WatchSignal.UNAVAILABLE:
                watching = False
                continue
            if news is WatchSignal.RESYNC:
                peek = True
                continue
            body = news
        else:
            wait = min(LONG_POLL_SECONDS, max(1, math.ceil(remaining))) if long_poll and not peek else 0
            peek = False
            request = config.build_request(
                "GET",
                path,
                params={"wait": wait} if wait else None,
                read_timeout=max(0.5, min(wait + POLL_MARGIN_SECONDS, remaining + 0.5)),
                may_hold=False,
                # a long poll holds its connection, from the long polls' pool; while none is free it asks
                # again each second (its wait shrinks with the time left), so the deadline rules still apply
                lane=POLL_LANE if wait else WAIT_LANE,
                pool_timeout=max(0.05, min(remaining, POLL_POOL_SECONDS)) if wait else None,
            )
            sent_at = clock()
            try:
                response = yield from send_with_retries(request, config.retry)
                if response.status_code >= 400:
                    raise error_from_response(response)
                body = _json_object(response)
            except APITimeoutError as error:
                if isinstance(error.__cause__, httpx.PoolTimeout):
                    continue  # no free connection before the deadline: nothing was learnt
                raise _lost_contact(error, approval_id, key) from error
            except (APIConnectionError, GatewayError, MalformedResponseError) as error:
                raise _lost_contact(error, approval_id, key) from error
            cursor = _cursor_of(body)
        status = body.get("status")
        expires_at = _parse_time(body.get("expires_at"))
        if expires_at is not None:  # the gateway may tell the expiry only here (a wait started from an id)
            expiry = expires_at
            deadline = min(deadline, _deadline(deadline - clock(), expires_at, clock()))
        if status == ApprovalStatus.PENDING.value:
            if response is None or (watching and cursor is not None and watch_supported()):
                continue  # the watch waits from here
            if long_poll and clock() - sent_at < wait / 2:
                long_poll = False  # the gateway does not hold long polls: poll with backoff instead
            if not long_poll:
                hinted = parse_retry_after(response.headers.get("retry-after")) or retry_after or 0.0
                delay = max(hinted, backoff * rng.uniform(0.8, 1.2))
                backoff = min(backoff * 2, POLL_CAP_SECONDS)
                retry_after = None
                yield Sleep(min(delay, POLL_CAP_SECONDS, max(0.0, deadline - clock())))
            continue
        reason = body.get("reason")
        decided_at = body.get("decided_at")
        if status == ApprovalStatus.APPROVED.value:
            try:
                stored = yield from _stored_result(config, path)
            except (APIConnectionError, GatewayError, MalformedResponseError) as error:
                raise _lost_contact(error, approval_id, key) from error
            if stored is None:  # decided but not yet replayable: ask again after a short pause
                yield Sleep(min(backoff, max(0.0, deadline - clock())))
                backoff = min(backoff * 2, POLL_CAP_SECONDS)
                continue
            return ApprovalResult(
                approval_id, ApprovalStatus.APPROVED, _str_or_none(reason), stored, _str_or_none(decided_at)
            )
        try:
            final = ApprovalStatus(status)
        except ValueError:
            unknown = MalformedResponseError(
                f"Gateway reported an unknown approval status {str(status)[:80]!r}", response=response
            )
            raise _lost_contact(unknown, approval_id, key) from None
        return ApprovalResult(approval_id, final, _str_or_none(reason), None, _str_or_none(decided_at))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _cursor_of(body: dict[str, Any]) -> int | None:
    """The ``event_cursor`` of a 202 answer or an approval status (§4.4), when it is one."""
    value = body.get("event_cursor")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def claim(error: AIlinkError, request: httpx.Request) -> AIlinkError:
    """Mark ``error``, met while sending ``request``, as the request's: it carries the request's
    idempotency key, and a malformed answer to a write is *outcome unknown* (the write may have
    happened). Returns ``error``."""
    key = idempotency_key_of(request)
    error.idempotency_key = error.idempotency_key or key
    if isinstance(error, MalformedResponseError) and is_write(request):
        error.mark_outcome_unknown(key, resend_helps=False)
    return error


def _checked(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    if response.status_code >= 400:
        raise answer_error(response, request)
    return response


def send_proxied(
    config: ClientConfig, request: httpx.Request, *, stream: bool = False
) -> Generator[Any, Any, httpx.Response]:
    """Send one proxied request: its final answer, or the gateway's 202 when a human must decide first.

    An error answer raises its typed error (see :func:`claim` for the key it should carry). The
    answer's ``request`` is the one last sent (a repeatable request gets a fresh key per retry).
    """
    response = yield from send_with_retries(request, config.retry, stream=stream)
    if is_pending_response(response):
        return response
    logger.debug("%s %s → HTTP %s", request.method, request.url.path, response.status_code)
    return _checked(response, response.request)


def await_decision(
    config: ClientConfig,
    request: httpx.Request,
    pending: PendingApproval,
    *,
    approval_timeout: float,
    on_pending: Callable[[PendingApproval], Any] | None = None,
) -> Generator[Any, Any, httpx.Response]:
    """Wait for the decision on the parked ``request``: the approved answer, or the typed error of
    any other ending (rejected, timed out, lost contact: outcome unknown)."""
    result = yield from wait_for_decision(
        config, pending.approval_id, timeout=approval_timeout, pending=pending,
        on_pending=on_pending, idempotency_key=idempotency_key_of(request),
    )
    return _checked(result.raise_for_status(), request)


def proxied_call(
    config: ClientConfig,
    request: httpx.Request,
    *,
    wait: bool,
    approval_timeout: float,
    on_pending: Callable[[PendingApproval], Any] | None = None,
    stream: bool = False,
) -> Generator[Any, Any, httpx.Response]:
    """Send one proxied request; if the gateway parks it and ``wait``, wait for the decision.

    Returns the final answer (the 202 itself when not waiting); raises the typed error of any
    other ending, carrying the request's idempotency key and marked *outcome unknown* when the
    action may have happened. With ``stream``, an event-stream answer comes back with its body
    unread (see :class:`~ailink._flow.Send`); an approved request's stored answer is read whole.
    """
    try:
        response = yield from send_proxied(config, request, stream=stream)
        request = response.request  # a repeatable request gets a fresh key for each retry
        if is_pending_response(response):
            if not wait:
                _log_not_waiting(request, response)
                return response
            pending = PendingApproval.from_response(response)
            del response  # the 202 is not kept while waiting: a client may hold thousands of waits
            response = yield from await_decision(
                config, request, pending, approval_timeout=approval_timeout, on_pending=on_pending
            )
        return response
    except AIlinkError as error:
        claim(error, request)
        raise
