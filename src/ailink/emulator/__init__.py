"""The local AIlink gateway emulator (Starlette + SQLite), speaking ``shared/design/protocol.md``.

Public surface: :func:`create_app`, :func:`run_in_thread` / :class:`RunningEmulator`,
:func:`serve`, :func:`main_dev` (``ailink dev``), :class:`DemoSeed`.

Built-in upstreams, served in-process by the proxy's HTTP client: ``http://payments.mock``
(charges, refunds, customers; counts executions per idempotency key) and ``http://llm.mock``
(OpenAI-compatible, deterministic, scriptable). Emulator-only management endpoints live under
``/api/v1/emulator/`` (``llm/script``, ``payments/stats``, ``reset-stats``).

Deliberate differences from the real AIlink gateway:

* **[ext]** ``Prefer: respond-async`` → 202 and the agent approval endpoints
  ``/v1/approvals/{id}[/result]`` (these paths are therefore not proxied); full idempotency
  (replay, 409 in flight, 422 on a different request); ``details.policy`` in policy errors;
  malformed policy rules refused with 422; audit filters ``session_id``/``agent_name``/``status``;
  ``GET /api/v1/approvals/{id}`` and ``?status=``.
* Query strings are forwarded upstream (the real gateway drops them).
* ``Idempotency-Key`` and ``x-mock-*`` headers are forwarded upstream (the real gateway drops the key),
  so the payments mock can count executions per key.
* Token pages show a masked ``id`` plus a non-secret ``ref`` (usable in paths); the real gateway
  lists the full token. Approval pages show the masked token too.
* ``X-Parent-Span-Id`` wins over the ``traceparent`` span id for ``parent_span_id`` (the real
  gateway prefers traceparent); the traceparent span id is stored separately as ``span_id``.
* Approvals expire at their policy timeout (not a fixed 10 minutes); there is no pending cap.
* Deciding an unknown approval id → 404 ``approval_not_found`` (real: 200 ``updated: false``).
* Invalid session status transitions → 409 (real: 404). Session-lifecycle denials are audited.
* Rate limits use an in-memory sliding window (reset on restart), count only admitted requests and
  answer ``Retry-After`` = seconds until a slot frees.
* Management errors use the ``{"error": {...}}`` JSON shape; 413 is JSON too.
* Service base URLs may be loopback/private (the real gateway refuses them).
* Not emulated: spend caps, guardrails, response cache, circuit breaker, load balancing, MCP,
  post-phase policies and actions other than allow/deny/require_approval/rate_limit.
"""

from ._factory import DemoSeed, create_app
from ._server import RunningEmulator, main_dev, run_in_thread, serve

__all__ = ["DemoSeed", "RunningEmulator", "create_app", "main_dev", "run_in_thread", "serve"]
