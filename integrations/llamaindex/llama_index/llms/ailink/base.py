"""``AIlink``: the drop-in LlamaIndex LLM that talks to models through the AIlink gateway."""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.llms.openai.utils import (
    is_function_calling_model,
    openai_modelname_to_contextsize,
)
from llama_index.llms.openai_like import OpenAILike  # type: ignore[import-untyped]
from llama_index.tools.ailink import trace_context, track_root_spans

from ailink.adapters import ClientConfig, openai_settings

__all__ = ["AIlink", "known_model_metadata", "llamaindex_llm"]

#: Context windows (tokens) of the other providers' model families a gateway routes to, by name
#: prefix, first match wins. OpenAI's models come from llama-index-llms-openai's own table.
OTHER_CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (
    ("claude-", 200_000),
    ("gemini-1.5-pro", 2_097_152),
    ("gemini-", 1_048_576),
)


def known_model_metadata(model: str) -> dict[str, Any]:
    """``context_window`` and ``is_function_calling_model`` of a known model (empty for an unknown
    one, such as a gateway alias: pass ``context_window=`` then). A ``provider/`` prefix is ignored."""
    name = model.rsplit("/", 1)[-1]
    try:
        return {"context_window": openai_modelname_to_contextsize(name),
                "is_function_calling_model": bool(is_function_calling_model(name))}
    except ValueError:  # not an OpenAI model
        pass
    for prefix, window in OTHER_CONTEXT_WINDOWS:
        if name.startswith(prefix):
            return {"context_window": window, "is_function_calling_model": True}
    return {}


class AIlink(OpenAILike):  # type: ignore[misc]
    """An OpenAI-compatible chat model reached through the AIlink gateway (``{gateway}/v1``).

    A real drop-in: ``chat``, ``complete``, both streams, their async forms and tool calling,
    usable by ``FunctionAgent`` and query engines. Every request carries the session headers of
    the current run (``ailink_session`` → workflow run id → root span; span ids from the active
    LlamaIndex span). ``metadata`` reports the model's real context window and function calling
    for known models (:func:`known_model_metadata`; pass ``context_window=`` for others). The
    openai SDK never retries (``max_retries=0``, other values are refused: a retried 408 would
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
        for option in ("http_client", "async_http_client"):
            if option in kwargs:
                raise TypeError(f"AIlink builds {option!r} itself (use token= and gateway_url=)")
        if token is None:
            token = kwargs.pop("api_key", None)
        config = ClientConfig.from_env(token, gateway_url, agent_name=agent_name, approval_timeout=approval_timeout)
        settings = openai_settings(config, context_provider=trace_context, max_retries=kwargs.pop("max_retries", None))
        # Derived values (present when rebuilt from ``to_dict()``) must agree with the gateway config.
        derived = {"api_base": settings.base_url, "timeout": settings.timeout.read}
        for option, value in derived.items():
            if option in kwargs and kwargs.pop(option) != value:
                raise TypeError(f"AIlink derives {option!r} from gateway_url and approval_timeout")
        track_root_spans()
        kwargs.setdefault("is_chat_model", True)
        for option, value in {"is_function_calling_model": True, **known_model_metadata(model)}.items():
            kwargs.setdefault(option, value)
        super().__init__(
            model=model,
            api_key=settings.api_key,
            api_base=settings.base_url,
            max_retries=settings.max_retries,
            timeout=settings.timeout.read,
            http_client=settings.http_client(),
            async_http_client=settings.async_http_client(),
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
