"""How the Agents SDK runner and a Pydantic AI agent call a tool, for the suites that drive our tools
through them (``integrations/tool_paths.py``, ``faults/soak.py``). No mocks: the SDK's own
``ToolContext`` and a real Pydantic AI ``Agent`` whose model is scripted (``FunctionModel``)."""

from __future__ import annotations

from typing import Any

from agents import Agent as AgentsAgent
from agents import RunConfig, RunContextWrapper
from agents.tool_context import ToolContext
from openai.types.responses import ResponseFunctionToolCall
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

_AGENTS_AGENT = AgentsAgent(name="tool-caller")


async def agents_invoke(tool: Any, arguments: str, call_id: str) -> Any:
    """What the Agents SDK runner does with a model's function call: a ``ToolContext`` from the run's
    context (``ToolContext.from_agent_context``), then ``on_invoke_tool`` with the model's raw text."""
    call = ResponseFunctionToolCall(type="function_call", call_id=call_id, name=tool.name, arguments=arguments)
    context = ToolContext.from_agent_context(RunContextWrapper(context=None), call_id, tool_call=call,
                                             agent=_AGENTS_AGENT, run_config=RunConfig())
    return await tool.on_invoke_tool(context, arguments)


def scripted_agent(tool: Any, arguments: str, call_id: str) -> Agent[None, str]:
    """A Pydantic AI agent whose model calls ``tool`` once with ``arguments`` (the JSON text a model
    sends), then answers in text."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:  # the user's prompt
            return ModelResponse(parts=[ToolCallPart(tool.name, arguments, tool_call_id=call_id)])
        return ModelResponse(parts=[TextPart("done")])

    return Agent(FunctionModel(model), tools=[tool])


def tool_answer(messages: list[ModelMessage], call_id: str) -> ToolReturnPart | RetryPromptPart:
    """What the model got back for the tool call ``call_id``: the tool's return, or Pydantic AI's
    retry prompt when it refused the arguments itself."""
    [part] = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts
              if isinstance(p, (ToolReturnPart, RetryPromptPart)) and p.tool_call_id == call_id]
    return part
