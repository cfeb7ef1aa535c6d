"""Guardrail presets: per-token (``/api/v1/guardrails/...``) and per-request (``X-AIlink-Guardrails``).

Management (real gateway paths and shapes): ``GET /guardrails/presets`` → ``{"presets": [{name,
description, category, patterns?, required_fields?}]}``; ``POST /guardrails/enable`` ``{token_id,
presets, source?, topic_allowlist?, topic_denylist?}`` → ``{success, applied_presets, policy_id,
policy_name, skipped, previous_source}`` (sets the token's presets; unknown ones are ``skipped``);
``DELETE /guardrails/disable`` ``{token_id, policy_name_prefix?}`` → ``{success, removed}``;
``GET /guardrails/status?token_id=`` → ``{token_id, has_guardrails, source, policy_id, policy_name,
presets}``. ``token_id`` is the token or its ``ref``; answers show the masked token and ``token_ref``.
Deviation: the presets are stored per token, not as policies in the policy list (the real gateway
creates a policy named ``guardrails:<source>:<token>``; that name is reported as ``policy_name``).

Enforcement (before policies, on JSON or ``text/*`` request bodies): redaction presets
(``pii_redaction``, ``pii_enterprise``, ``hipaa``, ``pci``) replace matches in every string of the body
with ``[REDACTED_<TYPE>]`` before it is forwarded; blocking presets (``pii_block``,
``prompt_injection``, ``code_injection``, ``length_limit``, ``topic_fence``) refuse the request with
403 ``content_blocked`` (``type: content_policy_error``; ``details``: ``{policy, preset, detected_pii,
action}`` or ``{policy, preset, reason, matched_patterns, confidence}``, plus ``forwarded: false``).
Refusals are checked on the body as sent, before any redaction. Header presets (comma list in
``X-AIlink-Guardrails``, or ``X-TrueFlow-Guardrails`` in the ``trueflow`` generation) add to the
token's; unknown names are ignored.
Response-phase presets (``output_*``) are not emulated.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ailink._secrets import mask

from .._app import Emulator, GatewayError
from .._generation import Generation
from .._pii import finds, json_strings
from .._store import Store
from ._base import ManagementStore, new_uuid

MAX_TEXT = 50_000  # length_limit

FILTERS: dict[str, dict[str, re.Pattern[str]]] = {
    "jailbreak": {
        "ignore_previous_instructions": re.compile(
            r"(?i)\b(?:ignore|disregard|forget)\s{1,5}(?:all\s{1,5}|any\s{1,5}|the\s{1,5}|your\s{1,5})?"
            r"(?:previous|prior|above|earlier|system)\s{1,5}(?:instructions|prompts?|rules|guidelines)"),
        "dan": re.compile(r"\bDAN\b|(?i:\bdo anything now\b)"),
        "developer_mode": re.compile(r"(?i)\b(?:developer|god|jailbreak) mode\b|\bjailbreak(?:ed)?\b"),
        "reveal_system_prompt": re.compile(
            r"(?i)\b(?:reveal|print|show|repeat|output)\s{1,5}(?:your|the)\s{1,5}(?:system prompt|hidden "
            r"instructions|initial instructions)"),
        "no_restrictions": re.compile(
            r"(?i)\b(?:without|with no|ignore)\s{1,5}(?:any\s{1,5})?(?:restrictions|filters|limitations|guardrails)\b"
            r"|\byou are no longer bound\b"),
    },
    "harmful": {
        "weapons": re.compile(r"(?i)\bhow (?:to|do i|can i) (?:make|build|assemble) (?:a |an )?"
                              r"(?:bomb|explosive|pipe bomb|bioweapon|chemical weapon)\b"),
        "drugs": re.compile(r"(?i)\b(?:synthesi[sz]e|cook|make) (?:meth|methamphetamine|fentanyl|sarin|nerve agent)\b"),
    },
    "code_injection": {
        "sql_injection": re.compile(r"(?i)\bdrop\s{1,5}table\b|\bunion\s{1,5}(?:all\s{1,5})?select\b"
                                    r"|'\s{0,3}or\s{1,3}'?1'?\s{0,3}=\s{0,3}'?1"),
        "shell_command": re.compile(r"(?i);\s{0,5}rm\s{1,5}-rf\b"
                                    r"|\bcurl\s{1,5}[^\s|]{1,200}\s{0,5}\|\s{0,5}(?:ba)?sh\b"),
        "script_tag": re.compile(r"(?i)<script\b"),
        "code_eval": re.compile(r"\b(?:eval|exec)\s{0,5}\(|\bos\.system\s{0,5}\(|\b__import__\s{0,5}\(|\bsubprocess\."),
    },
}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    category: str
    redact: tuple[str, ...] = ()
    block_pii: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    max_length: int = 0
    needs_topics: bool = False


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("pii_redaction", "Redact 8 PII types (SSN, email, credit card, phone, API key, IBAN, date of birth, IPv4) "
           "in requests.", "privacy",
           redact=("ssn", "email", "credit_card", "phone", "api_key", "iban", "dob", "ipv4")),
    Preset("pii_enterprise", "Redact 12 PII types: pii_redaction plus passport, AWS key, driver's license, MRN.",
           "privacy", redact=("ssn", "email", "credit_card", "phone", "api_key", "iban", "dob", "ipv4", "passport",
                              "aws_key", "drivers_license", "mrn")),
    Preset("pii_block", "Refuse requests that contain PII (SSN, email, credit card, phone) with 403 content_blocked.",
           "privacy", block_pii=("ssn", "email", "credit_card", "phone")),
    Preset("prompt_injection", "Refuse jailbreak attempts, harmful requests and code injection.", "safety",
           filters=("jailbreak", "harmful", "code_injection")),
    Preset("code_injection", "Refuse SQL injection, shell commands, script tags and eval/exec.", "safety",
           filters=("code_injection",)),
    Preset("hipaa", "Healthcare: redact SSN, email, phone, date of birth, MRN.", "compliance",
           redact=("ssn", "email", "phone", "dob", "mrn")),
    Preset("pci", "Payment Card Industry: redact credit card numbers and API keys.", "compliance",
           redact=("credit_card", "api_key")),
    Preset("topic_fence", "Restrict prompts to topics (topic_allowlist) or away from them (topic_denylist).",
           "safety", needs_topics=True),
    Preset("length_limit", f"Refuse requests whose text exceeds {MAX_TEXT:,} characters.", "safety",
           max_length=MAX_TEXT),
)}


def preset_page(preset: Preset) -> dict[str, Any]:
    page: dict[str, Any] = {"name": preset.name, "description": preset.description, "category": preset.category}
    patterns = preset.redact or preset.block_pii
    if patterns:
        page["patterns"] = list(patterns)
    if preset.needs_topics:
        page["required_fields"] = ["topic_allowlist OR topic_denylist"]
    return page


# ---------------------------------------------------------------------- enforcement


@dataclass(frozen=True)
class ActiveGuardrails:
    """The presets that apply to one request, with the policy name refusals report."""

    policy: str
    presets: tuple[Preset, ...]
    topic_allowlist: tuple[str, ...] = ()
    topic_denylist: tuple[str, ...] = ()


def token_guardrails(store: Store, token: dict[str, Any]) -> ActiveGuardrails | None:
    row = stored_guardrails(store, token["ref"])
    if row is None:
        return None
    presets = tuple(PRESETS[n] for n in row["presets"] if n in PRESETS)
    return ActiveGuardrails(policy_name(row["source"], token["ref"]), presets, tuple(row["topic_allowlist"]),
                            tuple(row["topic_denylist"]))


def header_guardrails(headers: Any, generation: Generation) -> ActiveGuardrails | None:
    """The presets named in the request's guardrails header (the gateway generation's spelling)."""
    names: list[str] = []
    for part in (headers.get(generation.guardrails) or "").split(","):
        name = part.strip().lower()
        if name in PRESETS and not PRESETS[name].needs_topics and name not in names:
            names.append(name)
    if not names:
        return None
    return ActiveGuardrails(generation.display("guardrails"), tuple(PRESETS[n] for n in names))


def prompt_text(doc: Any) -> str:
    """The text a content filter reads: message contents, ``system``, ``prompt``, ``input``, ``instructions``
    when the body has them, else every string in the body."""
    parts: list[str] = []
    if isinstance(doc, dict):
        for message in doc.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            parts.extend(json_strings(content))
        for key in ("system", "prompt", "input", "instructions"):
            if key in doc:
                parts.extend(json_strings(doc[key]))
    if not parts:
        parts = list(json_strings(doc))
    return "\n".join(parts)


def _blocked(policy: str, preset: str, message: str, details: dict[str, Any]) -> GatewayError:
    return GatewayError(403, "content_blocked", message,
                        details={"policy": policy, "preset": preset, **details, "forwarded": False})


def check_refusals(active: ActiveGuardrails, doc: Any) -> None:
    """Raise 403 ``content_blocked`` when a blocking preset matches the body as sent."""
    everything = "\n".join(json_strings(doc))
    text = prompt_text(doc)
    for preset in active.presets:
        if preset.block_pii:
            detected = [kind for kind in preset.block_pii if finds(kind, everything)]
            if detected:
                raise _blocked(active.policy, preset.name, f"Request blocked by guardrail '{preset.name}': "
                               f"contains PII ({', '.join(detected)})", {"detected_pii": detected, "action": "block"})
        matched = [f"{family}:{name}" for family in preset.filters
                   for name, pattern in FILTERS[family].items() if pattern.search(text)]
        if matched:
            raise _blocked(active.policy, preset.name, f"Request blocked by guardrail '{preset.name}': "
                           "content policy violation", {"reason": "content policy violation",
                                                         "matched_patterns": matched,
                                                         "confidence": round(min(1.0, 0.4 + 0.2 * len(matched)), 2)})
        if preset.max_length and len(text) > preset.max_length:
            raise _blocked(active.policy, preset.name, f"Request blocked by guardrail '{preset.name}': content "
                           f"longer than {preset.max_length} characters",
                           {"reason": "content too long", "matched_patterns": [], "confidence": 1.0})
        if preset.needs_topics:
            lowered = text.lower()
            denied = [t for t in active.topic_denylist if t.lower() in lowered]
            if denied or (active.topic_allowlist and not any(t.lower() in lowered for t in active.topic_allowlist)):
                reason = f"denied topic: {denied[0]}" if denied else "off-topic (not in the topic allowlist)"
                raise _blocked(active.policy, preset.name, f"Request blocked by guardrail '{preset.name}': {reason}",
                               {"reason": reason, "matched_patterns": denied, "confidence": 1.0})


def redactions(active: list[ActiveGuardrails]) -> tuple[str, ...]:
    kinds: list[str] = []
    for guardrails in active:
        for preset in guardrails.presets:
            kinds.extend(k for k in preset.redact if k not in kinds)
    return tuple(kinds)


# ---------------------------------------------------------------------- management


def policy_name(source: str, token_ref: str) -> str:
    return f"guardrails:{source}:{token_ref}"


def stored_guardrails(store: Store, token_ref: str) -> dict[str, Any] | None:
    return ManagementStore(store).one("SELECT * FROM guardrails WHERE token_ref = ?", (token_ref,))


def save_guardrails(store: Store, token_ref: str, *, source: str, presets: list[str], topic_allowlist: list[str],
                    topic_denylist: list[str]) -> dict[str, Any]:
    """Set (replace) a token's presets; returns the stored row."""
    mgmt = ManagementStore(store)
    previous = stored_guardrails(store, token_ref)
    now = time.time()
    row = {"token_ref": token_ref, "id": previous["id"] if previous else new_uuid(), "source": source,
           "presets": presets, "topic_allowlist": topic_allowlist, "topic_denylist": topic_denylist,
           "created_at": previous["created_at"] if previous else now, "updated_at": now}
    mgmt.execute("DELETE FROM guardrails WHERE token_ref = ?", (token_ref,))
    return mgmt.insert("guardrails", row)


def usable_presets(names: list[str], topic_allowlist: list[str],
                   topic_denylist: list[str]) -> tuple[list[str], list[str]]:
    """(applied, skipped): unknown presets, repeats and ``topic_fence`` without topics are skipped."""
    applied: list[str] = []
    skipped: list[str] = []
    for name in names:
        preset = PRESETS.get(name)
        usable = preset is not None and (not preset.needs_topics or bool(topic_allowlist or topic_denylist))
        (applied if usable and name not in applied else skipped).append(name)
    return applied, skipped


def topic_list(doc: dict[str, Any], field: str) -> list[str]:
    value = doc.get(field) or []
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise GatewayError(422, "validation_error", f"{field} must be a list of non-empty strings")
    return [t.strip() for t in value]


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    mgmt = ManagementStore(emu.store)

    def token_of(value: Any) -> dict[str, Any]:
        if not isinstance(value, str) or not value:
            raise GatewayError(422, "validation_error", "token_id is required")
        row = emu.store.token_by_id(value)
        if row is None:
            raise GatewayError(404, "not_found", "Token not found")
        return row

    async def list_presets(request: Request) -> Response:
        return JSONResponse({"presets": [preset_page(p) for p in PRESETS.values()]})

    async def enable(request: Request) -> Response:
        doc = await emu.json_body(request)
        token = token_of(doc.get("token_id"))
        names = doc.get("presets")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise GatewayError(422, "validation_error", "presets must be a non-empty list of preset names")
        allow, deny = topic_list(doc, "topic_allowlist"), topic_list(doc, "topic_denylist")
        source = str(doc["source"]) if doc.get("source") in ("sdk", "dashboard", "header") else "sdk"
        applied, skipped = usable_presets(names, allow, deny)
        previous = stored_guardrails(emu.store, token["ref"])
        previous_source = previous["source"] if previous else None
        if not applied:
            return JSONResponse({"success": False, "applied_presets": [], "policy_id": None, "policy_name": "",
                                 "skipped": skipped, "previous_source": previous_source})
        row = save_guardrails(emu.store, token["ref"], source=source, presets=applied, topic_allowlist=allow,
                              topic_denylist=deny)
        return JSONResponse({"success": True, "applied_presets": applied, "policy_id": row["id"],
                             "policy_name": policy_name(source, token["ref"]), "skipped": skipped,
                             "previous_source": previous_source})

    async def disable(request: Request) -> Response:
        doc = await emu.json_body(request)
        token = token_of(doc.get("token_id"))
        prefix = doc.get("policy_name_prefix") or "guardrails:"
        if not isinstance(prefix, str):
            raise GatewayError(422, "validation_error", "policy_name_prefix must be a string")
        row = stored_guardrails(emu.store, token["ref"])
        removed = 0
        if row is not None and policy_name(row["source"], token["ref"]).startswith(prefix):
            removed = mgmt.execute("DELETE FROM guardrails WHERE token_ref = ?", (token["ref"],))
        return JSONResponse({"success": True, "removed": removed})

    async def status(request: Request) -> Response:
        ident = request.query_params.get("token_id")
        if not ident:
            raise GatewayError(400, "validation_error", "token_id query parameter is required")
        token = token_of(ident)
        row = stored_guardrails(emu.store, token["ref"])
        page: dict[str, Any] = {"token_id": mask(token["token"]), "token_ref": token["ref"],
                                "has_guardrails": row is not None, "source": None, "policy_id": None,
                                "policy_name": None, "presets": []}
        if row is not None:
            page.update(source=row["source"], policy_id=row["id"], policy_name=policy_name(row["source"], token["ref"]),
                        presets=row["presets"], topic_allowlist=row["topic_allowlist"],
                        topic_denylist=row["topic_denylist"])
        return JSONResponse(page)

    return [
        ("/guardrails/presets", list_presets, ["GET"]), ("/guardrails/enable", enable, ["POST"]),
        ("/guardrails/disable", disable, ["DELETE", "POST"]), ("/guardrails/status", status, ["GET"]),
    ]
