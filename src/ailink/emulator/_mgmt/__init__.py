"""The rest of the real gateway's management API, for the AIlink SDK surface (reference §7).

Modules (each documents its endpoints and shapes): ``_access`` (projects, API keys, whoami),
``_tokens`` (circuit breaker, upstream health, token settings), ``_aliases`` (model aliases),
``_guardrails`` (presets, enforcement), ``_config`` (export/import), ``_analytics`` (analytics, billing),
``_records`` (experiments, webhooks); ``_base`` (storage, access control, projects) and
``_transforms`` (the proxy's call-out for aliases and guardrails). ``_routes.management_table`` lists
the endpoints; the core management module serves them behind the same authentication.

Authentication: the admin key (``X-Admin-Key``, or ``Authorization: Bearer <admin key>``) is
``superadmin``; an API key (``Authorization: Bearer ak_live_...``) has its role and scopes. Admins pass
every check; ``member``/``readonly`` keys need the scope the real gateway checks for the endpoint
(``tokens:read``, ``policies:write``, ``audit:read``, ``keys:manage``, ...); guardrail and emulator
endpoints need the admin role (deviation: the real gateway also requires the admin role for some
writes, e.g. creating tokens; the emulator checks the scope only). Errors use the emulator's JSON
error shape (403 ``forbidden``).

This package imports nothing at package level so the core management module can import ``_base``
and ``_tokens`` without a cycle.
"""
