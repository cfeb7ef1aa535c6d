"""The comparison operators of the gateway's policy conditions, in one place.

The emulator enforces them (``ailink.emulator._policy``); the OpenAPI tools predict with them, before
any call, how a token's policies gate an operation (``ailink._openapi.gates``). Numbers compare as
numbers whatever their JSON type (``"1000" == 1000``, booleans are not numbers); ``glob`` knows only
``*`` and ``?``; patterns are matched by a caller-given test, since only the emulator can count on RE2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: ``(pattern, text, whole) -> matched`` (``whole``: the whole text, else a search), or None when the
#: pattern cannot be run here (the caller decides what an unknown result means).
RegexTest = Callable[[str, str, bool], "bool | None"]


def as_number(value: Any) -> float | None:
    """``value`` as the gateway compares numbers: ints, floats and numeric strings; never a boolean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def equal(a: Any, b: Any) -> bool:
    """The gateway's ``eq``: equal values, or equal numbers in any spelling."""
    if a == b:
        return True
    na, nb = as_number(a), as_number(b)
    return na is not None and nb is not None and na == nb


def glob_regex(pattern: str) -> str:
    """``*`` (any run of characters) and ``?`` (one character), as the real gateway's glob; the rest literal."""
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)


def compare(actual: Any, op: str, expected: Any, regex: RegexTest) -> bool | None:
    """Whether the present value ``actual`` satisfies ``op expected`` (``exists`` and absent fields are the
    caller's); None when only a pattern test could tell and ``regex`` cannot run it."""
    if op == "eq":
        return equal(actual, expected)
    if op == "neq":
        return not equal(actual, expected)
    if op in ("gt", "gte", "lt", "lte"):
        a, b = as_number(actual), as_number(expected)
        if a is None or b is None:
            return False
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    if op == "in":
        return isinstance(expected, list) and any(equal(actual, item) for item in expected)
    if op == "contains":
        if isinstance(actual, list):
            return any(equal(item, expected) for item in actual)
        if isinstance(actual, dict):
            return str(expected) in actual
        return str(expected) in str(actual)
    if op == "glob":
        return regex(glob_regex(str(expected)), str(actual), True)
    if op == "regex":
        return regex(str(expected), str(actual), False)
    if op == "starts_with":
        return str(actual).startswith(str(expected))
    if op == "ends_with":
        return str(actual).endswith(str(expected))
    return False
