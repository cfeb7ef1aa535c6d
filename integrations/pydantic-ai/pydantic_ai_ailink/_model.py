"""Pydantic AI's OpenAI chat model on the AIlink gateway."""

from __future__ import annotations

from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from typing_extensions import Unpack

from ailink.adapters import GatewayModelOptions, model_settings
from pydantic_ai_ailink._context import trace_context

__all__ = ["pydantic_ai_model"]


def pydantic_ai_model(model: str, **options: Unpack[GatewayModelOptions]) -> OpenAIChatModel:
    """An ``OpenAIChatModel`` whose ``OpenAIProvider`` talks to ``{gateway}/v1`` with the virtual ``token``.

    ``options`` are :class:`ailink.adapters.GatewayModelOptions` (``token``, ``gateway_url``,
    ``agent_name``, ``approval_timeout``, ``headers``, ``max_retries``). Each request carries the
    session headers of the running agent (``X-Session-Id`` = the run's ``conversation_id``; one span
    per run step). The openai SDK never retries (``max_retries`` other than 0 is refused) and waits
    longer than ``approval_timeout``, for requests the gateway holds while a human decides.
    """
    client = model_settings(trace_context, **options).async_openai()
    return OpenAIChatModel(model, provider=OpenAIProvider(openai_client=client))
