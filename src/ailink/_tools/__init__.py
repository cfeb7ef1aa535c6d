"""A gateway-proxied API as an agent tool, written once for every framework.

``action``: what a tool is and what one call asks (arguments, path safety, idempotency key);
``result``: how a call ended and what the model reads; ``flow``: one call, approval lifecycle
included, as a sans-I/O flow, and the :class:`ToolDriver` contract of adapters; ``runner``:
:class:`GatewayTool`, which runs the flow on a client; ``options``: the options every one-liner takes.
"""

from ailink._tools.action import (
    MAX_ARGUMENT_DEPTH,
    RESERVED_ARGUMENT_NAMES,
    CallContext,
    ParsedCall,
    ToolAction,
    call_arguments,
    nests_deeper_than,
)
from ailink._tools.flow import (
    CANNOT_PAUSE,
    ApprovalHandling,
    ApprovalPending,
    ApprovalResolved,
    PauseRequest,
    Rejection,
    ToolDriver,
    tool_flow,
)
from ailink._tools.options import (
    GatewayClientOptions,
    GatewayToolOptions,
    OpenAPIToolsOptions,
    gateway_tool,
    gateway_tools,
)
from ailink._tools.result import ToolOutcome, ToolResult, invalid_arguments_result
from ailink._tools.runner import GatewayTool, HookDriver

__all__ = [
    "CANNOT_PAUSE",
    "MAX_ARGUMENT_DEPTH",
    "RESERVED_ARGUMENT_NAMES",
    "ApprovalHandling",
    "ApprovalPending",
    "ApprovalResolved",
    "CallContext",
    "GatewayClientOptions",
    "GatewayTool",
    "GatewayToolOptions",
    "HookDriver",
    "OpenAPIToolsOptions",
    "ParsedCall",
    "PauseRequest",
    "Rejection",
    "ToolAction",
    "ToolDriver",
    "ToolOutcome",
    "ToolResult",
    "call_arguments",
    "gateway_tool",
    "gateway_tools",
    "invalid_arguments_result",
    "nests_deeper_than",
    "tool_flow",
]
