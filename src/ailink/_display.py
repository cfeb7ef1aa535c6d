"""Showing agent-controlled text to a person (terminal or page) without letting it act.

An agent chooses request bodies, paths, tool and agent names. Shown raw, a control character can
rewrite a terminal (ANSI escapes), and direction or zero-width characters can make a page or a
line read differently from what will be sent. :func:`visible` keeps the text and makes such
characters visible, and :func:`shown` also masks secrets; escaping for the medium (HTML, rich
markup) stays the caller's job.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Any

#: Unicode categories shown as ``⟨U+XXXX⟩``: controls, format (bidi, zero-width), line/paragraph separators.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def visible(value: Any, *, keep_newlines: bool = False) -> str:
    """``value`` as text, with control, format and direction characters shown as ``⟨U+202E⟩``
    (newlines and tabs kept when ``keep_newlines``). ``None`` becomes ``""``."""
    text = "" if value is None else str(value)
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in HIDDEN_CATEGORIES:
            out.append(f"⟨U+{ord(ch):04X}⟩")
        else:
            out.append(ch)
    return "".join(out)


def shown(value: Any, *, keep_newlines: bool = False) -> str:
    """:func:`visible` text with every secret masked (:func:`ailink._secrets.scrub`): what a page or a
    terminal may show of agent-controlled or stored text."""
    from ailink._secrets import scrub

    return visible(scrub("" if value is None else str(value)), keep_newlines=keep_newlines)


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time (``...Z`` accepted) as an aware datetime; ``None`` when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def duration(seconds: float) -> str:
    """``"4m 10s"``, ``"2h 05m"``, ``"12s"``."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def until(value: Any, now: datetime | None = None) -> str:
    """How long until ISO time ``value``: ``"in 4m 10s"``, ``"passed"``, or ``""`` when unknown."""
    when = parse_time(value)
    if when is None:
        return ""
    left = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return f"in {duration(left)}" if left > 0 else "passed"


__all__ = ["HIDDEN_CATEGORIES", "duration", "parse_time", "shown", "until", "visible"]
