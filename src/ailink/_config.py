"""Client configuration and the request builder shared by both drivers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, Literal

import httpx

from ailink._idempotency import check_idempotency_key, new_idempotency_key
from ailink._retry import IDEMPOTENT_METHODS, RetryConfig
from ailink._secrets import mask, scrub
from ailink._tracing import current_trace, trace_headers

DEFAULT_GATEWAY_URL = "http://localhost:8443"
ApprovalMode = Literal["async", "blocking"]
#: Extra read time granted on top of the approval timeout for calls the gateway may hold.
HOLD_MARGIN_SECONDS = 30.0
#: Request extension marking requests whose session headers were added when they were built.
PREPARED_EXTENSION = "ailink_headers_added"


@lru_cache(maxsize=1024)
def _gateway_url(url: str) -> httpx.URL:
    """Parse a request URL once: agents call the same few paths again and again, and httpx's
    URL parsing is a sizeable part of building a request. ``httpx.URL`` is immutable."""
    return httpx.URL(url)


def env_api_key() -> str | None:
    return os.environ.get("AILINK_API_KEY") or None


def env_gateway_url() -> str:
    return os.environ.get("AILINK_GATEWAY_URL") or DEFAULT_GATEWAY_URL


def env_admin_key() -> str | None:
    return os.environ.get("AILINK_ADMIN_KEY") or None


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs to build requests. Immutable; derived clients copy it."""

    api_key: str | None = field(default=None, repr=False)
    gateway_url: str = DEFAULT_GATEWAY_URL
    agent_name: str | None = None
    timeout: float = 30.0
    retry: RetryConfig = field(default_factory=RetryConfig)
    verify_ssl: bool = True
    approval_mode: ApprovalMode = "async"
    approval_timeout: float = 300.0
    default_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    admin_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.approval_mode not in ("async", "blocking"):
            raise ValueError("approval_mode must be 'async' or 'blocking'")
        if self.timeout <= 0 or self.approval_timeout <= 0:
            raise ValueError("timeout and approval_timeout must be positive")
        object.__setattr__(self, "gateway_url", self.gateway_url.rstrip("/"))

    @classmethod
    def from_env(
        cls,
        api_key: str | None = None,
        gateway_url: str | None = None,
        *,
        agent_name: str | None = None,
        timeout: float = 30.0,
        retries: int | RetryConfig = 2,
        verify_ssl: bool = True,
        approval_mode: ApprovalMode = "async",
        approval_timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        admin_key: str | None = None,
    ) -> ClientConfig:
        """A configuration from client options, with ``AILINK_API_KEY``, ``AILINK_GATEWAY_URL``
        and ``AILINK_ADMIN_KEY`` (then ``http://localhost:8443``) for what is not given.

        The one place those defaults are applied: clients and framework adapters build on it.
        """
        return cls(
            api_key=api_key if api_key is not None else env_api_key(),
            gateway_url=gateway_url or env_gateway_url(),
            agent_name=agent_name,
            timeout=timeout,
            retry=RetryConfig.coerce(retries),
            verify_ssl=verify_ssl,
            approval_mode=approval_mode,
            approval_timeout=approval_timeout if approval_timeout is not None else 300.0,
            default_headers=dict(headers or {}),
            admin_key=admin_key if admin_key is not None else env_admin_key(),
        )

    def __repr__(self) -> str:
        return (
            f"ClientConfig(gateway_url={scrub(self.gateway_url)!r}, api_key={mask(self.api_key)!r}, "
            f"agent_name={self.agent_name!r}, approval_mode={self.approval_mode!r})"
        )

    def with_headers(self, headers: Mapping[str, str]) -> ClientConfig:
        return replace(self, default_headers={**self.default_headers, **headers})

    @property
    def hold_timeout(self) -> float:
        """Read timeout for a call the gateway may hold while a human decides."""
        return max(self.timeout, self.approval_timeout + HOLD_MARGIN_SECONDS)

    def http_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    @cached_property
    def _timeout_extension(self) -> dict[str, float | None]:
        return self.http_timeout().as_dict()

    def auth_headers(self, *, admin: bool = False) -> dict[str, str]:
        if admin:
            return {"X-Admin-Key": self.admin_key} if self.admin_key else {}
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        may_hold: bool = True,
        read_timeout: float | None = None,
        admin: bool = False,
    ) -> httpx.Request:
        """Build one data-plane (or, with ``admin=True``, management) request.

        Non-GET requests always get an idempotency key (``idempotency_key`` or a fresh one),
        created here once, so every retry of the request reuses it.
        """
        method = method.upper()
        if not path.startswith("/"):
            raise ValueError("path must start with '/' (it is relative to the gateway URL)")
        all_headers: dict[str, str] = {**self.auth_headers(admin=admin)}
        if not admin:
            all_headers.update(self.default_headers)
        all_headers.update(headers or {})
        if not admin:
            if idempotency_key == "":
                raise ValueError("idempotency_key must not be empty (leave it out to get a fresh key)")
            key = idempotency_key or next(
                (v for k, v in all_headers.items() if k.lower() == "idempotency-key"), None
            )
            if key is None and method not in IDEMPOTENT_METHODS:
                key = new_idempotency_key()
            if key is not None:
                check_idempotency_key(key)
                all_headers["Idempotency-Key"] = key
                all_headers["X-AIlink-Idempotency-Key"] = key
            if self.approval_mode == "async" and may_hold:
                all_headers.setdefault("Prefer", "respond-async")
            # The session headers the transport would add, added here at once (cheaper than
            # mutating httpx headers one by one at send time); the transport keeps what is set.
            present = {name.lower() for name in all_headers}
            for name, value in trace_headers(current_trace(), agent_name=self.agent_name).items():
                if name.lower() not in present:
                    all_headers[name] = value
        timeout = dict(self._timeout_extension)
        if read_timeout is not None:
            timeout["read"] = read_timeout
        elif may_hold and not admin and self.approval_mode == "blocking":
            timeout["read"] = self.hold_timeout
        request = httpx.Request(
            method,
            _gateway_url(self.gateway_url + path),
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            json=json,
            content=content,
            headers=all_headers,
            extensions={"timeout": timeout, PREPARED_EXTENSION: not admin},
        )
        return request
