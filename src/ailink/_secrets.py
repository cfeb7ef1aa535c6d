"""Keeping secrets out of reprs, logs and exception text."""

from __future__ import annotations

import re

_SECRET_PATTERN = re.compile(r"(ailink_v1_|tf_v1_|sk-)[A-Za-z0-9_\-]{4,}")


def mask(secret: str | None) -> str:
    """Show a recognisable prefix of a secret and hide the rest (``ailink_v1_ab12…``)."""
    if not secret:
        return "<none>"
    for prefix in ("ailink_v1_", "tf_v1_", "sk-"):
        if secret.startswith(prefix):
            return secret[: len(prefix) + 4] + "…"
    return secret[:4] + "…" if len(secret) > 8 else "…"


def scrub(text: str) -> str:
    """Replace anything that looks like a virtual token or provider key in ``text``."""
    return _SECRET_PATTERN.sub(lambda m: mask(m.group(0)), text)
