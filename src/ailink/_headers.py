"""The one place the protocol §2 request headers are decided (both header generations).

Used by the request builder of the core clients and by the transport that every other httpx
client of this toolkit sends through (``client.openai()``, the framework LLMs), so both send the
same headers for the same situation.
"""

from __future__ import annotations

from collections.abc import Mapping

from ailink._idempotency import check_idempotency_key, new_idempotency_key
from ailink._tracing import TraceContext, trace_headers

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
) -> dict[str, str]:
    """The protocol headers a request lacks, given its ``present`` headers (lower-case names).

    Session headers come from ``context``; headers already present are kept. The idempotency key
    is ``idempotency_key``, else one the caller put in any of :data:`KEY_HEADERS`, else (for a
    write, with ``new_key``) a fresh one; it is validated and sent in both generations' header.
    """
    out = {name: value for name, value in trace_headers(context, agent_name=agent_name).items()
           if name.lower() not in present}
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
