"""How every OpenAI-compatible client of this toolkit reaches the gateway, decided once.

``client.openai()``, LangChain's ``ChatAIlink``, CrewAI's ``crewai_llm``, the LlamaIndex ``AIlink`` LLM and
any later framework LLM take their settings from :func:`openai_settings`, translating only the
parameter names their framework uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from typing_extensions import TypedDict, Unpack

from ailink._config import ClientConfig
from ailink._transport import ContextProvider, async_http_client, http_client

if TYPE_CHECKING:
    import openai

#: The API key sent when no token is configured: the gateway refuses it (401) with a clear error,
#: and the SDKs never fall back to a provider key found in the environment.
MISSING_TOKEN = "missing-ailink-token"


def fail_closed_retries(max_retries: object = None) -> int:
    """The one retry rule of every OpenAI-compatible client built here: the SDK itself never retries.

    The openai SDK (and the frameworks on it) retries 408, 409, 429 and 5xx answers and dropped
    connections on its own. Through the gateway that re-sends a request held for a human after its
    408 (asking for a second approval) and repeats writes whose outcome is unknown. So
    ``max_retries`` may be left out or 0, and anything else is refused with a ``ValueError``
    (never silently changed); retry model calls above the SDK, where the answer can be judged.
    """
    if max_retries is None or (type(max_retries) is int and max_retries == 0):
        return 0
    raise ValueError(
        f"max_retries={max_retries!r} is not allowed: clients of the AIlink gateway send with max_retries=0, "
        "because the SDK's own retries would re-send a request held for human approval after its 408 (a "
        "second approval) or repeat a write whose outcome is unknown"
    )


@dataclass(frozen=True)
class OpenAISettings:
    """The settings that point an OpenAI-compatible client at the gateway.

    ``base_url`` is ``{gateway}/v1``; ``api_key`` the virtual token; ``max_retries`` is always 0
    (:func:`fail_closed_retries`); ``timeout`` reads longer than the approval timeout, for
    requests the gateway holds while a human decides. The HTTP clients add the session headers
    (from an ``ailink.trace`` block, else from ``context_provider``: the framework's own run).
    """

    config: ClientConfig = field(repr=False)
    api_key: str = field(repr=False)
    base_url: str
    timeout: httpx.Timeout
    default_headers: dict[str, str] | None = field(default=None, repr=False)
    context_provider: ContextProvider | None = field(default=None, repr=False)
    max_retries: int = 0

    def http_client(self) -> httpx.Client:
        """A sync httpx client for the SDK: session headers, no kept cookies, the hold timeout."""
        return http_client(self.config, context_provider=self.context_provider, hold=True)

    def async_http_client(self) -> httpx.AsyncClient:
        """The async twin of :meth:`http_client`."""
        return async_http_client(self.config, context_provider=self.context_provider, hold=True)

    def async_openai(self) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` client with these settings (what framework models wrap)."""
        import openai

        return openai.AsyncOpenAI(**self.sdk_options(), http_client=self.async_http_client())

    def sdk_options(self) -> dict[str, Any]:
        """The keyword arguments of ``openai.OpenAI`` / ``AsyncOpenAI`` (without the HTTP client)."""
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "default_headers": self.default_headers,
        }


def openai_settings(
    config: ClientConfig, *, context_provider: ContextProvider | None = None, max_retries: object = None
) -> OpenAISettings:
    """The :class:`OpenAISettings` of ``config``; ``max_retries`` is checked by :func:`fail_closed_retries`."""
    return OpenAISettings(
        config=config,
        api_key=config.api_key or MISSING_TOKEN,
        base_url=config.gateway_url + "/v1",
        timeout=config.http_timeout(hold=True),
        default_headers=dict(config.default_headers) or None,
        context_provider=context_provider,
        max_retries=fail_closed_retries(max_retries),
    )


class GatewayModelOptions(TypedDict, total=False):
    """The keyword arguments of the framework model one-liners built on :func:`model_settings`
    (``openai_agents_model``, ``pydantic_ai_model``, ...), declared once.

    ``token`` and ``gateway_url`` default to ``AILINK_API_KEY`` and ``AILINK_GATEWAY_URL``; ``headers``
    go on every request; ``max_retries`` may only be 0 (:func:`fail_closed_retries`).
    """

    token: str | None
    gateway_url: str | None
    agent_name: str | None
    approval_timeout: float | None
    headers: Mapping[str, str] | None
    max_retries: int | None


def model_settings(
    context_provider: ContextProvider | None = None, **options: Unpack[GatewayModelOptions]
) -> OpenAISettings:
    """The :class:`OpenAISettings` of a framework model from its :class:`GatewayModelOptions`; the session
    headers come from ``context_provider`` (the framework's run). An unknown option is a ``TypeError``."""
    unknown = sorted(set(options) - set(GatewayModelOptions.__annotations__))
    if unknown:
        raise TypeError(f"unknown model option(s): {', '.join(unknown)}")
    config = ClientConfig.from_env(options.get("token"), options.get("gateway_url"),
                                   agent_name=options.get("agent_name"),
                                   approval_timeout=options.get("approval_timeout"), headers=options.get("headers"))
    return openai_settings(config, context_provider=context_provider, max_retries=options.get("max_retries"))
