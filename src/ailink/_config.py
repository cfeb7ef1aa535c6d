"""Client configuration and the request builder shared by both drivers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, Literal

import httpx

from ailink import _extensions
from ailink._flow import BODY_TIMEOUT_EXTENSION, LANE_EXTENSION, WAIT_LANE
from ailink._headers import Identity, both_spellings, missing_protocol_headers
from ailink._retry import RetryConfig, mark_repeatable
from ailink._secrets import mask, scrub
from ailink._tracing import current_trace
from ailink._version import USER_AGENT

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


def _env(name: str) -> str | None:
    """``AILINK_<name>``, else the newer generation's ``TRUEFLOW_<name>``."""
    return os.environ.get(f"AILINK_{name}") or os.environ.get(f"TRUEFLOW_{name}") or None


def env_api_key() -> str | None:
    return _env("API_KEY")


def env_gateway_url() -> str:
    return _env("GATEWAY_URL") or DEFAULT_GATEWAY_URL


def env_admin_key() -> str | None:
    return _env("ADMIN_KEY")


def _names_user_agent(headers: Mapping[str, str]) -> bool:
    return any(name.lower() == "user-agent" for name in headers)


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
    #: The client-wide user, app and organisation every data-plane request is made for.
    identity: Identity | None = None

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
        user_id: str | None = None,
        app_id: str | None = None,
        org_id: str | None = None,
    ) -> ClientConfig:
        """A configuration from client options, with ``AILINK_API_KEY``, ``AILINK_GATEWAY_URL``
        and ``AILINK_ADMIN_KEY`` (else their ``TRUEFLOW_`` twins, then ``http://localhost:8443``)
        for what is not given. ``user_id``/``app_id``/``org_id`` go on every data-plane request
        (``X-User-Id``, ``app_id`` in ``X-Properties``, ``X-Tenant-Id``).

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
            default_headers=both_spellings(headers or {}),
            admin_key=admin_key if admin_key is not None else env_admin_key(),
            identity=Identity(user_id, app_id, org_id) or None,
        )

    def __repr__(self) -> str:
        return (
            f"ClientConfig(gateway_url={scrub(self.gateway_url)!r}, api_key={mask(self.api_key)!r}, "
            f"agent_name={self.agent_name!r}, approval_mode={self.approval_mode!r})"
        )

    def with_headers(self, headers: Mapping[str, str]) -> ClientConfig:
        return replace(self, default_headers=both_spellings({**self.default_headers, **headers}))

    @property
    def hold_timeout(self) -> float:
        """Read timeout for a call the gateway may hold while a human decides."""
        return self.hold_timeout_for(self.approval_timeout)

    def hold_timeout_for(self, approval_timeout: float | None) -> float:
        """Read timeout for a call that may be held up to ``approval_timeout`` (default: the client's)."""
        return max(self.timeout, (approval_timeout or self.approval_timeout) + HOLD_MARGIN_SECONDS)

    def http_timeout(self, *, hold: bool = False) -> httpx.Timeout:
        """The httpx timeouts of this client; ``hold=True`` reads longer than the approval timeout
        (for clients whose requests the gateway may hold while a human decides)."""
        connect = min(self.timeout, 10.0)
        return httpx.Timeout(self.timeout, connect=connect, read=self.hold_timeout if hold else self.timeout)

    @cached_property
    def _timeout_extension(self) -> dict[str, float | None]:
        return self.http_timeout().as_dict()

    @cached_property
    def _sets_user_agent(self) -> bool:
        return _names_user_agent(self.default_headers)

    def auth_headers(self, *, admin: bool = False) -> dict[str, str]:
        if admin:
            return {"X-Admin-Key": self.admin_key} if self.admin_key else {}
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def may_be_held(self, url: httpx.URL) -> bool:
        """True when a request that needs approval would be held open by this gateway (blocking mode,
        or a gateway not known to answer ``Prefer: respond-async`` with 202)."""
        return self.approval_mode == "blocking" or not _extensions.supports(url, _extensions.RESPOND_ASYNC)

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
        approval_timeout: float | None = None,
        admin: bool = False,
        identity: Identity | None = None,
        repeatable: bool = False,
        lane: str | None = None,
        pool_timeout: float | None = None,
    ) -> httpx.Request:
        """Build one data-plane (or, with ``admin=True``, management) request.

        Writes always get an idempotency key (``idempotency_key``, one the caller put in the
        headers, or a fresh one), created here once, so every retry of the request reuses it
        (a ``repeatable`` request, an LLM call, gets a fresh one per retry instead).
        A request that ``may_hold`` gets a read timeout above ``approval_timeout`` (default: the
        client's) when the gateway may hold it open (the real gateway does, for approvals).
        ``identity`` (this request's user, app, organisation) wins over the client's.
        ``lane`` picks the connection pool (:data:`~ailink._flow.LANE_EXTENSION`; default: the calls'
        pool); ``pool_timeout`` bounds the wait for a free connection (default: the client's timeout;
        unbounded on the approval waits' lane, whose requests are short and few).
        """
        method = method.upper()
        if not path.startswith("/"):
            raise ValueError("path must start with '/' (it is relative to the gateway URL)")
        url = _gateway_url(self.gateway_url + path)
        all_headers: dict[str, str] = {**self.auth_headers(admin=admin)}
        if not admin:
            all_headers.update(self.default_headers)
        if headers:
            all_headers.update(both_spellings(headers))
        # The request is sent as built (httpx's client-level headers do not apply): say who we are,
        # which the real gateway also takes for the agent name when none is given.
        if not (not admin and self._sets_user_agent) and not (headers and _names_user_agent(headers)):
            all_headers["User-Agent"] = USER_AGENT
        if not admin:
            if idempotency_key == "":
                raise ValueError("idempotency_key must not be empty (leave it out to get a fresh key)")
            if self.approval_mode == "async" and may_hold:
                all_headers.setdefault("Prefer", "respond-async")
            present = {name.lower(): value for name, value in all_headers.items()}
            all_headers.update(
                missing_protocol_headers(
                    present, method, context=current_trace(), agent_name=self.agent_name,
                    idempotency_key=idempotency_key, identity=identity, default_identity=self.identity,
                )
            )
        timeout = dict(self._timeout_extension)
        if pool_timeout is not None:
            timeout["pool"] = pool_timeout
        elif lane == WAIT_LANE:
            timeout["pool"] = None
        if read_timeout is not None:
            timeout["read"] = read_timeout
        elif may_hold and not admin and self.may_be_held(url):
            timeout["read"] = self.hold_timeout_for(approval_timeout)
        request = httpx.Request(
            method,
            url,
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            json=json,
            content=content,
            headers=all_headers,
            extensions={
                "timeout": timeout,
                PREPARED_EXTENSION: not admin,
                BODY_TIMEOUT_EXTENSION: min(self.timeout, read_timeout) if read_timeout is not None else self.timeout,
            },
        )
        if lane is not None:
            request.extensions[LANE_EXTENSION] = lane
        return mark_repeatable(request) if repeatable else request
