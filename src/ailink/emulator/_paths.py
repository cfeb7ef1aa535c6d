"""Proxied paths: normalised once (protocol §8, §10.5), then routed.

The path a request names is decoded only where that cannot change its meaning (unreserved
characters), dot segments (encoded ones included) are resolved and empty segments collapsed. A
path that would leave its base (the token's upstream or a registered service), that carries NUL
or control characters, an encoded ``/`` or ``\\``, or an encoded ``%`` in front of an encoded dot,
slash, backslash or NUL is refused: an upstream that decodes again could read it differently from
the policies. Policies see exactly the normalised path, which is the path forwarded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

SERVICE_PREFIX = ("v1", "proxy", "services")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
# "%25" (an encoded "%"), possibly encoded again, in front of an encoded dot, slash, backslash or NUL.
_MULTI_ENCODED = re.compile(r"%25(?:25)*(?:2e|2f|5c|00)", re.IGNORECASE)
MAX_PATH_LENGTH = 8192


class PathRefused(ValueError):
    """A proxied path that is refused before anything is forwarded (400 ``invalid_path``)."""


@dataclass(frozen=True)
class ProxyPath:
    """A normalised proxied path: what policies see and where it goes."""

    #: The normalised gateway path (``/v1/charges``, ``/v1/proxy/services/pay/v1/charges``).
    path: str
    #: The registered service it names, if any.
    service: str | None
    #: The path appended to the base URL (the service's remainder, else ``path``).
    forward_path: str


def _decode_unreserved(raw: str) -> str:
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch == "%":
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise PathRefused("malformed percent-encoding")
            code = int(pair, 16)
            if code < 0x20 or code == 0x7F:
                raise PathRefused("encoded NUL or control character")
            if code in (0x2F, 0x5C):
                raise PathRefused("encoded '/' or '\\'")
            decoded = chr(code)
            out.append(decoded if decoded in _UNRESERVED else "%" + pair.upper())
            i += 3
            continue
        code = ord(ch)
        if code <= 0x20 or code == 0x7F:
            raise PathRefused("NUL, control character or space")
        if ch == "\\":
            raise PathRefused("'\\' in the path")
        out.append(ch if code < 0x80 else "".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        i += 1
    return "".join(out)


def _resolve(segments: list[str], what: str) -> list[str]:
    """Remove dot segments; climbing above the first segment leaves the base → refused."""
    out: list[str] = []
    for segment in segments:
        if segment == ".":
            continue
        if segment == "..":
            if not out:
                raise PathRefused(f"the path leaves {what}")
            out.pop()
            continue
        out.append(segment)
    return out


def normalise(raw_path: str) -> ProxyPath:
    """Normalise a request's raw path (as received, still percent-encoded) or raise :class:`PathRefused`."""
    if len(raw_path) > MAX_PATH_LENGTH:
        raise PathRefused("path too long")
    if not raw_path.startswith("/"):
        raise PathRefused("the path must start with '/'")
    decoded = _decode_unreserved(raw_path)
    if _MULTI_ENCODED.search(decoded):
        raise PathRefused("multiply-encoded dot, slash or NUL")
    segments = [s for s in decoded.split("/") if s]  # empty segments collapse ("//v1" = "/v1")
    if segments[:3] == list(SERVICE_PREFIX) and len(segments) > 3 and segments[3] not in (".", ".."):
        name = segments[3]
        rest = _resolve(segments[4:], f"the base path of service '{name}'")
        forward = "/" + "/".join(rest)
        path = "/" + "/".join([*SERVICE_PREFIX, name, *rest])
        return ProxyPath(path=path, service=name, forward_path=forward)
    resolved = _resolve(segments, "the token's upstream base path")
    path = "/" + "/".join(resolved)
    if resolved[:3] == list(SERVICE_PREFIX) and len(resolved) > 3:
        return ProxyPath(path=path, service=resolved[3], forward_path="/" + "/".join(resolved[4:]))
    return ProxyPath(path=path, service=None, forward_path=path)


def join_url(base_url: str, forward_path: str, query: str = "") -> str:
    """``base_url`` + ``forward_path`` (+ ``?query``), keeping a query the base URL itself has."""
    parts = urlsplit(base_url)
    base_query = parts.query
    full_query = "&".join(q for q in (base_query, query) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + forward_path, full_query, ""))


__all__ = ["PathRefused", "ProxyPath", "join_url", "normalise"]
