"""The resources of the clients, one module each, every one with a sync and an async class.

Management resources (``client.tokens``, ``credentials``, ``policies``, ``services``, ``approvals``,
``audit``, ``sessions``, ``projects``, ``api_keys``, ``webhooks``, ``model_aliases``, ``experiments``,
``guardrails``, ``billing``, ``analytics``, ``config``) call the management API with the admin key;
``batches``, ``fine_tuning`` and ``realtime`` use the virtual token on the data plane.
"""
