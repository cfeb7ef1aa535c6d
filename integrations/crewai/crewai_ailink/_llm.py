"""``crewai_llm``'s LLM: CrewAI's native OpenAI provider plus a header-adding interceptor."""

from __future__ import annotations

from typing import Any

import httpx
from crewai.llms.hooks.base import BaseInterceptor
from crewai.llms.providers.openai.completion import OpenAICompletion
from pydantic import Field

from ailink.adapters import ClientConfig, TracingTransport, openai_settings
from crewai_ailink._context import llm_trace_context

__all__ = ["AIlinkCompletion", "AIlinkInterceptor", "build_llm"]


class AIlinkInterceptor(BaseInterceptor[httpx.Request, httpx.Response]):
    """Adds the AIlink session headers to each LLM request (the core's transport does the work).

    Outside an ``ailink.trace`` block the session comes from the running CrewAI kickoff:
    ``X-Session-Id`` = the execution id, ``X-Parent-Span-Id`` = a span derived from the task.
    """

    def __init__(self, config: ClientConfig) -> None:
        self._headers = TracingTransport(agent_name=config.agent_name, context_provider=llm_trace_context)

    def __repr__(self) -> str:
        return "AIlinkInterceptor()"

    def on_outbound(self, message: httpx.Request) -> httpx.Request:
        self._headers.prepare(message)
        return message

    def on_inbound(self, message: httpx.Response) -> httpx.Response:
        return message

    async def aon_outbound(self, message: httpx.Request) -> httpx.Request:
        return self.on_outbound(message)

    async def aon_inbound(self, message: httpx.Response) -> httpx.Response:
        return message


class AIlinkCompletion(OpenAICompletion):
    """CrewAI's native OpenAI provider whose token never leaves the object.

    The AIlink token stays the SDK's API key (requests authenticate as before) but is left out
    of ``repr``/``str`` and of ``model_dump``/``model_dump_json``; the interceptor, which has no
    serialised form, is left out of dumps too.
    """

    api_key: str | None = Field(default=None, repr=False, exclude=True)
    interceptor: BaseInterceptor[httpx.Request, httpx.Response] | None = Field(default=None, exclude=True)


def build_llm(model: str, config: ClientConfig, kwargs: dict[str, Any]) -> AIlinkCompletion:
    """An :class:`AIlinkCompletion` (the native OpenAI path, as ``crewai.LLM(custom_openai=True)``
    routes it) pointed at ``{gateway}/v1``."""
    prefix, slash, rest = model.partition("/")
    settings = openai_settings(config, max_retries=kwargs.pop("max_retries", None))
    options: dict[str, Any] = {
        "base_url": settings.base_url,
        "api_key": settings.api_key,
        "max_retries": settings.max_retries,
        "timeout": settings.timeout.read,
        "interceptor": AIlinkInterceptor(config),
        **kwargs,
    }
    options.pop("provider", None)
    options.pop("custom_openai", None)
    return AIlinkCompletion(
        model=rest if slash and prefix.lower() == "openai" else model,
        provider="openai",
        custom_openai=True,
        **options,
    )
