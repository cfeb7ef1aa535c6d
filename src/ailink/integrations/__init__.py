"""The framework one-liners of the AIlink docs, built on the framework packages (imported on first use).

Tools: ``langchain_tool``, ``crewai_tool``, ``llamaindex_tool``, ``openai_agents_tool``,
``pydantic_ai_tool`` (the adapters' own functions), and the OpenAPI twins ``langchain_tools``,
``crewai_tools``, ``llamaindex_tools``, ``openai_agents_tools``, ``pydantic_ai_tools`` (one typed tool per
operation). Models:
``langchain_chat(client, model=...)``, ``langchain_embeddings(client, ...)``, ``crewai_llm(client,
model=...)``, ``llamaindex_llm(client, model=...)``, ``openai_agents_model(client, model=...)``,
``pydantic_ai_model(client, model=...)``: the first argument is an
:class:`~ailink.AIlinkClient` (or :class:`~ailink.AsyncClient`) whose token, gateway, agent name,
approval timeout and extra headers they use; ``crewai_llm`` and ``llamaindex_llm`` keep their keyword
forms too (``token=``, ``gateway_url=``). ``AILinkCallbackHandler`` is LangChain's
``AIlinkCallbackHandler``. A missing package is named in the ``ImportError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailink._client import AIlinkClient, AsyncClient

    AnyClient = AIlinkClient | AsyncClient

__all__ = [
    "AILinkCallbackHandler",
    "crewai_llm",
    "crewai_tool",
    "crewai_tools",
    "langchain_chat",
    "langchain_embeddings",
    "langchain_tool",
    "langchain_tools",
    "llamaindex_llm",
    "llamaindex_tool",
    "llamaindex_tools",
    "openai_agents_model",
    "openai_agents_tool",
    "openai_agents_tools",
    "pydantic_ai_model",
    "pydantic_ai_tool",
    "pydantic_ai_tools",
]

#: Names re-exported as they are: name → (module, attribute, distribution to install).
_REEXPORTS: dict[str, tuple[str, str, str]] = {
    "langchain_tool": ("langchain_ailink", "langchain_tool", "langchain-ailink"),
    "AILinkCallbackHandler": ("langchain_ailink", "AIlinkCallbackHandler", "langchain-ailink"),
    "crewai_tool": ("crewai_ailink", "crewai_tool", "crewai-ailink"),
    "llamaindex_tool": ("llama_index.tools.ailink", "llamaindex_tool", "llama-index-ailink"),
    "openai_agents_tool": ("agents_ailink", "openai_agents_tool", "openai-agents-ailink"),
    "pydantic_ai_tool": ("pydantic_ai_ailink", "pydantic_ai_tool", "pydantic-ai-ailink"),
    "langchain_tools": ("langchain_ailink", "langchain_tools", "langchain-ailink"),
    "crewai_tools": ("crewai_ailink", "crewai_tools", "crewai-ailink"),
    "llamaindex_tools": ("llama_index.tools.ailink", "llamaindex_tools", "llama-index-ailink"),
    "openai_agents_tools": ("agents_ailink", "openai_agents_tools", "openai-agents-ailink"),
    "pydantic_ai_tools": ("pydantic_ai_ailink", "pydantic_ai_tools", "pydantic-ai-ailink"),
}


def _load(module_name: str, attribute: str, distribution: str, what: str) -> Any:
    try:
        module = import_module(module_name)
    except ImportError as exc:
        message = f"ailink.integrations.{what} needs the {distribution!r} package: pip install {distribution}"
        raise ImportError(message) from exc
    return getattr(module, attribute)


def __getattr__(name: str) -> Any:
    source = _REEXPORTS.get(name)
    if source is None:
        raise AttributeError(f"module 'ailink.integrations' has no attribute {name!r}")
    return _load(*source, name)


def __dir__() -> list[str]:
    return __all__


def _client_options(client: AnyClient) -> dict[str, Any]:
    settings = client.settings
    return {"token": settings.api_key, "gateway_url": settings.gateway_url, "agent_name": settings.agent_name,
            "approval_timeout": settings.approval_timeout}


def _sampling(temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
    return {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}


def langchain_chat(
    client: AnyClient,
    model: str = "gpt-4o",
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    streaming: bool = False,
    default_headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """A LangChain chat model (``langchain_ailink.ChatAIlink``) on the gateway of ``client``.

    Requests carry the client's extra headers (``with_guardrails``, ``with_upstream_key``) and the
    session headers of the current LangChain run; retries are off.
    """
    chat_class = _load("langchain_ailink.chat_models", "ChatAIlink", "langchain-ailink[openai]", "langchain_chat")
    headers = {**client.settings.default_headers, **(default_headers or {})}
    options = _client_options(client)
    return chat_class(
        model=model, token=options.pop("token"), streaming=streaming, default_headers=headers or None,
        **options, **_sampling(temperature, max_tokens), **kwargs,
    )


def langchain_embeddings(client: AnyClient, model: str = "text-embedding-3-small", **kwargs: Any) -> Any:
    """LangChain embeddings (``langchain_openai.OpenAIEmbeddings``) on ``{gateway}/v1`` with the client's token.

    Inputs are sent as text (``check_embedding_ctx_length=False``: no tokenizer download); retries are off
    (``max_retries`` other than 0 is refused).
    """
    from ailink._openai_compat import openai_settings

    embeddings_class = _load("langchain_openai", "OpenAIEmbeddings", "langchain-openai", "langchain_embeddings")
    settings = openai_settings(client.settings, max_retries=kwargs.pop("max_retries", None))
    kwargs.setdefault("check_embedding_ctx_length", False)
    return embeddings_class(
        model=model,
        api_key=settings.api_key,
        base_url=settings.base_url,
        max_retries=settings.max_retries,
        default_headers=settings.default_headers,
        http_client=settings.http_client(),
        http_async_client=settings.async_http_client(),
        **kwargs,
    )


def crewai_llm(
    client: AnyClient | None = None,
    model: str = "gpt-4o",
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    **kwargs: Any,
) -> Any:
    """A ``crewai.LLM`` on the gateway: ``crewai_llm(client, model=...)`` or
    ``crewai_llm(model=..., token=..., gateway_url=...)`` (``crewai_ailink.crewai_llm``)."""
    build = _load("crewai_ailink", "crewai_llm", "crewai-ailink", "crewai_llm")
    options = _client_options(client) if client is not None else {}
    return build(model=model, **{**options, **kwargs}, **_sampling(temperature, max_tokens))


def llamaindex_llm(
    client: AnyClient | str | None = None,
    model: str = "gpt-4o",
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    **kwargs: Any,
) -> Any:
    """A LlamaIndex LLM (``llama_index.llms.ailink.AIlink``) on the gateway: ``llamaindex_llm(client,
    model=...)``, or today's ``llamaindex_llm("gpt-4o", token=..., gateway_url=...)``.

    Other keywords (``is_chat_model``, ``is_function_calling_model``, ``context_window``, ...) go to the LLM.
    """
    llm_class = _load("llama_index.llms.ailink", "AIlink", "llama-index-ailink", "llamaindex_llm")
    if isinstance(client, str):  # the keyword form with the model first
        model, client = client, None
    options = _client_options(client) if client is not None else {}
    return llm_class(model=model, **{**options, **kwargs}, **_sampling(temperature, max_tokens))


def _model_options(client: AnyClient | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the ``*_model`` one-liners: the client's options, then ``kwargs``."""
    if client is None:
        return kwargs
    return {**_client_options(client), "headers": dict(client.settings.default_headers) or None, **kwargs}


def openai_agents_model(client: AnyClient | None = None, model: str = "gpt-4o", **kwargs: Any) -> Any:
    """An OpenAI Agents SDK ``OpenAIChatCompletionsModel`` on the gateway of ``client`` (or of ``token=``,
    ``gateway_url=``): ``agents_ailink.openai_agents_model``."""
    build = _load("agents_ailink", "openai_agents_model", "openai-agents-ailink", "openai_agents_model")
    return build(model, **_model_options(client, kwargs))


def pydantic_ai_model(client: AnyClient | None = None, model: str = "gpt-4o", **kwargs: Any) -> Any:
    """A Pydantic AI ``OpenAIChatModel`` on the gateway of ``client`` (or of ``token=``, ``gateway_url=``):
    ``pydantic_ai_ailink.pydantic_ai_model``."""
    build = _load("pydantic_ai_ailink", "pydantic_ai_model", "pydantic-ai-ailink", "pydantic_ai_model")
    return build(model, **_model_options(client, kwargs))
