"""Retry decisions (protocol §6), I/O-free."""

from __future__ import annotations

import random
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from ailink import _extensions
from ailink._errors import (
    AIlinkError,
    APIConnectionError,
    APITimeoutError,
    MalformedResponseError,
    error_code,
    error_details,
    error_from_response,
    parse_retry_after,
)
from ailink._flow import LANE_EXTENSION, POLL_LANE, Send, Sleep
from ailink._headers import KEY_HEADERS
from ailink._idempotency import new_idempotency_key
from ailink._logs import logger

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Request extension marking a *repeatable* request: a computation (an LLM call), not an action.
#: It is retried like a read, and each retry carries a fresh idempotency key (:func:`rekey`).
REPEATABLE_EXTENSION = "ailink_repeatable"


@dataclass(frozen=True, init=False)
class RetryConfig:
    """How failed requests are retried.

    Reads (GET, HEAD, OPTIONS) are retried on connection errors, 429, 500, 502, 503, 504 and 409
    ``idempotency_in_progress``. Writes are retried only when the answer proves the request was
    not forwarded (429, 409 ``idempotency_in_progress``, 503 ``all_upstreams_exhausted``, a gateway
    refusal marked ``forwarded: false``, a connection never established), or when the gateway
    stores outcomes by idempotency key (protocol §6). Never 202, 401, 402, 403, 404, 408 or 422.
    Backoff is exponential with full jitter, and ``Retry-After`` is honoured up to
    ``max_retry_after`` seconds (a longer wait is not retried: the error is raised).
    Repeatable requests (LLM calls, :func:`mark_repeatable`) are retried like reads, each retry
    with a fresh idempotency key. ``max_retries``/``backoff_max`` are also accepted under the
    names other gateway SDKs use.
    """

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 30.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES

    def __init__(
        self,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_cap: float | None = None,
        max_retry_after: float = 30.0,
        retry_statuses: Iterable[int] | None = None,
        *,
        backoff_max: float | None = None,
    ) -> None:
        cap = backoff_cap if backoff_cap is not None else backoff_max if backoff_max is not None else 8.0
        if max_retries < 0 or backoff_base < 0 or cap < 0 or max_retry_after < 0:
            raise ValueError("retry settings must not be negative")
        object.__setattr__(self, "max_retries", int(max_retries))
        object.__setattr__(self, "backoff_base", float(backoff_base))
        object.__setattr__(self, "backoff_cap", float(cap))
        object.__setattr__(self, "max_retry_after", float(max_retry_after))
        statuses = DEFAULT_RETRY_STATUSES if retry_statuses is None else frozenset(retry_statuses)
        object.__setattr__(self, "retry_statuses", statuses)

    @property
    def backoff_max(self) -> float:
        """Alias of ``backoff_cap``."""
        return self.backoff_cap

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return (rng or random).uniform(0, ceiling)

    @classmethod
    def coerce(cls, value: int | RetryConfig | None) -> RetryConfig:
        if isinstance(value, RetryConfig):
            return value
        if value is None:
            return cls()
        return cls(max_retries=int(value))


#: Transport errors raised before any byte of the request left this client.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.LocalProtocolError)
#: 5xx answers that prove the gateway did not forward the request.
_REFUSED_5XX_CODES = frozenset({"all_upstreams_exhausted"})


def stores_outcomes(request: httpx.Request) -> bool:
    """True when the request's gateway advertises the stored-outcome extension (§5)."""
    return _extensions.supports(request.url, _extensions.OUTCOME_STORE)


def is_write(request: httpx.Request) -> bool:
    """True when sending ``request`` may change something: a non-read method not marked repeatable."""
    return request.method not in IDEMPOTENT_METHODS and not request.extensions.get(REPEATABLE_EXTENSION)


def mark_repeatable(request: httpx.Request) -> httpx.Request:
    """Mark ``request`` as a computation that may run again (an LLM call): retried like a read
    (connection errors, 429, 5xx), never reported as *outcome unknown*, and re-keyed before each
    retry so a gateway that stored the failed attempt's answer under its key does not replay it."""
    request.extensions[REPEATABLE_EXTENSION] = True
    return request


def rekeyed(request: httpx.Request) -> httpx.Request:
    """A repeatable ``request`` again, with a fresh idempotency key in every header that carries
    one (any other request is returned as it is)."""
    if not request.extensions.get(REPEATABLE_EXTENSION):
        return request
    present = [name for name in KEY_HEADERS if name in request.headers]
    if not present:
        return request
    key = new_idempotency_key()
    headers = request.headers.copy()
    for name in present:
        headers[name] = key
    return httpx.Request(request.method, request.url, headers=headers, stream=request.stream,
                         extensions=dict(request.extensions))


def idempotency_key_of(request: httpx.Request) -> str | None:
    value = next((request.headers[name] for name in KEY_HEADERS if request.headers.get(name)), None)
    return str(value) if value else None


def not_forwarded(response: httpx.Response) -> bool:
    """True when the gateway says it refused ``response``'s request before forwarding it."""
    code = error_code(response)
    if code is None:
        return False
    return code in _REFUSED_5XX_CODES or error_details(response).get("forwarded") is False


def _may_retry_answer(response: httpx.Response, config: RetryConfig) -> bool:
    status = response.status_code
    if status == 409:
        return error_code(response) == "idempotency_in_progress"
    if status not in config.retry_statuses:
        return False
    request = response.request
    if not is_write(request):
        return True
    if idempotency_key_of(request) is None:
        return False  # a write without a key (the management API): only a request never sent is re-sent
    if status == 429 or not_forwarded(response):
        return True
    if not stores_outcomes(request) or response.headers.get("idempotent-replayed", "").lower() == "true":
        return False
    return error_details(response).get("ambiguous") is not True  # the re-send replays the stored outcome


def _may_retry_failure(exc: Exception, request: httpx.Request) -> bool:
    if isinstance(exc, httpx.PoolTimeout) and request.extensions.get(LANE_EXTENSION) == POLL_LANE:
        return False  # an approval long poll found no free connection before its deadline: the wait decides
    if not is_write(request) or isinstance(exc, _NOT_SENT):
        return True
    return idempotency_key_of(request) is not None and stores_outcomes(request)


def _target(request: httpx.Request) -> str:
    url = request.url
    port = f":{url.port}" if url.port else ""
    return f"{request.method} {url.scheme}://{url.host}{port}{url.path}"


def failure_error(exc: Exception, request: httpx.Request) -> AIlinkError:
    """The error raised when the network (or a garbled answer) ended the call, without any secret in it."""
    key = idempotency_key_of(request)
    ambiguous = is_write(request) and not isinstance(exc, _NOT_SENT)
    target = _target(request)
    error: AIlinkError
    if isinstance(exc, httpx.DecodingError):
        error = MalformedResponseError(
            f"The gateway's answer to {target} could not be decoded ({type(exc).__name__})", idempotency_key=key
        )
    elif isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(f"Request timed out: {target}.", idempotency_key=key)
    else:
        error = APIConnectionError(
            f"Connection to the gateway failed: {target} ({type(exc).__name__}).", idempotency_key=key
        )
    if ambiguous:
        error.mark_outcome_unknown(key, resend_helps=stores_outcomes(request))
    return error


def answer_error(response: httpx.Response, request: httpx.Request | None = None) -> AIlinkError:
    """The typed error for an error answer to ``request`` (default: the answer's own request),
    marked *outcome unknown* when a write may have happened."""
    error = error_from_response(response)
    request = request or response.request
    key = idempotency_key_of(request)
    error.idempotency_key = error.idempotency_key or key
    may_have_happened = response.status_code >= 500 or error.code == "idempotency_in_progress" or error.ambiguous
    if is_write(request) and may_have_happened and not not_forwarded(response):
        resend_helps = stores_outcomes(request) and error.code != "outcome_unknown"
        error.mark_outcome_unknown(key, resend_helps=resend_helps)
    return error


def send_with_retries(
    request: httpx.Request, config: RetryConfig, *, stream: bool = False
) -> Generator[Any, Any, httpx.Response]:
    """Send ``request``, retrying per ``config``; returns the final response (any status).

    Raises the typed error of a network failure or an undecodable answer after retries.
    """
    attempt = 0
    while True:
        try:
            response: httpx.Response = yield Send(request, stream=stream)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            if attempt < config.max_retries and _may_retry_failure(exc, request):
                attempt += 1
                delay = config.backoff(attempt)
                _log_retry(request, attempt, config, delay, type(exc).__name__)
                yield Sleep(delay)
                request = rekeyed(request)
                continue
            raise failure_error(exc, request) from exc
        _extensions.remember(response)
        if attempt < config.max_retries and _may_retry_answer(response, config):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is None or retry_after <= config.max_retry_after:
                attempt += 1
                delay = retry_after if retry_after is not None else config.backoff(attempt)
                code = error_code(response)
                why = f"HTTP {response.status_code}" + (f" {code}" if code else "")
                _log_retry(request, attempt, config, delay, why)
                yield Sleep(delay)
                request = rekeyed(request)
                continue
        return response


def _log_retry(request: httpx.Request, attempt: int, config: RetryConfig, delay: float, why: str) -> None:
    logger.info("retry %d of %d for %s in %.2f s (%s)", attempt, config.max_retries, _target(request), delay, why)
