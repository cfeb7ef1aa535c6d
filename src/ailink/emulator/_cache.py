"""The response cache of the real gateway (``shared/reference/gateway-wire-contract.md`` §1.9), both profiles.

A request is cacheable when it is a ``POST`` with a JSON object body that names a ``model`` (a string),
is not streamed (``"stream": true``) and asks for a deterministic answer (``temperature`` absent or a
number at most 0.1), and neither ``Cache-Control: no-cache``/``no-store`` nor the generation's no-cache
header (``X-AIlink-No-Cache`` / ``X-TrueFlow-No-Cache``: ``true`` or ``1``) opts out. The key is the
token plus the canonical JSON of the body fields in :data:`KEY_FIELDS` (not the path, and not an
embeddings ``input``: as on the real gateway, two such requests of one token with the same model share
an entry). Only complete 2xx answers up to 256 KiB are kept, for 300 s; a hit answers with the stored
status and body, ``content-type`` and ``x-<brand>-cache: HIT`` only (no ``MISS`` is ever sent).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

#: The body fields that make up the key (the newest gateway's list).
KEY_FIELDS = ("model", "messages", "temperature", "max_tokens", "tools", "tool_choice", "top_p", "frequency_penalty",
              "presence_penalty", "seed", "stop", "logit_bias", "system", "response_format")
TTL_SECONDS = 300.0
MAX_ENTRY_BYTES = 256 * 1024
MAX_ENTRIES = 2048
DETERMINISTIC_TEMPERATURE = 0.1


@dataclass(frozen=True)
class CachedAnswer:
    status: int
    content_type: str
    body: bytes


def cache_key(token_ref: str, method: str, headers: dict[str, str], body: Any, no_cache_header: str) -> str | None:
    """The key of a cacheable request (``headers``: lower-case names), else ``None``."""
    if method != "POST" or not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return None
    if body.get("stream") is True:
        return None
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and \
            temperature > DETERMINISTIC_TEMPERATURE:
        return None
    control = headers.get("cache-control", "").lower()
    if "no-cache" in control or "no-store" in control:
        return None
    if headers.get(no_cache_header, "").strip().lower() in ("true", "1"):
        return None
    canonical = json.dumps({name: body[name] for name in KEY_FIELDS if name in body}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{token_ref}:{canonical}".encode()).hexdigest()


class ResponseCache:
    """Answers kept per key for :data:`TTL_SECONDS` (in memory: a restart empties it), oldest evicted first."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, CachedAnswer]] = OrderedDict()

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: str, status: int, content_type: str, body: bytes) -> None:
        """Keep a complete answer, if it is a 2xx of at most :data:`MAX_ENTRY_BYTES`."""
        if not 200 <= status < 300 or len(body) > MAX_ENTRY_BYTES:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self._ttl, CachedAnswer(status, content_type, body))
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


__all__ = ["KEY_FIELDS", "CachedAnswer", "ResponseCache", "cache_key"]
