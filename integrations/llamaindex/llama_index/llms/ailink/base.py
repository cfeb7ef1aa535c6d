"""``AIlink``: the drop-in LlamaIndex LLM that talks to models through the AIlink gateway."""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.llms.openai_like import OpenAILike  # type: ignore[import-untyped]
from llama_index.tools.ailink._session import trace_context, track_root_spans

import ailink

__all__ = ["AIlink", "llamaindex_llm"]


class AIlink(OpenAILike):  # type: ignore[misc]
    """An OpenAI-compatible chat model reached through the AIlink gateway (``{gateway}/v1``).

    A real drop-in: ``chat``, ``complete``, both streams, their async forms and tool calling,
    usable by ``FunctionAgent`` and query engines. Every request carries the session headers of
    the current run (``ailink_session`` → workflow run id → root span; span ids from the active
    LlamaIndex span). The openai SDK never retries (``max_retries=0``: a retried 408 would
    create a second approval) and waits longer than ``approval_timeout``, for requests the
    gateway holds while a human decides. The token never appears in ``repr`` or serialisation.
    """

    gateway_url: str = Field(description="The AIlink gateway URL.")
    agent_name: str | None = Field(default=None, description="Sent as X-AIlink-Agent-Name.")
    approval_timeout: float = Field(default=300.0, description="Longest human-approval wait, in seconds.")
    api_key: str | None = Field(default=None, repr=False, exclude=True, description="The AIlink virtual token.")

    def __init__(
        self,
        model: str,
        token: str | None = None,
        gateway_url: str | None = None,
        agent_name: str | None = None,
        approval_timeout: float = 300.0,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("max_retries", 0) != 0:
            raise ValueError("AIlink sends with max_retries=0: retrying a gateway 408 would request a new approval")
        for option in ("http_client", "async_http_client"):
            if option in kwargs:
                raise TypeError(f"AIlink builds {option!r} itself (use token= and gateway_url=)")
        if token is None:
            token = kwargs.pop("api_key", None)
        config = ailink.ClientConfig.from_env(
            token, gateway_url, agent_name=agent_name, approval_timeout=approval_timeout
        )
        # Derived values (present when rebuilt from ``to_dict()``) must agree with the gateway config.
        derived = {"api_base": config.gateway_url + "/v1", "timeout": config.hold_timeout}
        for option, value in derived.items():
            if option in kwargs and kwargs.pop(option) != value:
                raise TypeError(f"AIlink derives {option!r} from gateway_url and approval_timeout")
        track_root_spans()
        kwargs.setdefault("is_chat_model", True)
        kwargs.setdefault("is_function_calling_model", True)
        super().__init__(
            model=model,
            api_key=config.api_key or "missing-ailink-token",
            api_base=config.gateway_url + "/v1",
            max_retries=0,
            timeout=config.hold_timeout,
            http_client=ailink.http_client(config, context_provider=trace_context, hold=True),
            async_http_client=ailink.async_http_client(config, context_provider=trace_context, hold=True),
            gateway_url=config.gateway_url,
            agent_name=agent_name,
            approval_timeout=approval_timeout,
            **kwargs,
        )

    @classmethod
    def class_name(cls) -> str:
        return "AIlink"


def llamaindex_llm(
    model: str,
    token: str | None = None,
    gateway_url: str | None = None,
    agent_name: str | None = None,
    approval_timeout: float = 300.0,
    **kwargs: Any,
) -> AIlink:
    """The one-liner of the AIlink docs: an :class:`AIlink` LLM (same arguments)."""
    return AIlink(
        model=model,
        token=token,
        gateway_url=gateway_url,
        agent_name=agent_name,
        approval_timeout=approval_timeout,
        **kwargs,
    )
