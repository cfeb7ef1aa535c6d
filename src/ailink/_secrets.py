"""Keeping secrets out of reprs, logs, exception text and recordings: the one place that knows
what a secret looks like (a known prefix, URL userinfo, or a field/parameter named like one)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: Prefixes of the secrets this toolkit knows: virtual tokens (both gateway generations), the
#: emulator's admin keys, provider keys.
SECRET_PREFIXES = ("ailink_v1_", "tf_v1_", "ailink_admin_", "sk-")
# ``sk-`` only where a word starts (``task-list`` is no key); the longer prefixes anywhere.
_SECRET_PATTERN = re.compile(r"(ailink_v1_|tf_v1_|ailink_admin_|(?<![A-Za-z0-9])sk-)[A-Za-z0-9_\-]{4,}")
# ``scheme://user:password@`` or ``scheme://credential@``: everything up to the last '@' of the
# authority (a raw '@' in a password is common enough).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@]*(?:@[^\s/?#@]*)*)@")
# ``name=value`` after '?', '&' or ';' (a URL's query); the value stops at quotes, brackets and
# commas too, so a URL inside JSON text is cut at its end.
_PARAMETER = re.compile(r"(?P<lead>[?&;])(?P<name>[\w.\-]+)=(?P<value>[^&;#\s\"'<>\\,()\[\]{}]*)")

# Names are compared lower-cased with everything but letters and digits removed.
_SECRET_NAME_PARTS = ("secret", "password", "passwd", "passphrase", "apikey", "privatekey", "accesskey",
                      "authorization", "cookie")
_SECRET_NAME_ENDINGS = ("token", "pwd", "credential", "credentials")
_SECRET_NAMES = ("key", "auth", "pass")
_CURSOR_ENDINGS = ("pagetoken", "nexttoken", "continuationtoken")  # pagination cursors, not credentials

#: What a redacted value becomes in recordings.
REDACTED = "REDACTED"


def is_secret_name(name: str) -> bool:
    """Whether a JSON field, query/form parameter or header called ``name`` holds a secret.

    Case, ``_`` and ``-`` do not matter: ``api_key``, ``X-Api-Key``, ``clientSecret``,
    ``access_token``, ``password``, ``Authorization``, ``private_key``, ``key`` are secrets;
    ``max_tokens``, ``token_count``, ``session_id``, ``idempotency_key`` and pagination cursors
    (``page_token``, ``next_token``) are not.
    """
    plain = "".join(ch for ch in name.lower() if ch.isalnum())
    if plain.endswith(_CURSOR_ENDINGS):
        return False
    return (
        plain in _SECRET_NAMES
        or any(part in plain for part in _SECRET_NAME_PARTS)
        or plain.endswith(_SECRET_NAME_ENDINGS)
    )


def mask(secret: str | None) -> str:
    """Show a recognisable prefix of a secret and hide the rest (``ailink_v1_ab12…``)."""
    if not secret:
        return "<none>"
    for prefix in SECRET_PREFIXES:
        if secret.startswith(prefix):
            return secret[: len(prefix) + 4] + "…"
    return secret[:4] + "…" if len(secret) > 8 else "…"


def _hide_userinfo(text: str, hidden: str) -> str:
    def replace(match: re.Match[str]) -> str:
        user, colon, _password = match.group("userinfo").partition(":")
        shown = f"{user}:{hidden}" if colon else hidden  # a lone userinfo may be a token itself
        return f"{match.group('scheme')}{shown}@"

    return _USERINFO.sub(replace, text)


def _hide_parameters(text: str, hidden: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if not match.group("value") or not is_secret_name(match.group("name")):
            return match.group(0)
        return f"{match.group('lead')}{match.group('name')}={hidden}"

    return _PARAMETER.sub(replace, text)


def _hide(text: str, hidden: str, token: Callable[[re.Match[str]], str]) -> str:
    if "://" in text:
        text = _hide_userinfo(text, hidden)
    if "=" in text:
        text = _hide_parameters(text, hidden)
    return _SECRET_PATTERN.sub(token, text)


def scrub(text: str) -> str:
    """``text`` with every token or provider key masked (``ailink_v1_ab12…``), URL passwords and
    secret-named URL parameters (``?api_key=``) replaced by ``***``."""
    return _hide(text, "***", lambda m: mask(m.group(0)))


def redact(text: str) -> str:
    """Like :func:`scrub`, for recordings: every secret becomes its prefix and ``REDACTED`` (no hint kept)."""
    return _hide(text, REDACTED, lambda m: m.group(1) + REDACTED)


def redact_fields(value: Any) -> tuple[Any, bool]:
    """``value`` (parsed JSON) with every field named like a secret replaced by ``"REDACTED"``,
    at any depth, and :func:`redact` applied to every other string; plus whether anything changed."""
    if isinstance(value, dict):
        changed = False
        result: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key) and item not in (None, "", REDACTED):
                result[key], changed = REDACTED, True
            else:
                result[key], item_changed = redact_fields(item)
                changed = changed or item_changed
        return result, changed
    if isinstance(value, list):
        items = [redact_fields(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    if isinstance(value, str):
        cleaned = redact(value)
        return cleaned, cleaned != value
    return value, False
