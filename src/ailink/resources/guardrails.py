"""Guardrail presets: list them, attach them to a token, check and remove them.

The ``PRESET_*`` constants name the presets (also usable per request with
``client.with_guardrails([...])``).
"""

from __future__ import annotations

from typing import Any

from ailink.resources._base import AsyncResource, Call, SyncResource, as_dict, async_method, body, sync_method

__all__ = [
    "PRESET_CODE_INJECTION",
    "PRESET_HIPAA",
    "PRESET_LENGTH_LIMIT",
    "PRESET_PCI",
    "PRESET_PII_BLOCK",
    "PRESET_PII_ENTERPRISE",
    "PRESET_PII_REDACTION",
    "PRESET_PROMPT_INJECTION",
    "PRESET_TOPIC_FENCE",
    "AsyncGuardrailsResource",
    "GuardrailsResource",
]

PRESET_PROMPT_INJECTION = "prompt_injection"
"""Block jailbreaks, harmful content and code injection."""
PRESET_CODE_INJECTION = "code_injection"
"""Block SQL, shell and script injection."""
PRESET_PII_REDACTION = "pii_redaction"
"""Redact common personal data (SSN, email, card, phone, API key, IBAN, date of birth, IP)."""
PRESET_PII_ENTERPRISE = "pii_enterprise"
"""Redact every supported kind of personal data."""
PRESET_PII_BLOCK = "pii_block"
"""Refuse requests that contain personal data."""
PRESET_HIPAA = "hipaa"
"""Healthcare: redact SSN, email, phone, date of birth, medical record numbers."""
PRESET_PCI = "pci"
"""Payment cards: redact card numbers and API keys."""
PRESET_TOPIC_FENCE = "topic_fence"
"""Keep an agent to (or away from) topics; needs ``topic_allowlist`` or ``topic_denylist``."""
PRESET_LENGTH_LIMIT = "length_limit"
"""Refuse very long content."""


def _presets(data: Any) -> list[dict[str, Any]]:
    data = as_dict(data).get("presets", data)
    if not isinstance(data, list):
        raise ValueError("expected a list of presets")
    return data


def _list_presets() -> Call[list[dict[str, Any]]]:
    """The presets the gateway offers (``name``, ``description``, ``category``, ...)."""
    return Call("GET", "/api/v1/guardrails/presets", _presets)


def _status(token_id: str) -> Call[dict[str, Any]]:
    """The guardrails active on a token (``has_guardrails``, ``presets``, ``source``, ...)."""
    return Call("GET", "/api/v1/guardrails/status", as_dict, params={"token_id": token_id})


def _enable(
    token_id: str,
    presets: list[str],
    *,
    topic_allowlist: list[str] | None = None,
    topic_denylist: list[str] | None = None,
) -> Call[dict[str, Any]]:
    """Attach presets to a token; returns ``applied_presets``, ``policy_id``, ``skipped``, ..."""
    payload = body(token_id=token_id, presets=list(presets), source="sdk", topic_allowlist=topic_allowlist,
                   topic_denylist=topic_denylist)
    return Call("POST", "/api/v1/guardrails/enable", as_dict, json=payload)


def _disable(token_id: str, *, policy_name_prefix: str | None = None) -> Call[dict[str, Any]]:
    """Remove a token's guardrail policies (only those whose name starts with the prefix, if given)."""
    payload = body(token_id=token_id, policy_name_prefix=policy_name_prefix)
    return Call("DELETE", "/api/v1/guardrails/disable", as_dict, json=payload)


class GuardrailsResource(SyncResource):
    """``client.guardrails``."""

    list_presets = sync_method(_list_presets)
    status = sync_method(_status)
    enable = sync_method(_enable)
    disable = sync_method(_disable)


class AsyncGuardrailsResource(AsyncResource):
    """``client.guardrails`` of an :class:`~ailink.AsyncClient`."""

    list_presets = async_method(_list_presets)
    status = async_method(_status)
    enable = async_method(_enable)
    disable = async_method(_disable)
