"""The route table of this package, appended to the core management table (same auth wrapper)."""

from __future__ import annotations

from typing import Any

from .._app import Emulator
from . import _access, _aliases, _analytics, _config, _guardrails, _records, _tokens


def management_table(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    """``(path under /api/v1, handler, methods)`` for every endpoint of this package."""
    return [
        *_access.routes(emu), *_tokens.routes(emu), *_aliases.routes(emu), *_guardrails.routes(emu),
        *_config.routes(emu), *_analytics.routes(emu), *_records.routes(emu),
    ]
