"""``ChatAIlink``: ``ChatOpenAI`` pointed at the AIlink gateway (needs ``langchain-openai``)."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, BaseCallbackManager, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config, var_child_runnable_config
from langchain_openai import ChatOpenAI
from pydantic import field_serializer, model_validator

from ailink.adapters import CallContext, ClientConfig, TraceContext, aiterate_within, iterate_within, openai_settings
from langchain_ailink._context import resolve_scope

__all__ = ["ChatAIlink", "current_run_trace"]

_RunManager = CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun

# The scope of the chat-model run whose request is being sent (set only around the SDK call).
_llm_scope: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("langchain_ailink_llm", default=None)


@dataclass(frozen=True)
class _StreamRun:
    """What is known of a model run (a direct ``stream()``/``astream()`` call gets no run manager)."""

    run_id: uuid.UUID
    parent_run_id: uuid.UUID | None
    metadata: dict[str, Any]
    handlers: list[Any]
    configurable: dict[str, Any]


_stream_run: contextvars.ContextVar[_StreamRun | None] = contextvars.ContextVar("langchain_ailink_stream", default=None)


def _stream_config(config: RunnableConfig | None) -> tuple[RunnableConfig, _StreamRun]:
    """``config`` with a fixed run id for the model run, and what is known of that run."""
    config = ensure_config(config)
    run_id = config.get("run_id") or uuid.uuid4()
    config["run_id"] = run_id
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        parent, handlers, inherited = callbacks.parent_run_id, list(callbacks.handlers), dict(callbacks.metadata)
    else:
        parent, handlers, inherited = None, list(callbacks or []), {}
    metadata = {**inherited, **(config.get("metadata") or {})}
    return config, _StreamRun(run_id, parent, metadata, handlers, dict(config.get("configurable") or {}))


def _scope_of(run_manager: _RunManager | None, model: str | None) -> CallContext | None:
    """The scope of the model run being sent: from its run manager, else from a direct stream's run."""
    if run_manager is not None:
        configurable = (var_child_runnable_config.get() or {}).get("configurable") or {}
        run: _StreamRun | None = _StreamRun(run_manager.run_id, run_manager.parent_run_id, run_manager.metadata,
                                            run_manager.handlers, configurable)
    else:
        run = _stream_run.get()
    if run is None:
        return None
    return resolve_scope(run_id=run.run_id, parent_run_id=run.parent_run_id, metadata=run.metadata,
                         handlers=run.handlers, configurable=run.configurable, extra={"llm": model})


def _scope_from_config() -> CallContext | None:
    """The scope of the innermost LangChain run of the calling code (a node, a tool, a chain)."""
    config = var_child_runnable_config.get()
    if not config:
        return None
    callbacks = config.get("callbacks")
    if not isinstance(callbacks, BaseCallbackManager) or callbacks.parent_run_id is None:
        return None
    metadata = {**(config.get("metadata") or {}), **callbacks.metadata}
    # The enclosing run's own parent is not known here; the callback handler (if any) has it.
    return resolve_scope(
        run_id=callbacks.parent_run_id,
        parent_run_id=None,
        parent_known=False,
        metadata=metadata,
        handlers=callbacks.handlers,
        configurable=config.get("configurable"),
    )


def current_run_trace() -> TraceContext | None:
    """The trace context of the current LangChain run (the ``context_provider`` of ChatAIlink's clients).

    Inside a ``ChatAIlink`` call: its own run (session, span = the model run). Otherwise the
    innermost run of the calling code, from LangChain's ``var_child_runnable_config``.
    """
    scope = _llm_scope.get() or _scope_from_config()
    return scope.trace() if scope is not None else None


@contextlib.contextmanager
def _with_var(var: contextvars.ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def _in_scope(scope: CallContext | None) -> contextlib.AbstractContextManager[None]:
    return _with_var(_llm_scope, scope)


class ChatAIlink(ChatOpenAI):
    """A ``ChatOpenAI`` whose requests go through the AIlink gateway.

    ``token`` is the AIlink token (``AILINK_API_KEY`` when omitted), ``gateway_url`` the gateway
    (``AILINK_GATEWAY_URL``, then ``http://localhost:8443``); requests go to ``{gateway}/v1`` with
    the session headers of the current LangChain run, added at the httpx transport. The read
    timeout covers a request the gateway holds while a human decides, and ``max_retries`` is 0
    (anything else is refused) so an approval timeout is never re-sent as a second approval.
    """

    gateway_url: str | None = None
    """The AIlink gateway (without ``/v1``)."""
    agent_name: str | None = None
    """Sent as ``X-AIlink-Agent-Name``."""
    approval_timeout: float | None = None
    """Seconds a request may be held for a human decision (sets the read timeout)."""

    def __init__(self, *, token: str | None = None, **kwargs: Any) -> None:
        """``token`` is the AIlink token; every other keyword is a ``ChatOpenAI`` field."""
        if token is not None:
            kwargs["token"] = token
        super().__init__(**kwargs)

    @model_validator(mode="before")
    @classmethod
    def _ailink_gateway(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        token = values.pop("token", None)
        key_field = next((k for k in ("api_key", "openai_api_key") if values.get(k) is not None), None)
        key: Any = token if token is not None else (values.get(key_field) if key_field else None)
        if hasattr(key, "get_secret_value"):
            key = key.get_secret_value()
        timeout = values.get("approval_timeout")
        config = ClientConfig.from_env(
            key,
            values.get("gateway_url"),
            agent_name=values.get("agent_name"),
            approval_timeout=float(timeout) if timeout is not None else None,
        )
        settings = openai_settings(config, context_provider=current_run_trace, max_retries=values.get("max_retries"))
        if (token is not None or key_field is None) and config.api_key is not None:
            # the AIlink token (given, or AILINK_API_KEY) is the API key the SDK sends
            values.pop("openai_api_key", None)
            values["api_key"] = settings.api_key
        values["gateway_url"] = config.gateway_url
        if values.get("base_url") is None and values.get("openai_api_base") is None:
            values["base_url"] = settings.base_url
        values["max_retries"] = settings.max_retries
        if values.get("http_client") is None:
            values["http_client"] = settings.http_client()
        if values.get("http_async_client") is None:
            values["http_async_client"] = settings.async_http_client()
        if values.get("timeout") is None and values.get("request_timeout") is None:
            values["timeout"] = settings.timeout
        return values

    @field_serializer("request_timeout", when_used="json")
    def _timeout_as_json(self, value: Any) -> Any:
        """The httpx timeout (connect/read/write/pool seconds) as JSON, so ``model_dump_json`` works."""
        return value.as_dict() if isinstance(value, httpx.Timeout) else value

    @property
    def _llm_type(self) -> str:
        return "ailink-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """False: LangChain's loader only rebuilds allow-listed classes, and the gateway
        configuration (clients, token source) belongs to the deployment, not to saved chains."""
        return False

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_ailink", "chat_models"]``."""
        return ["langchain_ailink", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The token is read from ``AILINK_API_KEY`` when deserialized."""
        return {"openai_api_key": "AILINK_API_KEY"}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "ailink"
        return params

    # -- direct streaming: LangChain calls _stream without the run manager, so fix the run id ---
    def stream(
        self, input: Any, config: RunnableConfig | None = None, *, stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """``ChatOpenAI.stream``; the requests carry this model run's session and span."""
        config, run = _stream_config(config)
        chunks = super().stream(input, config, stop=stop, **kwargs)
        # only while LangChain runs: nothing leaks between chunks
        yield from iterate_within(chunks, lambda: _with_var(_stream_run, run))

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, *, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """``ChatOpenAI.astream``; the requests carry this model run's session and span."""
        config, run = _stream_config(config)
        chunks = super().astream(input, config, stop=stop, **kwargs)
        async for chunk in aiterate_within(chunks, lambda: _with_var(_stream_run, run)):
            yield chunk

    # -- publish the run being sent, for the transport's context provider ---------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with _in_scope(_scope_of(run_manager, self.model_name)):
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with _in_scope(_scope_of(run_manager, self.model_name)):
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        scope = _scope_of(run_manager, self.model_name)
        chunks = super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
        yield from iterate_within(chunks, lambda: _in_scope(scope))  # only while the SDK runs

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        scope = _scope_of(run_manager, self.model_name)
        chunks = super()._astream(messages, stop=stop, run_manager=run_manager, **kwargs)
        async for chunk in aiterate_within(chunks, lambda: _in_scope(scope)):
            yield chunk
