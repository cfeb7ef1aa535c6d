"""Receiving the gateway's webhooks: check that a delivery is genuine before acting on it.

>>> event = verify_webhook(request_body, request_headers, secret)   # raises if forged
>>> event["event_type"], event["details"]["approval_id"]

A delivery is a JSON body ``{id, event_type, timestamp, token_id, token_name, project_id, details}``
with the headers ``x-ailink-delivery-id`` (the same on every retry of one delivery: use it to drop
duplicates), ``x-ailink-timestamp``, ``x-ailink-event`` and ``x-ailink-signature: sha256=<hex>``, the
HMAC-SHA256 of the raw body with the webhook's secret (the ``x-trueflow-`` spellings of the newer
gateway generation are read too).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["SIGNATURE_HEADERS", "WebhookVerificationError", "sign_webhook", "verify_webhook"]

#: Where the signature may be, in the order they are read.
SIGNATURE_HEADERS = ("x-ailink-signature", "x-trueflow-signature")
_SCHEME = "sha256="


class WebhookVerificationError(ValueError):
    """The delivery is not signed with the secret, is malformed, or is older than the tolerance allows."""


def sign_webhook(body: bytes | str, secret: str) -> str:
    """The signature header value of ``body``: ``sha256=`` + hex HMAC-SHA256 with ``secret``."""
    raw = body.encode() if isinstance(body, str) else body
    return _SCHEME + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {str(k).lower(): v for k, v in headers.items()}
    for name in names:
        value = lowered.get(name)
        if value:
            return str(value)
    return None


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str,
                   *, tolerance: float | None = 300.0) -> dict[str, Any]:
    """The delivered event, once its signature proves it came from the gateway with ``secret``.

    ``body`` is the raw request body, exactly as received (not re-serialised JSON); ``headers`` any
    mapping of the request's headers (names in any case). ``tolerance`` (seconds) refuses an event
    whose signed ``timestamp`` is further than that from now, so a captured delivery cannot be
    replayed later; ``None`` skips that check. Raises :class:`WebhookVerificationError`; the message
    never contains the secret.
    """
    if not secret:
        raise WebhookVerificationError("no webhook secret given to verify with")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    given = _header(headers, SIGNATURE_HEADERS)
    if given is None:
        raise WebhookVerificationError("the delivery carries no x-ailink-signature header")
    if not hmac.compare_digest(given.strip().encode(), sign_webhook(raw, secret).encode()):
        raise WebhookVerificationError("the signature does not match: wrong secret, or the body was changed")
    try:
        event = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the signed body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the signed body is not a JSON object")
    if tolerance is not None:
        stamp = event.get("timestamp")
        try:
            sent = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            raise WebhookVerificationError("the signed body has no valid timestamp") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=timezone.utc)
        age = abs((datetime.now(timezone.utc) - sent).total_seconds())
        if age > tolerance:
            raise WebhookVerificationError(
                f"the delivery's timestamp is {age:.0f} s from now (tolerance {tolerance:g} s): a replay?")
    return event
