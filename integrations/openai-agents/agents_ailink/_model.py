"""The Agents SDK's chat-completions model on the AIlink gateway."""

from __future__ import annotations

from collections.abc import Mapping

from agents import OpenAIChatCompletionsModel
from openai import AsyncOpenAI

from agents_ailink._context import trace_context
from ailink.adapters import ClientConfig, openai_settings

__all__ = ["openai_agents_model"]


def openai_agents_model(
    model: str,
    *,
    token: str | None = None,
    gateway_url: str | None = None,
    agent_name: str | None = None,
    approval_timeout: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> OpenAIChatCompletionsModel:
    """The SDK's ``OpenAIChatCompletionsModel`` talking to ``{gateway}/v1`` with the virtual ``token``.

    Each request carries the session headers of the running agent (``X-Session-Id`` = the trace's
    ``group_id``, else its trace id; the generation span as ``X-Parent-Span-Id``). The openai SDK
    never retries (``max_retries`` other than 0 is refused) and waits longer than
    ``approval_timeout``, for requests the gateway holds while a human decides. ``headers`` go on
    every request; ``token`` and ``gateway_url`` default to ``AILINK_API_KEY`` and ``AILINK_GATEWAY_URL``.
    """
    config = ClientConfig.from_env(token, gateway_url, agent_name=agent_name, approval_timeout=approval_timeout,
                                   headers=headers)
    settings = openai_settings(config, context_provider=trace_context, max_retries=max_retries)
    client = AsyncOpenAI(**settings.sdk_options(), http_client=settings.async_http_client())
    return OpenAIChatCompletionsModel(model=model, openai_client=client)
