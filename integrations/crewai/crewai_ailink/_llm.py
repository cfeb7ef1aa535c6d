"""``crewai_llm``'s LLM: CrewAI's native OpenAI provider plus a header-adding interceptor."""

from __future__ import annotations

from typing import Any

import httpx
from crewai import LLM
from crewai.llms.hooks.base import BaseInterceptor

from ailink import ClientConfig, TracingTransport
from crewai_ailink._context import llm_trace_context

__all__ = ["AIlinkInterceptor", "build_llm"]


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


def build_llm(model: str, config: ClientConfig, kwargs: dict[str, Any]) -> LLM:
    """A ``crewai.LLM`` on the native OpenAI path pointed at ``{gateway}/v1``."""
    options: dict[str, Any] = {
        "base_url": config.gateway_url + "/v1",
        "api_key": config.api_key or "missing-ailink-token",
        "custom_openai": True,
        "max_retries": 0,
        "timeout": config.hold_timeout,
        "interceptor": AIlinkInterceptor(config),
        **kwargs,
    }
    return LLM(model=model, **options)
