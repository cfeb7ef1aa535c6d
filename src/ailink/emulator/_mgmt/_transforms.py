"""The proxy's request transforms: model aliases and guardrails, applied before policies run.

:func:`transform_request` is the one call-out the data plane makes into this package (from
``Emulator._process``, marked "E2 hook"). It returns the body to evaluate, store for approval and
forward: the aliased ``model`` replaced by the real one, PII redacted by the redaction presets; or it
raises 403 ``content_blocked`` (audited, nothing forwarded) when a blocking preset matches. Bodies it
does not understand (not JSON, not ``text/*``) pass unchanged, and a request with no alias in its
project and no guardrails is not parsed at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .._app import Emulator, GatewayError
from .._pii import map_strings, redact_text
from .._store import DEFAULT_PROJECT
from ._aliases import has_aliases, resolve_model
from ._guardrails import check_refusals, header_guardrails, redactions, token_guardrails


def _decode(headers: Any, body: bytes) -> tuple[str, Any] | None:
    """(``"json"``, document) or (``"text"``, str) for bodies the transforms can read; else ``None``."""
    if not body:
        return None
    content_type = (headers.get("content-type") or "").lower()
    looks_json = "json" in content_type or (not content_type and body.lstrip()[:1] in (b"{", b"["))
    try:
        if looks_json:
            return "json", json.loads(body)
        if content_type.startswith("text/"):
            return "text", body.decode("utf-8")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return None


def transform_request(emu: Emulator, token: dict[str, Any], headers: Any, body: bytes, audit: dict[str, Any],
                      finish_audit: Callable[..., None]) -> bytes:
    """The body to forward after aliases and guardrails (see the module docstring)."""
    project_id = token.get("project_id") or DEFAULT_PROJECT
    active = [g for g in (header_guardrails(headers, emu.generation), token_guardrails(emu.store, token))
              if g and g.presets]
    aliased = has_aliases(emu.store, project_id)
    if not active and not aliased:
        return body
    decoded = _decode(headers, body)
    if decoded is None:
        return body
    kind, doc = decoded
    changed = False
    if kind == "json" and aliased and isinstance(doc, dict) and isinstance(doc.get("model"), str):
        target = resolve_model(emu.store, project_id, doc["model"])
        if target is not None:
            doc = {**doc, "model": target}
            audit["model"] = target
            changed = True
    try:
        for guardrails in active:
            check_refusals(guardrails, doc)
    except GatewayError as exc:
        finish_audit(exc.status, policy_result="denied", deny_reason=exc.message, error_code=exc.code)
        raise
    kinds = redactions(active)
    if kinds:
        redacted = map_strings(doc, lambda text: redact_text(text, kinds))
        if redacted != doc:
            doc, changed = redacted, True
    if not changed:
        return body
    if kind == "text":
        return str(doc).encode("utf-8")
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
