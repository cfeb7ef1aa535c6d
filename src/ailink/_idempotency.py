"""Idempotency keys: one per logical call, derived from values that survive re-execution."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

MAX_KEY_LENGTH = 255
_KEY_PATTERN = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace, so equal arguments hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def derive_idempotency_key(*parts: Any, prefix: str = "ailk") -> str:
    """A stable key from ``parts`` (session, call id, tool name, canonical arguments, ...)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:48]
    return f"{prefix}_{digest}"


def new_idempotency_key() -> str:
    """A fresh random key for one logical call (generated once, reused by its retries)."""
    return f"idk_{os.urandom(16).hex()}"


def check_idempotency_key(key: str) -> str:
    """Validate a caller-supplied key."""
    if not _KEY_PATTERN.fullmatch(key):
        raise ValueError("idempotency_key must be 1-255 visible ASCII characters")
    return key
