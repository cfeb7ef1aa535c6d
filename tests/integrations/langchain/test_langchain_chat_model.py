"""ChatAIlink: the standard unit suite, and calls through the emulator's mock LLM."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import openai
import pytest
from langchain_ailink import AIlinkCallbackHandler, ChatAIlink
from langchain_core.runnables import RunnableLambda
from langchain_support import RunRecorder
from langchain_tests.unit_tests import ChatModelUnitTests
from profiles import both_profiles

from ailink import span_id_from
from ailink.testing import EmulatorGateway


class TestChatAIlinkUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatAIlink]:
        return ChatAIlink

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "token": "ailink_v1_unit", "gateway_url": "http://127.0.0.1:9"}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # the suite's max_retries=2 is refused by design: clients of the gateway send with max_retries=0
        return {**super().standard_chat_model_params, "max_retries": 0}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"AILINK_API_KEY": "ailink_v1_from_env", "AILINK_GATEWAY_URL": "http://gateway.example:8443"},
            {"model": "gpt-4o-mini"},
            {"openai_api_key": "ailink_v1_from_env", "openai_api_base": "http://gateway.example:8443/v1",
             "gateway_url": "http://gateway.example:8443", "max_retries": 0},
        )


def test_chat_ailink_is_not_lc_serializable() -> None:
    """The suite's test_serdes skips itself for this reason; what is dumped must hold no token."""
    from langchain_core.load import dumpd

    model = ChatAIlink(model="gpt-4o-mini", token="ailink_v1_unit_secret", gateway_url="http://127.0.0.1:9")
    assert ChatAIlink.is_lc_serializable() is False
    dumped = dumpd(model)
    assert dumped["type"] == "not_implemented"
    assert "ailink_v1_unit_secret" not in str(dumped)


def test_the_token_never_shows() -> None:
    from langchain_core.load import dumps

    secret = "ailink_v1_very_secret_token_42"
    model = ChatAIlink(model="gpt-4o-mini", token=secret, gateway_url="http://127.0.0.1:9")
    for text in (repr(model), str(model), str(model.model_dump()), model.model_dump_json(), str(model.dict()),
                 dumps(model), str(model.to_json())):
        assert secret not in text
    assert model.openai_api_base == "http://127.0.0.1:9/v1" and model.max_retries == 0


def test_sdk_retries_are_refused_not_silently_changed() -> None:
    with pytest.raises(ValueError, match="max_retries=2 is not allowed"):
        ChatAIlink(model="gpt-4o-mini", token="ailink_v1_unit", gateway_url="http://127.0.0.1:9", max_retries=2)
    assert ChatAIlink(model="gpt-4o-mini", token="ailink_v1_unit", gateway_url="http://127.0.0.1:9",
                      max_retries=0).max_retries == 0


def test_importing_the_package_does_not_need_langchain_openai() -> None:
    code = (
        "import sys; sys.modules['langchain_openai'] = None\n"
        "import langchain_ailink\n"
        "assert langchain_ailink.langchain_tool\n"
        "try:\n    langchain_ailink.ChatAIlink\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'langchain-ailink[openai]'" in out.stdout


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
async def test_requests_carry_the_run_session(ailink_gateway: EmulatorGateway, mode: str) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"content": "Hello from the mock."}])
    model = ChatAIlink(model="gpt-4o-mini", token=token, gateway_url=ailink_gateway.url, agent_name="writer")
    recorder = RunRecorder()
    config: Any = {"metadata": {"ailink_session_id": f"sess-llm-{mode}", "ailink_user_id": "user-9"},
                   "callbacks": [AIlinkCallbackHandler(), recorder]}
    if mode == "invoke":
        text = model.invoke("hi", config).content
    elif mode == "ainvoke":
        text = (await model.ainvoke("hi", config)).content
    elif mode == "stream":
        text = "".join(str(c.content) for c in model.stream("hi", config))
    else:
        text = "".join([str(c.content) async for c in model.astream("hi", config)])
    assert text == "Hello from the mock."
    (llm_run,) = recorder.of_kind("llm")
    (row,) = ailink_gateway.audit(session_id=f"sess-llm-{mode}")
    assert row["path"] == "/v1/chat/completions" and row["agent_name"] == "writer"
    assert row["parent_span_id"] == span_id_from(llm_run)
    assert row["user_id"] == "user-9"
    assert row["properties"]["llm"] == "gpt-4o-mini"


def test_a_request_inside_a_run_but_outside_the_model_uses_the_enclosing_run(
    ailink_gateway: EmulatorGateway,
) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    model = ChatAIlink(model="gpt-4o-mini", token=token, gateway_url=ailink_gateway.url)
    recorder = RunRecorder()

    def direct(_: Any) -> Any:  # the raw SDK client, from inside a LangChain run
        return model.root_client.models.list()

    RunnableLambda(direct).invoke("x", {"metadata": {"ailink_session_id": "sess-direct"}, "callbacks": [recorder]})
    (chain_run,) = recorder.of_kind("chain")
    (row,) = ailink_gateway.audit(session_id="sess-direct")
    assert row["parent_span_id"] == span_id_from(chain_run)


@both_profiles
def test_an_approval_timeout_is_not_retried_into_a_second_approval(ailink_gateway: EmulatorGateway) -> None:
    policy = {"name": "llm-needs-approval", "rules": [{
        "when": {"all": [{"field": "request.path", "op": "eq", "value": "/v1/chat/completions"}]},
        "then": {"action": "require_approval", "timeout": "1s"}}]}
    token = ailink_gateway.create_token(upstream="llm", policies=[policy])
    model = ChatAIlink(model="gpt-4o-mini", token=token, gateway_url=ailink_gateway.url, approval_timeout=5)
    with pytest.raises(openai.APIStatusError) as caught:
        model.invoke("hi", {"metadata": {"ailink_session_id": "sess-timeout"}})
    assert caught.value.status_code == 408
    rows = ailink_gateway.audit(session_id="sess-timeout")
    assert len(rows) == 1 and rows[0]["status_code"] == 408
    assert len(ailink_gateway.admin.approvals.list()) == 1
