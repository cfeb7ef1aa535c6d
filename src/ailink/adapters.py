"""What framework adapters are built from (the adapter SPI); users of the toolkit do not need it.

An adapter translates, and only translates (``docs/adapters.md``):

* framework context → :class:`CallContext` (session, span, the framework's tool-call id, properties);
* a :class:`ToolDriver` subclass: how the framework announces (``emit``), pauses (``pause``: a
  :class:`Rejection` as resume value withdraws the approval) and recognises a replayed pause
  (``resumed``); the core's tool flow decides when each happens; where the framework's own rejection
  never calls the tool again, its helper calls :meth:`GatewayTool.reject` / ``areject``;
* :class:`ToolResult` → the framework's return value, exception or event;
* ``**options: Unpack[GatewayToolOptions]`` for its tool one-liner (built with :func:`gateway_tool`) and
  ``**options: Unpack[OpenAPIToolsOptions]`` for its generated-tools one-liner (:func:`gateway_tools`:
  one typed tool per operation of an OpenAPI document; argument names never collide with
  :data:`RESERVED_ARGUMENT_NAMES`);
* :func:`openai_settings` for its LLM class (base URL, token, ``max_retries=0``, hold timeout,
  HTTP clients adding the session headers of the framework's run through a ``context_provider``);
  :func:`model_settings` builds them from ``**options: Unpack[GatewayModelOptions]``.
"""

from __future__ import annotations

from ailink._config import ClientConfig
from ailink._idempotency import canonical_json, derive_idempotency_key
from ailink._openai_compat import (
    MISSING_TOKEN,
    GatewayModelOptions,
    OpenAISettings,
    fail_closed_retries,
    model_settings,
    openai_settings,
)
from ailink._tools import (
    CANNOT_PAUSE,
    MAX_ARGUMENT_DEPTH,
    RESERVED_ARGUMENT_NAMES,
    ApprovalHandling,
    ApprovalPending,
    ApprovalResolved,
    CallContext,
    GatewayTool,
    GatewayToolOptions,
    OpenAPIToolsOptions,
    PauseRequest,
    Rejection,
    ToolAction,
    ToolDriver,
    ToolOutcome,
    ToolResult,
    call_arguments,
    gateway_tool,
    gateway_tools,
    invalid_arguments_result,
    nests_deeper_than,
)
from ailink._tracing import (
    TraceContext,
    aiterate_within,
    choose_session,
    current_trace,
    iterate_within,
    new_span_id,
    span_id_from,
    span_path_properties,
)
from ailink._transport import ContextProvider, TracingTransport, async_http_client, http_client

__all__ = [
    "CANNOT_PAUSE",
    "MAX_ARGUMENT_DEPTH",
    "MISSING_TOKEN",
    "RESERVED_ARGUMENT_NAMES",
    "ApprovalHandling",
    "ApprovalPending",
    "ApprovalResolved",
    "CallContext",
    "ClientConfig",
    "ContextProvider",
    "GatewayModelOptions",
    "GatewayTool",
    "GatewayToolOptions",
    "OpenAISettings",
    "OpenAPIToolsOptions",
    "PauseRequest",
    "Rejection",
    "ToolAction",
    "ToolDriver",
    "ToolOutcome",
    "ToolResult",
    "TraceContext",
    "TracingTransport",
    "aiterate_within",
    "async_http_client",
    "call_arguments",
    "canonical_json",
    "choose_session",
    "current_trace",
    "derive_idempotency_key",
    "fail_closed_retries",
    "gateway_tool",
    "gateway_tools",
    "http_client",
    "invalid_arguments_result",
    "iterate_within",
    "model_settings",
    "nests_deeper_than",
    "new_span_id",
    "openai_settings",
    "span_id_from",
    "span_path_properties",
]
