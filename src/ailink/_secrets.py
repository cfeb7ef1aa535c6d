"""Keeping secrets out of reprs, logs and exception text."""

from __future__ import annotations

import re

#: Prefixes of the secrets this toolkit knows: virtual tokens (both gateway generations), the
#: emulator's admin keys, provider keys.
SECRET_PREFIXES = ("ailink_v1_", "tf_v1_", "ailink_admin_", "sk-")
_SECRET_PATTERN = re.compile(r"(ailink_v1_|tf_v1_|ailink_admin_|sk-)[A-Za-z0-9_\-]{4,}")


def mask(secret: str | None) -> str:
    """Show a recognisable prefix of a secret and hide the rest (``ailink_v1_ab12…``)."""
    if not secret:
        return "<none>"
    for prefix in SECRET_PREFIXES:
        if secret.startswith(prefix):
            return secret[: len(prefix) + 4] + "…"
    return secret[:4] + "…" if len(secret) > 8 else "…"


def scrub(text: str) -> str:
    """Replace anything that looks like a virtual token or provider key in ``text``."""
    return _SECRET_PATTERN.sub(lambda m: mask(m.group(0)), text)


def redact(text: str) -> str:
    """Replace every secret in ``text`` by its prefix and ``REDACTED`` (for recordings: no hint kept)."""
    return _SECRET_PATTERN.sub(lambda m: m.group(1) + "REDACTED", text)
