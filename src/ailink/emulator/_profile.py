"""Profiles: which of this project's protocol extensions the emulator serves.

``ailink`` (default) serves every extension of ``docs/protocol.md`` and says so in
``X-AIlink-Extensions``. ``real`` behaves, where a client can tell, like the real AIlink gateway
(``shared/reference/gateway-wire-contract.md``): approval-gated requests are held, nothing is
stored or replayed, a plain ``Idempotency-Key`` switches on the gateway's own upstream retries,
management errors are bare status codes, query strings stay at the gateway. The code consults
one :class:`Profile` object; it never compares profile names. Which spelling the branded headers
have (``X-AIlink-*`` or ``X-TrueFlow-*``) is the other, independent switch: ``_generation``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """The switches that tell the two emulator profiles apart."""

    name: str
    #: Tokens advertised in ``X-AIlink-Extensions`` on data-plane answers (empty: no header).
    extensions: tuple[str, ...]
    #: ``Prefer: respond-async`` gets a 202 (else approval-gated requests are always held).
    respond_async: bool
    #: ``/v1/approvals/{id}[/result]`` are agent endpoints (else they are proxied like any path).
    agent_approval_endpoints: bool
    #: ``GET /v1/approvals/events``: one event stream of the token's settled approvals (§4.4), and
    #: ``event_cursor`` in the 202 answer and the approval status.
    approvals_watch: bool
    #: Full idempotency (§5): outcomes stored and replayed, 409 in flight, 422 on a different
    #: request, approved requests executed once by the gateway with the result kept.
    outcome_store: bool
    #: A plain ``Idempotency-Key``/``X-Idempotency-Key`` names the key too (else only the
    #: generation's ``X-<brand>-Idempotency-Key`` does, which re-attaches a re-sent request to its approval).
    plain_key_headers: bool
    #: ``Idempotency-Key``/``X-Idempotency-Key`` on POST/PUT/PATCH switch on gateway-side upstream
    #: retries (the real gateway's §1.10); other methods are always retried.
    gateway_retries: bool
    #: The idempotency key is forwarded upstream as ``Idempotency-Key`` (so mocks can count).
    forward_idempotency_key: bool
    #: The query string reaches the upstream.
    forward_query: bool
    #: Gateway errors carry ``error.details`` (policy, approval id, forwarded, ambiguous, ...).
    error_details: bool
    #: Management API errors have the ``{"error": {...}}`` JSON body (else bare status codes).
    json_management_errors: bool
    #: LLM extensions: the cost of a call in ``X-AIlink-Cost-Usd`` (the generation's spelling) /
    #: ``usage.cost_usd``, provider and pricing in ``/v1/models``, and the token's ``/v1/metrics`` and
    #: ``/v1/me`` (``_metering``).
    llm_extensions: bool
    #: A decision on an unknown approval id is 404 ``approval_not_found`` (else, as the real gateway,
    #: 200 ``{"updated": false}``).
    unknown_approval_not_found: bool
    #: ``GET /api/v1/approvals/{id}`` and the ``?status=`` filter of the list exist (else 404, and
    #: every status is listed).
    approval_lookup: bool
    #: [H15 routing] the ``multi_objective`` routing strategy, ``GET /api/v1/tokens/{id}/usage`` and the
    #: detailed ``caps`` of ``GET /api/v1/tokens/{id}/spend`` (``_routing``, ``_budgets``, ``_quotas``).
    routing_extensions: bool = True
    #: ``POST /api/v1/approvals/decisions``: many decisions in one call (else 404, as the real gateway).
    bulk_decisions: bool = True


AILINK = Profile(
    name="ailink",
    extensions=("respond-async", "outcome-store", "approvals-watch"),
    respond_async=True,
    agent_approval_endpoints=True,
    approvals_watch=True,
    outcome_store=True,
    plain_key_headers=True,
    gateway_retries=False,
    forward_idempotency_key=True,
    forward_query=True,
    error_details=True,
    json_management_errors=True,
    llm_extensions=True,
    unknown_approval_not_found=True,
    approval_lookup=True,
)

REAL = Profile(
    name="real",
    extensions=(),
    respond_async=False,
    agent_approval_endpoints=False,
    approvals_watch=False,
    outcome_store=False,
    plain_key_headers=False,
    gateway_retries=True,
    forward_idempotency_key=False,
    forward_query=False,
    error_details=False,
    json_management_errors=False,
    llm_extensions=False,
    unknown_approval_not_found=False,
    approval_lookup=False,
    routing_extensions=False,
    bulk_decisions=False,
)

PROFILES = {p.name: p for p in (AILINK, REAL)}


def get_profile(profile: str | Profile) -> Profile:
    """The :class:`Profile` named ``profile`` (``"ailink"`` or ``"real"``); a Profile passes through."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown emulator profile {profile!r} (known: {', '.join(PROFILES)})") from None


__all__ = ["AILINK", "PROFILES", "REAL", "Profile", "get_profile"]
