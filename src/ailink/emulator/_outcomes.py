"""Idempotency outcomes (protocol §5, §10.3): what a key's record says about its request.

A non-GET request with a key claims ``(token, key)`` before anything else happens. Its record then
moves one way only::

    in_flight ──(about to send upstream)──▶ forwarding ──(complete answer)──▶ done (replayed)
        │                                       └──(no complete answer)────▶ unknown (never re-sent)
        ├──(refused before forwarding)──▶ released (record deleted: the key may be sent again)
        └──(approval required)──────────▶ approval (the key follows its approval)

:class:`KeyClaim` is the one place that performs these moves; a start-up after a crash turns
``forwarding`` into ``unknown`` and releases ``in_flight`` (:meth:`Store.recover_after_restart`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from starlette.responses import Response

from ._store import Store


@dataclass
class Stored:
    """A buffered upstream answer that can be replayed."""

    status: int
    headers: list[list[str]]
    body: bytes
    extra: dict[str, str] = field(default_factory=dict)

    def to_response(self, request_id: str, **extra: str) -> Response:
        headers = {k: v for k, v in self.headers}
        headers.update(self.extra)
        headers.update(extra)
        headers["x-request-id"] = request_id
        return Response(self.body, status_code=self.status, headers=headers)


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests "the same" for one key: method, normalised path, query, body hash."""
    return f"{method.upper()} {path}?{query} {hashlib.sha256(body).hexdigest()}"


class KeyClaim:
    """The idempotency record a non-GET request holds while it is processed (one terminal move)."""

    def __init__(self, store: Store, token_ref: str, key: str) -> None:
        self._store = store
        self.token_ref = token_ref
        self.key = key
        self.forwarded = False
        self.settled = False

    def forwarding(self) -> None:
        """Mark the record just before the request is sent upstream (a crash now means *unknown*)."""
        self.forwarded = True
        self._store.idem_set_state(self.token_ref, self.key, "forwarding")

    def complete(self, stored: Stored) -> None:
        """The upstream answered completely: store it (whatever its status) for replay."""
        if self._settle():
            self._store.idem_complete(self.token_ref, self.key, stored.status, stored.headers, stored.body)

    def unknown(self) -> None:
        """Sent, but without a complete answer: every re-send gets ``outcome_unknown``."""
        if self._settle():
            self._store.idem_set_state(self.token_ref, self.key, "unknown")

    def release(self) -> None:
        """Refused before forwarding: forget the key so the same request may be sent again."""
        if self._settle():
            self._store.idem_delete(self.token_ref, self.key)

    def attach(self, approval_id: str) -> None:
        """An approval now owns the key (§4.2): re-sends re-attach to it."""
        if self._settle():
            self._store.idem_attach_approval(self.token_ref, self.key, approval_id)

    def abandon(self) -> None:
        """The request ended without a verdict (error, cancellation): unknown once sent, else released."""
        if self.forwarded:
            self.unknown()
        else:
            self.release()

    def _settle(self) -> bool:
        if self.settled:
            return False
        self.settled = True
        return True


__all__ = ["KeyClaim", "Stored", "fingerprint"]
