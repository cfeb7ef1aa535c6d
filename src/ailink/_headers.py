"""The one place the protocol §2 request headers are decided (both header generations).

Used by the request builder of the core clients and by the transport that every other httpx
client of this toolkit sends through (``client.openai()``, the framework LLMs), so both send the
same headers for the same situation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ailink._idempotency import check_idempotency_key, new_idempotency_key
from ailink._tracing import TraceContext, header_safe, trace_headers

#: Methods that never change anything upstream: no idempotency key unless the caller gives one.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Where a caller may have put an idempotency key, in order of preference (lower-case).
KEY_HEADERS = ("x-ailink-idempotency-key", "x-trueflow-idempotency-key", "idempotency-key", "x-idempotency-key")
#: What the client sends the key as: the approval re-attach header of both gateway generations.
#: (Not a plain ``Idempotency-Key``: on the real gateway it only switches on the gateway's own
#: upstream retries of writes, which the upstream cannot deduplicate; protocol §10.2.)
SENT_KEY_HEADERS = ("X-AIlink-Idempotency-Key", "X-TrueFlow-Idempotency-Key")
#: Caller-set headers sent under both brand spellings (the session headers already are).
BRANDED_PAIRS = {
    "x-ailink-agent-name": "X-TrueFlow-Agent-Name",
    "x-ailink-guardrails": "X-TrueFlow-Guardrails",
    "x-ailink-no-cache": "X-TrueFlow-No-Cache",
    "x-ailink-tool-name": "X-TrueFlow-Tool-Name",
}


#: The ``X-Properties`` key carrying the application id.
APP_ID_PROPERTY = "app_id"
_MAX_ID_CHARS = 255


@dataclass(frozen=True)
class Identity:
    """On whose behalf requests are made: the end user (``X-User-Id``), the organisation or tenant
    (``X-Tenant-Id``) and the application (``app_id`` in ``X-Properties``), as the gateway reads them."""

    user_id: str | None = None
    app_id: str | None = None
    org_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("user_id", "app_id", "org_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID_CHARS):
                raise ValueError(f"{name} must be a non-empty string of at most {_MAX_ID_CHARS} characters")

    def __bool__(self) -> bool:
        return bool(self.user_id or self.app_id or self.org_id)

    def over(self, weaker: Identity | None) -> Identity:
        """This identity, with ``weaker``'s values where this one has none."""
        if weaker is None:
            return self
        return Identity(self.user_id or weaker.user_id, self.app_id or weaker.app_id, self.org_id or weaker.org_id)


def apply_identity(
    context: TraceContext | None, call: Identity | None, default: Identity | None
) -> tuple[TraceContext | None, str | None]:
    """The trace context with the identity's user and app merged in, and the tenant id to send.

    Precedence: the call's own values, then the trace block's, then the client's defaults.
    """
    call = call or Identity()
    default = default or Identity()
    traced_app = context.properties.get(APP_ID_PROPERTY) if context is not None else None
    user = call.user_id or (context.user_id if context is not None else None) or default.user_id
    app = call.app_id or (traced_app if isinstance(traced_app, str) else None) or default.app_id
    if user or app:
        base = context or TraceContext()
        context = base.child(user_id=user, properties={APP_ID_PROPERTY: app} if app else None)
    return context, call.org_id or default.org_id


def both_spellings(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` plus the ``X-TrueFlow-`` twin of every branded ``X-AIlink-`` header in it."""
    out = dict(headers)
    present = {name.lower() for name in headers}
    for name, value in headers.items():
        twin = BRANDED_PAIRS.get(name.lower())
        if twin is not None and twin.lower() not in present:
            out[twin] = value
    return out


def missing_protocol_headers(
    present: Mapping[str, str],
    method: str,
    *,
    context: TraceContext | None,
    agent_name: str | None,
    idempotency_key: str | None = None,
    new_key: bool = True,
    identity: Identity | None = None,
    default_identity: Identity | None = None,
) -> dict[str, str]:
    """The protocol headers a request lacks, given its ``present`` headers (lower-case names).

    Session headers come from ``context``; headers already present are kept. The idempotency key
    is ``idempotency_key``, else one the caller put in any of :data:`KEY_HEADERS`, else (for a
    write, with ``new_key``) a fresh one; it is validated and sent in both generations' header.
    ``identity`` (this request's) and ``default_identity`` (the client's) add the user, app and
    tenant headers (see :func:`apply_identity`).
    """
    tenant = None
    if identity or default_identity:
        context, tenant = apply_identity(context, identity, default_identity)
    out = {name: value for name, value in trace_headers(context, agent_name=agent_name).items()
           if name.lower() not in present}
    if tenant and "x-tenant-id" not in present:
        out["X-Tenant-Id"] = header_safe(tenant)
    key = idempotency_key
    if key is None:
        key = next((present[name] for name in KEY_HEADERS if name in present), None)
    if key is None and new_key and method not in SAFE_METHODS:
        key = new_idempotency_key()
    if key is not None:
        check_idempotency_key(key)
        for name in SENT_KEY_HEADERS:
            if idempotency_key is not None or name.lower() not in present:
                out[name] = key
    return out
