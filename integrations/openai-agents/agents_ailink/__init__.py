"""OpenAI Agents SDK function tools and chat-completions model for the AIlink gateway
(distribution ``openai-agents-ailink``).

```python
from agents import Agent, Runner, RunConfig
from agents_ailink import openai_agents_model, openai_agents_tool

tool = openai_agents_tool(token="ailink_v1_...", name="payments_api", description="...", methods=["GET", "POST"])
agent = Agent(name="clerk", tools=[tool], model=openai_agents_model("gpt-4o-mini", token="ailink_v1_..."))
result = Runner.run_sync(agent, "...", run_config=RunConfig(group_id="ticket-42"))
```
"""

from importlib.metadata import version

from agents_ailink._context import call_context, trace_context
from agents_ailink._model import openai_agents_model
from agents_ailink._tool import (
    APPROVAL_PENDING_SPAN,
    APPROVAL_RESOLVED_SPAN,
    AgentsDriver,
    AIlinkToolOutput,
    openai_agents_tool,
    openai_agents_tools,
    reject,
)

__all__ = [
    "APPROVAL_PENDING_SPAN",
    "APPROVAL_RESOLVED_SPAN",
    "AIlinkToolOutput",
    "AgentsDriver",
    "__version__",
    "call_context",
    "openai_agents_model",
    "openai_agents_tool",
    "openai_agents_tools",
    "reject",
    "trace_context",
]

__version__ = version("openai-agents-ailink")
