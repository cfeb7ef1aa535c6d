"""The local AIlink gateway emulator (Starlette + SQLite), speaking ``shared/design/protocol.md``.

Public surface: :func:`create_app`, :func:`run_in_thread` / :class:`RunningEmulator`,
:func:`serve`, :func:`main_dev` (``ailink dev``), :class:`DemoSeed`.

Built-in upstreams, served in-process by the proxy's HTTP client: ``http://payments.mock``
(charges, refunds, customers; counts executions per idempotency key) and ``http://llm.mock``
(OpenAI-compatible, deterministic, scriptable). Emulator-only management endpoints live under
``/api/v1/emulator/`` (``llm/script``, ``payments/stats``, ``reset-stats``). The mock LLM also
serves OpenAI files, batches and fine-tuning jobs (``_mock_jobs``), Anthropic's ``/v1/messages``
(``_mock_anthropic``) and a Realtime session that the gateway relays at ``GET /v1/realtime``
(WebSocket, ``_realtime``, ``_mock_realtime``).

The rest of the real gateway's management API, for the AIlink SDK surface (package ``_mgmt``, each
module documents its paths and shapes): projects and ``project_id`` on tokens, policies, credentials
and services; API keys (``Authorization: Bearer ak_live_...``, roles and scopes) and ``whoami``;
circuit-breaker settings and upstream health; config export/import (YAML/JSON); model aliases (applied
to the ``model`` of proxied JSON bodies); guardrail presets (enforced: redaction, PII block, prompt
injection, code injection, length limit, topic fence; per token or per request via
``X-AIlink-Guardrails``); analytics and billing usage from the audit log; experiments and webhooks.

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
* Guardrail presets are stored per token, not as policies in the policy list; response-phase
  presets are not emulated. Model aliases are applied (the real gateway stores but ignores them).
* Config import validates the whole document (422, nothing written) and returns the secrets of the
  tokens it creates; the real gateway skips unknown policy names and creates unusable token stubs.
* Experiments are stored but split no traffic; webhooks are stored but never delivered; costs and
  LLM token counts are not metered (analytics and billing count requests and latency only).
* Not emulated: spend caps, response cache, circuit breaking (settings are stored and reported),
  load balancing, MCP, post-phase policies and actions other than allow/deny/require_approval/rate_limit.
"""

from ._factory import DemoSeed, create_app
from ._server import RunningEmulator, main_dev, run_in_thread, serve

__all__ = ["DemoSeed", "RunningEmulator", "create_app", "main_dev", "run_in_thread", "serve"]
