"""Bounds on hostile input: JSON nesting, idempotency keys, error-message length.

Everything here refuses with a :class:`ValueError` subclass; the app turns those into typed
4xx answers, never a 500 or a ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 64
MAX_KEY_LENGTH = 255
MAX_MESSAGE_LENGTH = 1000
# Strings (with their escapes) are removed before counting brackets; the alternatives cannot
# overlap, so the scan is linear.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JSONRefused(ValueError):
    """A body that is valid-looking JSON but exceeds a bound (depth) or is ambiguous (duplicate keys)."""


class NotJSON(ValueError):
    """A body that is not JSON at all."""


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``raw`` nests arrays/objects deeper than ``limit`` (checked before parsing)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise JSONRefused("duplicate keys in a JSON object")
    return out


def _no_constant(name: str) -> Any:
    raise NotJSON(f"{name} is not JSON")


def load_json(raw: bytes | str, *, strict_numbers: bool = True) -> Any:
    """Parse JSON with a nesting bound and no duplicate keys.

    Raises :class:`JSONRefused` (too deep, duplicate keys) or :class:`NotJSON` (anything else that
    does not parse). ``strict_numbers=False`` accepts ``NaN``/``Infinity`` as Python's own parser
    (and so a Python upstream) does.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if json_depth_exceeds(data):
        raise JSONRefused(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    kwargs: dict[str, Any] = {"object_pairs_hook": _no_duplicates}
    if strict_numbers:
        kwargs["parse_constant"] = _no_constant
    try:
        return json.loads(data, **kwargs)
    except JSONRefused:
        raise
    except RecursionError:  # cannot happen below the depth bound; kept as a last line
        raise JSONRefused(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotJSON("not valid JSON") from exc


def idempotency_key_problem(value: str) -> str | None:
    """Why ``value`` is not a usable idempotency key (1-255 visible ASCII characters), or None."""
    if not value:
        return "an idempotency key must not be empty"
    if len(value) > MAX_KEY_LENGTH:
        return f"an idempotency key is at most {MAX_KEY_LENGTH} characters"
    if not _VISIBLE_ASCII.fullmatch(value):
        return "an idempotency key is visible ASCII only (no spaces, control or non-ASCII characters)"
    return None


def cap(text: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """``text`` cut to ``limit`` characters (with a marker when cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["MAX_JSON_DEPTH", "JSONRefused", "NotJSON", "cap", "idempotency_key_problem", "json_depth_exceeds",
           "load_json"]
