"""``model_settings`` and ``OpenAISettings.async_openai``: what every framework model one-liner builds on."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from ailink.adapters import MISSING_TOKEN, TraceContext, model_settings


def test_options_become_the_gateway_settings() -> None:
    settings = model_settings(token="ailink_v1_model_settings_token", gateway_url="http://127.0.0.1:9/",
                              agent_name="writer", approval_timeout=42, headers={"X-Extra": "1"}, max_retries=0)
    assert settings.base_url == "http://127.0.0.1:9/v1"
    assert settings.api_key == "ailink_v1_model_settings_token" and settings.max_retries == 0
    assert settings.timeout.read is not None and settings.timeout.read > 42
    assert settings.default_headers == {"X-Extra": "1"}
    assert "ailink_v1_model_settings_token" not in repr(settings)


def test_without_a_token_the_sdk_gets_a_placeholder_not_an_environment_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILINK_API_KEY", raising=False)
    monkeypatch.delenv("TRUEFLOW_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-provider-key")
    client = model_settings(gateway_url="http://127.0.0.1:9").async_openai()
    assert client.api_key == MISSING_TOKEN


@pytest.mark.parametrize("retries", [1, 2, -1, True, 0.0])
def test_sdk_retries_other_than_zero_are_refused(retries: object) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        model_settings(gateway_url="http://127.0.0.1:9", max_retries=retries)  # type: ignore[arg-type]


def test_a_misspelt_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="gateway"):
        model_settings(gateway="http://127.0.0.1:9")  # type: ignore[call-arg]


def test_the_async_client_sends_the_framework_session_headers_without_retrying() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json={"error": {"message": "busy"}})

    context = TraceContext(session_id="run-77", parent_span_id="00000000000000aa")
    settings = model_settings(lambda: context, token="ailink_v1_model_settings_token",
                              gateway_url="http://127.0.0.1:9")
    client = settings.async_openai()
    assert isinstance(client, openai.AsyncOpenAI) and client.max_retries == 0
    client._client = settings.async_http_client()  # the same session-header client, on a mock transport
    client._client._transport._async = httpx.MockTransport(answer)  # type: ignore[attr-defined]

    async def call() -> None:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    with pytest.raises(openai.APIStatusError):
        asyncio.run(call())
    [request] = seen  # a 503 is not retried by the SDK
    assert request.headers["x-session-id"] == "run-77"
    assert request.headers["x-parent-span-id"] == "00000000000000aa"
    assert request.headers["authorization"] == "Bearer ailink_v1_model_settings_token"
