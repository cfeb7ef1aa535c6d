"""What each gateway supports beyond the real AIlink gateway (protocol §6.1, §10.1).

A gateway that implements this project's extensions says so on every answer
(``X-AIlink-Extensions: respond-async, outcome-store``). The client remembers the latest set per
gateway origin; a gateway it has not heard from, or one that sends no such header, is assumed to
behave as the real gateway does (requests held for approval, no stored outcomes).
"""

from __future__ import annotations

import httpx

#: The gateway answers ``Prefer: respond-async`` with 202 and serves ``/v1/approvals/{id}``.
RESPOND_ASYNC = "respond-async"
#: The gateway stores the outcome of every forwarded request under its idempotency key (§5).
OUTCOME_STORE = "outcome-store"
#: The gateway streams the settlements of the calling token's approvals (``/v1/approvals/events``, §4.4).
APPROVALS_WATCH = "approvals-watch"

#: Paths of the management API, whose answers never carry the extensions header.
MANAGEMENT_PREFIX = "/api/"
_HEADERS = ("x-ailink-extensions", "x-trueflow-extensions")
_MAX_ORIGINS = 256
_known: dict[str, frozenset[str]] = {}


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port or ''}"


def remember(response: httpx.Response) -> None:
    """Record the extensions ``response``'s gateway advertises (none when it says nothing).

    Management API answers (``/api/...``) say nothing: the extensions are the data plane's, and no
    gateway advertises them there. A 5xx answer without the header says nothing either: an
    intermediary (a proxy, a load balancer) may have written it in the gateway's place.
    """
    value = next((response.headers[h] for h in _HEADERS if h in response.headers), None)
    if value is None:
        if response.status_code >= 500 or response.request.url.path.startswith(MANAGEMENT_PREFIX):
            return
        value = ""
    names = frozenset(part.strip().lower() for part in value.split(",") if part.strip())
    origin = _origin(response.request.url)
    if _known.get(origin) != names:
        if len(_known) >= _MAX_ORIGINS:
            _known.clear()
        _known[origin] = names


def supports(url: httpx.URL | str, extension: str) -> bool:
    """True when the gateway at ``url`` last said it implements ``extension``."""
    return extension in _known.get(_origin(httpx.URL(url) if isinstance(url, str) else url), frozenset())


def known(url: httpx.URL | str) -> bool:
    """True once the gateway at ``url`` has answered this process (so :func:`supports` is its word)."""
    return _origin(httpx.URL(url) if isinstance(url, str) else url) in _known


def forget() -> None:
    """Forget every gateway (tests)."""
    _known.clear()
