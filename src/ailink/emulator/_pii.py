"""Personal data in request and response bodies: the named patterns, finding and redacting them.

One copy for everything that redacts or blocks on PII: the guardrail presets (``_mgmt._guardrails``)
and the ``redact`` policy action (``_actions``). Patterns are linear-time: every repetition is bounded
or anchored on a character that cannot repeat it. Bodies are walked iteratively (no recursion on deep
documents).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "credit_card": re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
    "ssn": re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"),
    "email": re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
                        r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"),
    "api_key": re.compile(r"(?<![A-Za-z0-9])(?:sk|pk|rk)[-_](?:live_|test_|proj-)?[A-Za-z0-9_-]{16,200}"),
    "aws_key": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    "iban": re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Z0-9])"),
    "phone": re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}(?!\d)"),
    "ipv4": re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
                       r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)"),
    "dob": re.compile(r"(?i)\b(?:dob|date of birth|born on)[:\s]{1,5}\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b"),
    "mrn": re.compile(r"(?i)\bMRN[:#\s]{0,5}\d{6,12}\b"),
    "passport": re.compile(r"(?i)\bpassport(?: number| no\.?| #)?[:\s]{1,5}[A-Z0-9]{6,9}\b"),
    "drivers_license": re.compile(r"(?i)\b(?:driver'?s? licen[cs]e|DL)(?: number| no\.?| #)?[:\s]{1,5}"
                                  r"[A-Z0-9-]{5,15}\b"),
}
#: Redaction order: longer digit runs first, so a card number is not half-read as a phone number.
PII_ORDER = ("credit_card", "ssn", "iban", "email", "api_key", "aws_key", "ipv4", "dob", "mrn", "passport",
             "drivers_license", "phone")


def json_strings(doc: Any) -> Iterator[str]:
    """Every string value in a JSON document."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def map_strings(doc: Any, fn: Callable[[str], str]) -> Any:
    """A copy of a JSON document with ``fn`` applied to every string value (keys untouched)."""
    root: list[Any] = [doc]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        value = container[key]
        if isinstance(value, str):
            container[key] = fn(value)
        elif isinstance(value, dict):
            copy = dict(value)
            container[key] = copy
            stack.extend((copy, k) for k in copy)
        elif isinstance(value, list):
            copy_list = list(value)
            container[key] = copy_list
            stack.extend((copy_list, i) for i in range(len(copy_list)))
    return root[0]


def luhn(digits: str) -> bool:
    """The card-number checksum (so order numbers and the like are not taken for cards)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def finds(kind: str, text: str) -> list[str]:
    """The matches of the named pattern ``kind`` in ``text``."""
    found = PII_PATTERNS[kind].findall(text)
    if kind == "credit_card":
        found = [m for m in found if luhn(re.sub(r"\D", "", m))]
    return found


def redact_text(text: str, kinds: tuple[str, ...], matched: set[str] | None = None) -> str:
    """``text`` with every match of the named patterns ``kinds`` replaced by ``[REDACTED_<KIND>]``;
    the kinds that matched are added to ``matched``."""
    for kind in PII_ORDER:
        if kind not in kinds:
            continue

        def replace(match: re.Match[str], kind: str = kind) -> str:
            if kind == "credit_card" and not luhn(re.sub(r"\D", "", match.group(0))):
                return match.group(0)
            if matched is not None:
                matched.add(kind)
            return f"[REDACTED_{kind.upper()}]"

        text = PII_PATTERNS[kind].sub(replace, text)
    return text


__all__ = ["PII_ORDER", "PII_PATTERNS", "finds", "json_strings", "luhn", "map_strings", "redact_text"]
