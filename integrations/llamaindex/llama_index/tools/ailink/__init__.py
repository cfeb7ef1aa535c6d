"""AIlink gateway tools for LlamaIndex (distribution ``llama-index-ailink``).

```python
from llama_index.tools.ailink import llamaindex_tool, ailink_session

tool = llamaindex_tool(token="ailink_v1_...", name="stripe_api", description="...", methods=["GET", "POST"])
agent = FunctionAgent(tools=[tool], llm=llm)
with ailink_session("support-ticket-42"):
    handler = agent.run("...")
```
"""

from importlib.metadata import version

from llama_index.tools.ailink._events import (
    AIlinkApprovalPending,
    AIlinkApprovalPendingEvent,
    AIlinkApprovalRequired,
    AIlinkApprovalResolvedEvent,
    AIlinkApprovalResponse,
)
from llama_index.tools.ailink._session import ailink_session, current_session_id, trace_context, track_root_spans
from llama_index.tools.ailink.base import (
    AIlinkToolMetadata,
    AIlinkToolSpec,
    LlamaIndexDriver,
    OnApproval,
    llamaindex_tool,
    llamaindex_tools,
)

__all__ = [
    "AIlinkApprovalPending",
    "AIlinkApprovalPendingEvent",
    "AIlinkApprovalRequired",
    "AIlinkApprovalResolvedEvent",
    "AIlinkApprovalResponse",
    "AIlinkToolMetadata",
    "AIlinkToolSpec",
    "LlamaIndexDriver",
    "OnApproval",
    "__version__",
    "ailink_session",
    "current_session_id",
    "llamaindex_tool",
    "llamaindex_tools",
    "trace_context",
    "track_root_spans",
]

__version__ = version("llama-index-ailink")
