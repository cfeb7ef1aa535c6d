"""Retry decisions (protocol §6), I/O-free."""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ailink._errors import (
    APIConnectionError,
    APITimeoutError,
    _error_body,
    parse_retry_after,
)
from ailink._flow import Send, Sleep

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RetryConfig:
    """How failed requests are retried.

    Retried: connection errors, 429, 500, 502, 503, 504 and 409 ``idempotency_in_progress``;
    never 202, 401, 402, 403, 404, 408 or 422. A non-GET request is retried only when it carries
    an idempotency key. Backoff is exponential with full jitter, and ``Retry-After`` is honoured
    up to ``max_retry_after`` seconds (a longer wait is not retried: the error is raised).
    """

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 30.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 500, 502, 503, 504}))

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
        if value < 0:
            raise ValueError("retries must be >= 0")
        return cls(max_retries=int(value))


def may_retry_request(request: httpx.Request) -> bool:
    """Retrying is safe for reads and for writes that carry an idempotency key."""
    return request.method in IDEMPOTENT_METHODS or "idempotency-key" in request.headers


def is_retryable_response(response: httpx.Response, config: RetryConfig) -> bool:
    status = response.status_code
    if status == 409:
        body = _error_body(response)
        return body is not None and body.get("code") == "idempotency_in_progress"
    return status in config.retry_statuses


def connection_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    """The error raised when the network failed after retries, without any secret in it."""
    ambiguous = request.method not in IDEMPOTENT_METHODS
    note = (
        " The request may have reached the upstream: do not repeat it blindly; re-send it with the"
        " same idempotency key to get its outcome."
        if ambiguous
        else ""
    )
    target = f"{request.method} {request.url.copy_with(query=None)}"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Request timed out: {target}.{note}", details={"ambiguous": ambiguous})
    return APIConnectionError(
        f"Connection to the gateway failed: {target} ({type(exc).__name__}).{note}",
        details={"ambiguous": ambiguous},
    )


def send_with_retries(
    request: httpx.Request, config: RetryConfig, *, stream: bool = False
) -> Generator[Any, Any, httpx.Response]:
    """Send ``request``, retrying per ``config``; returns the final response (any status)."""
    attempt = 0
    while True:
        try:
            response: httpx.Response = yield Send(request, stream=stream)
        except httpx.TransportError as exc:
            if attempt < config.max_retries and may_retry_request(request):
                attempt += 1
                yield Sleep(config.backoff(attempt))
                continue
            raise connection_error(exc, request) from exc
        if attempt < config.max_retries and is_retryable_response(response, config) and may_retry_request(request):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is None or retry_after <= config.max_retry_after:
                attempt += 1
                yield Sleep(retry_after if retry_after is not None else config.backoff(attempt))
                continue
        return response
