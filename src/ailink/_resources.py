"""The management API (``X-Admin-Key``): each endpoint described once, run by either driver."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from ailink._config import ClientConfig
from ailink._errors import MalformedResponseError, error_from_response
from ailink._flow import run_async, run_sync
from ailink._models import (
    ApprovalDecision,
    ApprovalRequest,
    AuditLog,
    Created,
    Credential,
    Policy,
    Service,
    Session,
    Token,
    TokenCreated,
)
from ailink._retry import RetryConfig, send_with_retries
from ailink._secrets import mask, scrub
from ailink._transport import AsyncGatewayHTTPClient, GatewayHTTPClient

__all__ = ["AdminClient", "AsyncAdminClient"]

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One management-API call: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    json: Any = None


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _one(model: type[T]) -> Callable[[Any], T]:
    adapter = TypeAdapter(model)
    return adapter.validate_python


def _many(model: type[T]) -> Callable[[Any], list[T]]:
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]

    def parse(data: Any) -> list[T]:
        if isinstance(data, dict):
            data = next((data[k] for k in ("data", "items", "results") if isinstance(data.get(k), list)), data)
        result: list[T] = adapter.validate_python(data)
        return result

    return parse


def _raw(data: Any) -> Any:
    return data


def _none(data: Any) -> None:
    return None


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


# -- endpoint descriptions (written once) ------------------------------------------------------


def token_create(name: str, upstream_url: str, *, policy_ids: list[str] | None = None,
                 credential_id: str | None = None, **extra: Any) -> Call[TokenCreated]:
    """Create a virtual token; the answer's ``token_id`` is the token."""
    body = _body(name=name, upstream_url=upstream_url, policy_ids=policy_ids, credential_id=credential_id, **extra)
    return Call("POST", "/api/v1/tokens", _one(TokenCreated), json=body)


def token_list(limit: int | None = None, offset: int | None = None) -> Call[list[Token]]:
    return Call("GET", "/api/v1/tokens", _many(Token), params=_body(limit=limit, offset=offset))


def token_get(token_id: str) -> Call[Token]:
    return Call("GET", f"/api/v1/tokens/{_seg(token_id)}", _one(Token))


def token_update(token_id: str, **fields: Any) -> Call[Any]:
    return Call("PATCH", f"/api/v1/tokens/{_seg(token_id)}", _raw, json=fields)


def token_delete(token_id: str) -> Call[None]:
    """Revoke a token."""
    return Call("DELETE", f"/api/v1/tokens/{_seg(token_id)}", _none)


def credential_create(name: str, secret: str, *, provider: str = "generic", injection_mode: str = "bearer",
                      injection_header: str = "Authorization", **extra: Any) -> Call[Created]:
    """Store an upstream credential; its secret is never returned."""
    body = _body(name=name, secret=secret, provider=provider, injection_mode=injection_mode,
                 injection_header=injection_header, **extra)
    return Call("POST", "/api/v1/credentials", _one(Created), json=body)


def credential_list() -> Call[list[Credential]]:
    return Call("GET", "/api/v1/credentials", _many(Credential))


def credential_delete(credential_id: str) -> Call[Any]:
    return Call("DELETE", f"/api/v1/credentials/{_seg(credential_id)}", _raw)


def policy_create(name: str, rules: list[dict[str, Any]], *, mode: str = "enforce", phase: str = "pre",
                  **extra: Any) -> Call[Created]:
    """Create a policy (``rules`` as in protocol §8)."""
    body = _body(name=name, rules=rules, mode=mode, phase=phase, **extra)
    return Call("POST", "/api/v1/policies", _one(Created), json=body)


def policy_list() -> Call[list[Policy]]:
    return Call("GET", "/api/v1/policies", _many(Policy))


def policy_get(policy_id: str) -> Call[Policy]:
    return Call("GET", f"/api/v1/policies/{_seg(policy_id)}", _one(Policy))


def policy_update(policy_id: str, **fields: Any) -> Call[Any]:
    return Call("PUT", f"/api/v1/policies/{_seg(policy_id)}", _raw, json=fields)


def policy_delete(policy_id: str) -> Call[Any]:
    return Call("DELETE", f"/api/v1/policies/{_seg(policy_id)}", _raw)


def service_create(name: str, base_url: str, *, credential_id: str | None = None, description: str | None = None,
                   **extra: Any) -> Call[Service]:
    body = _body(name=name, base_url=base_url, credential_id=credential_id, description=description, **extra)
    return Call("POST", "/api/v1/services", _one(Service), json=body)


def service_list() -> Call[list[Service]]:
    return Call("GET", "/api/v1/services", _many(Service))


def service_get(service_id: str) -> Call[Service]:
    return Call("GET", f"/api/v1/services/{_seg(service_id)}", _one(Service))


def service_delete(service_id: str) -> Call[Any]:
    return Call("DELETE", f"/api/v1/services/{_seg(service_id)}", _raw)


def approval_list(status: str | None = None) -> Call[list[ApprovalRequest]]:
    """Approvals, newest first; ``status="pending"`` for those awaiting a decision."""
    return Call("GET", "/api/v1/approvals", _many(ApprovalRequest), params=_body(status=status))


def approval_get(approval_id: str) -> Call[ApprovalRequest]:
    return Call("GET", f"/api/v1/approvals/{_seg(approval_id)}", _one(ApprovalRequest))


def approval_decide(approval_id: str, decision: str, reason: str | None = None) -> Call[ApprovalDecision]:
    """Decide (``approved`` or ``rejected``); ``updated`` is False when it was no longer pending."""
    if decision not in ("approved", "rejected"):
        raise ValueError("decision must be 'approved' or 'rejected'")
    return Call("POST", f"/api/v1/approvals/{_seg(approval_id)}/decision", _one(ApprovalDecision),
                json=_body(decision=decision, reason=reason))


def approval_approve(approval_id: str, reason: str | None = None) -> Call[ApprovalDecision]:
    return approval_decide(approval_id, "approved", reason)


def approval_reject(approval_id: str, reason: str | None = None) -> Call[ApprovalDecision]:
    return approval_decide(approval_id, "rejected", reason)


def audit_list(limit: int | None = None, offset: int | None = None, *, session_id: str | None = None,
               agent_name: str | None = None, status: int | str | None = None) -> Call[list[AuditLog]]:
    params = _body(limit=limit, offset=offset, session_id=session_id, agent_name=agent_name, status=status)
    return Call("GET", "/api/v1/audit", _many(AuditLog), params=params)


def audit_get(audit_id: str) -> Call[AuditLog]:
    return Call("GET", f"/api/v1/audit/{_seg(audit_id)}", _one(AuditLog))


def session_list(limit: int | None = None, offset: int | None = None) -> Call[list[Session]]:
    return Call("GET", "/api/v1/sessions", _many(Session), params=_body(limit=limit, offset=offset))


def session_get(session_id: str) -> Call[Session]:
    """A session's summary with its requests (each with ``parent_span_id``)."""
    return Call("GET", f"/api/v1/sessions/{_seg(session_id)}", _one(Session))


def session_set_status(session_id: str, status: str) -> Call[Any]:
    """``active``, ``paused`` or ``completed``; requests in a non-active session are refused."""
    return Call("PATCH", f"/api/v1/sessions/{_seg(session_id)}/status", _raw, json={"status": status})


# -- the two drivers -------------------------------------------------------------------------


def _call_flow(config: ClientConfig, call: Call[T]) -> Generator[Any, Any, T]:
    request = config.build_request(call.method, call.path, params=call.params, json=call.json, admin=True)
    response: httpx.Response = yield from send_with_retries(request, config.retry)
    if response.status_code >= 400:
        raise error_from_response(response)
    if response.status_code == 204 or not response.content:
        return call.parse(None)
    try:
        data = response.json()
    except ValueError as exc:
        raise MalformedResponseError("Management API answered with a body that is not JSON",
                                     status_code=response.status_code, response=response) from exc
    try:
        return call.parse(data)
    except ValueError as exc:
        raise MalformedResponseError(f"Unexpected management API answer: {exc}",
                                     status_code=response.status_code, response=response) from exc


class _Resource:
    def __init__(self, client: Any) -> None:
        self._client = client


def _sync(spec: Callable[P, Call[T]]) -> Callable[Concatenate[_Resource, P], T]:
    def method(self: _Resource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = self._client._execute(spec(*args, **kwargs))
        return result

    method.__doc__ = spec.__doc__
    method.__name__ = spec.__name__
    return method


def _async(spec: Callable[P, Call[T]]) -> Callable[Concatenate[_Resource, P], Any]:
    async def method(self: _Resource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self._client._aexecute(spec(*args, **kwargs))
        return result

    method.__doc__ = spec.__doc__
    method.__name__ = spec.__name__
    return method


class Tokens(_Resource):
    create = _sync(token_create)
    list = _sync(token_list)
    get = _sync(token_get)
    update = _sync(token_update)
    delete = _sync(token_delete)


class Credentials(_Resource):
    create = _sync(credential_create)
    list = _sync(credential_list)
    delete = _sync(credential_delete)


class Policies(_Resource):
    create = _sync(policy_create)
    list = _sync(policy_list)
    get = _sync(policy_get)
    update = _sync(policy_update)
    delete = _sync(policy_delete)


class Services(_Resource):
    create = _sync(service_create)
    list = _sync(service_list)
    get = _sync(service_get)
    delete = _sync(service_delete)


class Approvals(_Resource):
    list = _sync(approval_list)
    get = _sync(approval_get)
    decide = _sync(approval_decide)
    approve = _sync(approval_approve)
    reject = _sync(approval_reject)


class Audit(_Resource):
    list = _sync(audit_list)
    get = _sync(audit_get)


class Sessions(_Resource):
    list = _sync(session_list)
    get = _sync(session_get)
    set_status = _sync(session_set_status)


class AsyncTokens(_Resource):
    create = _async(token_create)
    list = _async(token_list)
    get = _async(token_get)
    update = _async(token_update)
    delete = _async(token_delete)


class AsyncCredentials(_Resource):
    create = _async(credential_create)
    list = _async(credential_list)
    delete = _async(credential_delete)


class AsyncPolicies(_Resource):
    create = _async(policy_create)
    list = _async(policy_list)
    get = _async(policy_get)
    update = _async(policy_update)
    delete = _async(policy_delete)


class AsyncServices(_Resource):
    create = _async(service_create)
    list = _async(service_list)
    get = _async(service_get)
    delete = _async(service_delete)


class AsyncApprovals(_Resource):
    list = _async(approval_list)
    get = _async(approval_get)
    decide = _async(approval_decide)
    approve = _async(approval_approve)
    reject = _async(approval_reject)


class AsyncAudit(_Resource):
    list = _async(audit_list)
    get = _async(audit_get)


class AsyncSessions(_Resource):
    list = _async(session_list)
    get = _async(session_get)
    set_status = _async(session_set_status)


def _admin_config(admin_key: str | None, gateway_url: str | None, timeout: float,
                  retries: int | RetryConfig, verify_ssl: bool) -> ClientConfig:
    config = ClientConfig.from_env(
        gateway_url=gateway_url, admin_key=admin_key, timeout=timeout, retries=retries, verify_ssl=verify_ssl
    )
    if not config.admin_key:
        raise ValueError("an admin key is required: pass admin_key= or set AILINK_ADMIN_KEY")
    return config


class AdminClient:
    """Management API client: ``tokens``, ``credentials``, ``policies``, ``services``,
    ``approvals``, ``audit`` and ``sessions``, returning pydantic models."""

    def __init__(self, admin_key: str | None = None, gateway_url: str | None = None, *, timeout: float = 30.0,
                 retries: int | RetryConfig = 2, verify_ssl: bool = True,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.config = _admin_config(admin_key, gateway_url, timeout, retries, verify_ssl)
        self._http = GatewayHTTPClient(transport=transport, verify=verify_ssl, timeout=self.config.http_timeout())
        self.tokens = Tokens(self)
        self.credentials = Credentials(self)
        self.policies = Policies(self)
        self.services = Services(self)
        self.approvals = Approvals(self)
        self.audit = Audit(self)
        self.sessions = Sessions(self)

    def __repr__(self) -> str:
        return (
            f"AdminClient(gateway_url={scrub(self.config.gateway_url)!r}, "
            f"admin_key={mask(self.config.admin_key)!r})"
        )

    def _execute(self, call: Call[T]) -> T:
        return run_sync(_call_flow(self.config, call), self._http)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncAdminClient:
    """Async management API client; mirrors :class:`AdminClient`."""

    def __init__(self, admin_key: str | None = None, gateway_url: str | None = None, *, timeout: float = 30.0,
                 retries: int | RetryConfig = 2, verify_ssl: bool = True,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = _admin_config(admin_key, gateway_url, timeout, retries, verify_ssl)
        self._http = AsyncGatewayHTTPClient(transport=transport, verify=verify_ssl, timeout=self.config.http_timeout())
        self.tokens = AsyncTokens(self)
        self.credentials = AsyncCredentials(self)
        self.policies = AsyncPolicies(self)
        self.services = AsyncServices(self)
        self.approvals = AsyncApprovals(self)
        self.audit = AsyncAudit(self)
        self.sessions = AsyncSessions(self)

    def __repr__(self) -> str:
        return (
            f"AsyncAdminClient(gateway_url={scrub(self.config.gateway_url)!r}, "
            f"admin_key={mask(self.config.admin_key)!r})"
        )

    async def _aexecute(self, call: Call[T]) -> T:
        return await run_async(_call_flow(self.config, call), self._http)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAdminClient:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
