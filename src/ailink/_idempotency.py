"""Idempotency keys: one per logical call, derived from values that survive re-execution."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

MAX_KEY_LENGTH = 255


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace, so equal arguments hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def derive_idempotency_key(*parts: Any, prefix: str = "ailk") -> str:
    """A stable key from ``parts`` (session, call id, tool name, canonical arguments, ...)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:48]
    return f"{prefix}_{digest}"


def new_idempotency_key() -> str:
    """A fresh random key for one logical call (generated once, reused by its retries)."""
    return f"idk_{uuid.uuid4().hex}"


def check_idempotency_key(key: str) -> str:
    """Validate a caller-supplied key."""
    if not key or len(key) > MAX_KEY_LENGTH or any(ord(c) < 0x21 or ord(c) > 0x7E for c in key):
        raise ValueError("idempotency_key must be 1-255 visible ASCII characters")
    return key
