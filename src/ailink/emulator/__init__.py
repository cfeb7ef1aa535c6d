"""The local AIlink gateway emulator (Starlette + SQLite), speaking ``docs/protocol.md``.

Public surface: :func:`create_app`, :func:`run_in_thread` / :class:`RunningEmulator`,
:class:`EmulatorHost` (many emulators, each on its own port, in one background thread: the test
fixtures' host), :func:`serve`, :func:`main_dev` (``ailink dev``), :class:`DemoSeed`.

Built-in upstreams, served in-process by the proxy's HTTP client: ``http://payments.mock``
(charges, refunds, customers; counts executions per idempotency key; describes itself at
``GET /openapi.json``, an OpenAPI 3.1 document, for generated tools) and ``http://llm.mock``
(OpenAI-compatible, deterministic, scriptable). Both are strict: exact paths only, JSON object
bodies only (415/400 otherwise), so a policy test means what it says. Emulator-only management
endpoints live under ``/api/v1/emulator/`` (``llm/script``, ``payments/stats``, ``reset-stats``). The mock LLM also
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

LLM usage (``_metering``, protocol §10.6): a price table per model (``/api/v1/pricing``), the cost and
token counts of every LLM call in its audit row (``estimated_cost_usd``, ``prompt_tokens``,
``completion_tokens``, ``provider``; also ``tenant_id`` from ``X-Tenant-Id``) and in session totals.

Many keys behind one token (issue 15; ``_routing``, ``_budgets``, ``_quotas``, ``_vault``): token
upstream pools (weight within priority tiers, a credential per target), a circuit breaker per target,
failover only where nothing was processed (connection refused, 429, 503), the ``dynamic_route`` action
(``lowest_cost``, ``lowest_latency``, ``round_robin``, ``least_busy``, ``weighted_random``; **[ext]**
``multi_objective``), routing headers and ``router_info`` in audit rows; token spend caps per period and
session caps (402, reservations so concurrent calls overspend by at most one call, shadow caps, budget
headers); **[ext]** ``GET /api/v1/tokens/{id}/usage`` (capacity state, predicted exhaustion); credential
secrets sealed with AES-GCM (``AILINK_MASTER_KEY`` or ``<database>.master_key``) and rotation.

For reviewers (issue 18): the inbox at ``/ui`` (``_inbox``: admin key to sign in, then a session
cookie with CSRF protection; pending approvals updated live over server-sent events, history,
sessions, audit), events (``_events``: ``approval.requested``/``decided``/``expired``,
``policy.denied``; an expiry timer expires approvals on time) delivered to webhooks (``_webhooks``:
signed, retried, logged, never on the request path; Slack format; the policy action ``webhook``),
and the reviewer's view of a request (``_review``: the whole request, secrets hidden). Decisions
record who decided and through which channel; ``POST /api/v1/approvals/decisions`` decides up to
10,000 at once.

For agents waiting at scale (issue 17, ``_watch``): every settlement of an approval is numbered, and
``GET /v1/approvals/events`` streams the calling token's settlements (catch-up from a cursor, then
live), fed by a queue per stream: nothing polls the database per wait.

Profiles (``create_app(profile=...)``, ``run_in_thread(profile=...)``, ``ailink dev --profile``,
the ``ailink_gateway`` fixture parametrized indirectly with ``"real"``, or ``ailink_gateway_real``):

| behaviour | ``ailink`` (default) | ``real`` (as the real gateway) |
|---|---|---|
| ``X-AIlink-Extensions`` (data plane) | ``respond-async, outcome-store, approvals-watch`` | absent |
| approval + ``Prefer: respond-async`` | 202, then ``/v1/approvals/{id}`` | held until decided, never 202 |
| ``/v1/approvals/{id}[/result]`` | agent endpoints | proxied like any path |
| ``/v1/approvals/events`` | the token's settlements as an event stream (§4.4) | proxied like any path |
| approval named to the agent | 202 body, ``x-ailink-approval-id``, | never |
| | ``details.approval_id`` | |
| a held caller hangs up | the approved request still runs once, | the held request is dropped (nothing |
| | result kept | forwarded); a re-send with the key |
| | | re-attaches to the approval |
| idempotency key | generation's header, plain ones too; | the generation's ``X-<brand>-Idempotency-Key`` |
| | outcome stored and replayed, 409 in | only re-attaches an approval (an approved |
| | flight, 422 reused | key lets every re-send through again) |
| approved request | sent once by the gateway, result kept | the held request itself is forwarded |
| plain ``Idempotency-Key``, ``X-Idempotency-Key`` | forwarded upstream (the mocks count) | switch on gateway |
| | | retries of POST/PUT/PATCH (3, on 429/5xx and |
| | | network errors); never forwarded |
| other methods | never retried by the gateway | retried the same way |
| ``error.details`` | policy, approval, forwarded, ambiguous | absent (``all_upstreams_exhausted``: |
| | | ``reason``, ``upstream``, ``cooldown_secs``) |
| management API errors | ``{"error": {...}}`` JSON | bare status code, empty body |
| decision on an unknown approval id | 404 ``approval_not_found`` | 200 ``{"updated": false}`` |
| ``GET /api/v1/approvals/{id}`` | served | 404 |
| ``POST /api/v1/approvals/decisions`` | many decisions in one call | 404 |
| ``GET /api/v1/approvals?status=`` | filtered | every status listed |
| query string | forwarded upstream | dropped |
| LLM cost | audit, ``X-AIlink-Cost-Usd``, ``usage.cost_usd`` in streams | audit only |
| ``/v1/models`` | enriched with ``provider`` and ``pricing`` | as the upstream answers |
| ``/v1/metrics``, ``/v1/me`` | the calling token's metrics and summary | proxied like any path |
| ``dynamic_route`` ``multi_objective`` | scored pick | 500 (the real gateway cannot load it) |
| ``GET /api/v1/tokens/{id}/usage``, ``caps`` | served | 404; ``GET .../spend`` has the real 6 fields |

Header generations (``create_app(generation=...)``, ``run_in_thread(generation=...)``,
``ailink dev --generation``, ``ailink_gateway_trueflow`` = ``real`` + ``trueflow``):

| name | ``ailink`` (default) | ``trueflow`` |
|---|---|---|
| tokens minted and accepted | ``ailink_v1_...`` (others → 401) | ``tf_v1_...`` (others → 401) |
| request headers read | ``X-AIlink-Agent-Name``, ``-Idempotency-Key``, | the same with ``X-TrueFlow-`` |
| | ``-Guardrails``, ``-No-Cache``, ``-Tool-Name`` | (the ``X-AIlink-`` ones mean nothing) |
| response headers written | ``x-ailink-cb-state``, ``-upstream``, ``-route-*``, | the same with ``x-trueflow-`` |
| | ``-cost-usd``, ``-budget-remaining-*``, ``-warning``, | |
| | ``-cache``, ``-approval-id``, ``-extensions`` | |
| webhook delivery headers | ``x-ailink-delivery-id``, ``-timestamp``, ``-event``, | the same with ``x-trueflow-`` |
| | ``-signature`` | |
| ``.ailink/dev.env`` of ``ailink dev`` | ``AILINK_GATEWAY_URL``, ``_ADMIN_KEY``, ``_API_KEY`` | ``TRUEFLOW_...`` |

Both profiles and generations apply the real gateway's response cache (``_cache``: deterministic LLM
requests, 2xx answers, 300 s, ``x-<brand>-cache: HIT``), its CORS (``_cors``) and its policy actions
(``_actions``: ``tool_scope``, ``redact``, ``transform``, ``override``, ``split``, ``throttle``, ``log``,
``tag``; with ``webhook`` and ``dynamic_route`` above, the others are refused at create time with a 422
naming them); ``docs/protocol.md`` §10.8-§10.11.

Both profiles normalise paths the same way and enforce the same bounds.

Deliberate differences from the real AIlink gateway (``ailink`` profile unless said otherwise):

* **[ext]** the rows of the profiles table above: 202 and the agent approval endpoints, full idempotency
  (§5, §10.3: every complete upstream answer is stored, 5xx included, and replayed with
  ``Idempotent-Replayed: true``; a request forwarded without a complete answer is stored as
  *outcome unknown* and every re-send gets 502 ``outcome_unknown``; refusals before forwarding
  store nothing and say ``details.forwarded = false``; a restart turns in-flight rows into
  *outcome unknown*), ``details`` in errors, the extensions header; the LLM rows (cost header and
  ``usage.cost_usd``, model enrichment, ``/v1/metrics``, ``/v1/me``, the price table API).
* Paths (both profiles): normalised once (unreserved percent-decoding, dot segments, empty segments
  and a trailing slash collapsed); 400 ``invalid_path`` for leaving the token's or a service's base
  path, NUL/control characters, encoded ``/`` or ``\\``, a raw ``\\``, and multiply-encoded dots,
  slashes or NUL. The real gateway appends the path verbatim.
* Bounds (both profiles): JSON nested deeper than 64 levels or with duplicate keys → 400 (on the
  data plane too; a body the policies cannot read while they inspect the body → 400); idempotency
  keys 1-255 visible ASCII characters → else 422; durations positive and at most 30 days → else
  422 at create time (stored older rows are clamped, never fatal); ``regex``/``glob`` conditions
  on RE2 (linear time; backreferences and look-around → 422); policy rules at most 64 KiB; error
  messages at most 1,000 characters.
* Malformed policy rules are refused with 422 at create time (real: accepted, then every request 500s).
* Audit filters ``session_id``/``agent_name``/``status``; ``GET /api/v1/approvals/{id}`` and ``?status=``
  (``ailink`` profile).
* ``Idempotency-Key`` and ``x-mock-*`` headers are forwarded upstream in the ``ailink`` profile (the
  real gateway drops the key), so the payments mock can count executions per key.
* Token pages show a masked ``id`` plus a non-secret ``ref`` (usable in paths); the real gateway
  lists the full token. Approval pages show the masked token too.
* ``X-Parent-Span-Id`` wins over the ``traceparent`` span id for ``parent_span_id`` (the real
  gateway prefers traceparent); the traceparent span id is stored separately as ``span_id``.
* Approvals expire at their policy timeout (not a fixed 10 minutes); there is no pending cap.
* Deciding an unknown approval id → 404 ``approval_not_found`` (real, and the ``real`` profile:
  200 ``updated: false``).
* Invalid session status transitions → 409 (real: 404). Session-lifecycle denials are audited.
* Rate limits use an in-memory sliding window (reset on restart), count only admitted requests and
  answer ``Retry-After`` = seconds until a slot frees.
* Gateway error answers, upstream failures and 413 are JSON (real: 413 is plain text).
* Service base URLs may be loopback/private (the real gateway refuses them).
* Guardrail presets are stored per token, not as policies in the policy list; response-phase
  presets are not emulated. Model aliases are applied (the real gateway stores but ignores them).
* Config import validates the whole document (422, nothing written) and returns the secrets of the
  tokens it creates; the real gateway skips unknown policy names and creates unusable token stubs.
* Experiments (management API) are stored but split no traffic (the ``split`` policy action does).
  LLM costs come from the emulator's own price table (the real gateway's pricing source is its own);
  the approved execution of an approval-gated LLM call is audited without cost.
* Webhooks: registered ones are delivered (the real gateway stores them but sends proxy events only to
  ``TRUEFLOW_WEBHOOK_URLS``, unsigned); events use this project's names (``approval.requested``, ...,
  the real gateway's ``approval_requested``/``policy_violation`` are accepted as aliases); the token
  in an event is masked; the ``webhook`` action never refuses a request (``on_fail: deny`` is recorded
  only).
* ``/ui`` and its sub-paths are the inbox, and ``GET /`` from a browser (``Accept: text/html``, no
  ``Authorization``) redirects there: those paths are not proxied (the real gateway has no inbox).
* Approval pages show the whole stored request (secret-named headers and fields hidden), the
  reviewer and the channel; decisions may name them (``reviewed_by``, ``channel``).
* SQLite files are created owner-only (0600); ``ailink dev`` prints secrets masked and writes them
  to ``.ailink/dev.env`` (0600); the in-thread emulator never touches the host's logging.
* Routing (both profiles): breakers, turns and latencies live in memory (reset on restart); failover
  to the next target happens only where nothing was processed (the real gateway also retries after
  5xx and timeouts when asked to); routed answers carry ``x-ailink-route-*`` for pools too (real: only
  for ``dynamic_route``); ``x-ailink-upstream`` never shows a query-mode credential (real: it does).
  An approval-gated request is sent to the target planned when it was held, without failover. Spend
  is counted from audit rows (real: Redis counters); shadow caps, session-cap ``mode`` and the
  reservations that bound concurrent overspend are this project's; approved executions are not metered.
* Response cache: the no-cache header of the ``trueflow`` generation is honoured for every token (the
  real one only for tokens with the ``cache:bypass`` scope); approved requests the ``ailink`` profile
  executes itself do not use the cache; a cache hit costs nothing and reserves no budget.
* Policy actions: ``log``/``tag`` are also kept on the audit row (``policy_tags``); ``redact`` replaces
  with ``[REDACTED_<NAME>]`` for every named pattern (the real one writes ``CC``/``IP``/``DL`` for
  cards, IPv4 and licences); transforms that would set credentials or ``host``/``cookie`` headers are
  refused at create time (real: skipped); ``split`` picks a variant from the request id.
* The upstream gets the caller's ``User-Agent`` or none (the real gateway sends its own name then).
* Not emulated: MCP, post-phase policies, project and team budgets, the actions ``content_filter``,
  ``conditional_route``, ``validate_schema``, ``external_guardrail`` and ``redact`` with
  ``on_match: tokenize`` (422 naming them).
"""

from ._factory import DemoSeed, create_app
from ._host import EmulatorHost, HostedEmulator
from ._server import RunningEmulator, main_dev, run_in_thread, serve

__all__ = ["DemoSeed", "EmulatorHost", "HostedEmulator", "RunningEmulator", "create_app", "main_dev",
           "run_in_thread", "serve"]
