"""Pydantic AI tools and an OpenAI model for the AIlink gateway (distribution ``pydantic-ai-ailink``).

```python
from pydantic_ai import Agent
from pydantic_ai_ailink import pydantic_ai_model, pydantic_ai_tool

tool = pydantic_ai_tool(token="ailink_v1_...", name="payments_api", description="...", methods=["GET", "POST"])
agent = Agent(pydantic_ai_model("gpt-4o-mini", token="ailink_v1_..."), tools=[tool])
result = agent.run_sync("...", conversation_id="ticket-42")
```
"""

from importlib.metadata import version

from pydantic_ai_ailink._context import call_context, trace_context
from pydantic_ai_ailink._model import pydantic_ai_model
from pydantic_ai_ailink._tool import (
    APPROVAL_METADATA_TYPE,
    APPROVAL_PENDING_SPAN,
    APPROVAL_RESOLVED_SPAN,
    PydanticAIDriver,
    deny,
    pydantic_ai_tool,
    pydantic_ai_tools,
)

__all__ = [
    "APPROVAL_METADATA_TYPE",
    "APPROVAL_PENDING_SPAN",
    "APPROVAL_RESOLVED_SPAN",
    "PydanticAIDriver",
    "__version__",
    "call_context",
    "deny",
    "pydantic_ai_model",
    "pydantic_ai_tool",
    "pydantic_ai_tools",
    "trace_context",
]

__version__ = version("pydantic-ai-ailink")
