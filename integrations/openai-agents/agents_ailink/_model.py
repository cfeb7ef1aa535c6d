"""The Agents SDK's chat-completions model on the AIlink gateway."""

from __future__ import annotations

from agents import OpenAIChatCompletionsModel
from typing_extensions import Unpack

from agents_ailink._context import trace_context
from ailink.adapters import GatewayModelOptions, model_settings

__all__ = ["openai_agents_model"]


def openai_agents_model(model: str, **options: Unpack[GatewayModelOptions]) -> OpenAIChatCompletionsModel:
    """The SDK's ``OpenAIChatCompletionsModel`` talking to ``{gateway}/v1`` with the virtual ``token``.

    ``options`` are :class:`ailink.adapters.GatewayModelOptions` (``token``, ``gateway_url``,
    ``agent_name``, ``approval_timeout``, ``headers``, ``max_retries``). Each request carries the
    session headers of the running agent (``X-Session-Id`` = the trace's ``group_id``, else its trace
    id; the generation span as ``X-Parent-Span-Id``). The openai SDK never retries (``max_retries``
    other than 0 is refused) and waits longer than ``approval_timeout``, for requests the gateway
    holds while a human decides.
    """
    client = model_settings(trace_context, **options).async_openai()
    return OpenAIChatCompletionsModel(model=model, openai_client=client)
