"""AIlinkTool on its own: standard suites, outcomes, artifacts, idempotency, errors."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_ailink import AIlinkTool, langchain_tool
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_support import BLOCK_REFUNDS, CUSTOMER, REFUND, charge
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

import ailink
from ailink.testing import EmulatorGateway


def tool_call(args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": "payments_api", "args": args}


class TestAIlinkToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[AIlinkTool]:
        return AIlinkTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        gateway = ailink.gateway_tool(name="payments_api", description="Call the payments API.",
                                      token="ailink_v1_unit", methods=["GET", "POST"],
                                      gateway_url="http://127.0.0.1:9")
        return {"gateway": gateway}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return dict(CUSTOMER)


class TestAIlinkToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[AIlinkTool]:
        return AIlinkTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return dict(CUSTOMER)

    @pytest.fixture
    def tool(self, make_tool: Any) -> BaseTool:  # the emulator's URL is only known at run time
        tool: BaseTool = make_tool()
        return tool


def test_the_one_liner_builds_a_structured_tool(make_tool: Any) -> None:
    tool = make_tool(allowed_paths=["/v1/customers*"])
    assert isinstance(tool, BaseTool)
    assert tool.name == "payments_api"
    assert tool.response_format == "content_and_artifact"
    assert tool.args_schema is tool.gateway.action.args_model
    assert set(tool.args) == {"method", "path", "query", "body", "idempotency_key"}
    assert "Allowed paths: /v1/customers*" in tool.args["path"]["description"]


def test_ailink_integrations_reexports_the_one_liner() -> None:
    from ailink.integrations import langchain_tool as reexported

    assert reexported is langchain_tool


def test_the_token_never_shows(ailink_gateway: EmulatorGateway) -> None:
    secret = "ailink_v1_supersecret_value_123"
    tool = langchain_tool(token=secret, name="payments_api", description="d", gateway_url=ailink_gateway.url)
    assert secret not in repr(tool)
    assert secret not in str(tool)
    assert secret not in str(tool.model_dump())


def test_plain_arguments_return_the_content(make_tool: Any) -> None:
    result = make_tool().invoke(CUSTOMER)
    assert isinstance(result, str)
    assert result.startswith("HTTP 200 from GET /v1/customers/cus_001")


async def test_a_tool_call_returns_a_message_with_the_artifact(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool()
    message = await tool.ainvoke(tool_call(charge(700), "call_async"))
    assert isinstance(message, ToolMessage)
    assert message.status == "success" and message.tool_call_id == "call_async"
    artifact = message.artifact
    assert artifact["status"] == "ok" and artifact["status_code"] == 200
    assert artifact["body"]["amount"] == 700
    assert artifact["request_id"].startswith("req_")
    assert ailink_gateway.payments_stats()["by_idempotency_key"] == {artifact["idempotency_key"]: 1}


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_policy_denial_is_an_error_message_naming_the_policy(make_tool: Any, use_async: bool,
                                                                     ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool(BLOCK_REFUNDS)
    call = tool_call(REFUND, "call_refund")
    message = await tool.ainvoke(call) if use_async else tool.invoke(call)
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert "block-refunds" in message.content and "not performed" in message.content
    assert message.artifact["status"] == "denied" and message.artifact["policy"] == "block-refunds"
    assert ailink_gateway.payments_stats()["refunds"] == 0


def test_a_denial_with_plain_arguments_is_readable_text(make_tool: Any) -> None:
    assert "denied by policy 'block-refunds'" in make_tool(BLOCK_REFUNDS).invoke(REFUND)


@pytest.mark.parametrize(("args", "expected"), [
    ({"method": "DELETE", "path": "/v1/customers"}, "method: Input should be 'GET' or 'POST'"),
    ({"method": "GET", "path": "/v1/../admin"}, "'.' or '..'"),
    ({"method": "GET", "path": "https://evil.example/x"}, "starting with '/'"),
    ({"method": "GET", "path": "/v1/charges", "body": {"x": 1}}, "GET request cannot have a body"),
])
def test_invalid_arguments_come_back_to_the_model(make_tool: Any, ailink_gateway: EmulatorGateway,
                                                  args: dict[str, Any], expected: str) -> None:
    message = make_tool().invoke(tool_call(args, "call_bad"))
    assert isinstance(message, ToolMessage)
    assert message.status == "error" and message.tool_call_id == "call_bad"
    assert expected in message.content and "Nothing was sent" in message.content
    assert message.artifact["status"] == "invalid_arguments"
    assert ailink_gateway.audit() == []


def test_a_refused_path_outside_allowed_paths(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    message = make_tool(allowed_paths=["GET /v1/customers*"]).invoke(tool_call(charge(), "call_x"))
    assert message.status == "error"
    assert "not one of this tool's allowed paths" in message.content
    assert ailink_gateway.audit() == []


@pytest.mark.parametrize("use_async", [False, True])
async def test_an_unreachable_gateway_is_an_error_message(use_async: bool, failing_gateway: Any) -> None:
    tool = langchain_tool(token="ailink_v1_unreachable", name="payments_api", description="d",
                          gateway_url=failing_gateway("unreachable"), retries=0)
    call = tool_call(CUSTOMER, "call_down")
    message = await tool.ainvoke(call) if use_async else tool.invoke(call)
    assert isinstance(message, ToolMessage)
    assert message.status == "error" and message.tool_call_id == "call_down"
    assert message.artifact["status"] == "error" and message.content


@pytest.mark.parametrize("session", [None, "sess-reinvoke"])
def test_re_invoking_the_same_tool_call_reattaches(make_tool: Any, ailink_gateway: EmulatorGateway,
                                                   session: str | None) -> None:
    tool = make_tool()
    config: Any = {"metadata": {"ailink_session_id": session}} if session else None
    first = tool.invoke(tool_call(charge(901), "call_again"), config)
    second = tool.invoke(tool_call(charge(901), "call_again"), config)  # a new invocation: a new root run id
    assert first.artifact["idempotency_key"] == second.artifact["idempotency_key"]
    assert second.artifact["replayed"] is True
    assert ailink_gateway.payments_stats()["charges"] == 1
    without_session = tool.gateway.prepare(charge(901), ailink.CallContext(call_id="call_again"))[1]
    assert (first.artifact["idempotency_key"] == without_session) is (session is None)


def test_a_thread_id_is_a_chosen_session(make_tool: Any) -> None:
    tool = make_tool()
    keys = {thread: tool.invoke(tool_call(charge(902), "call_t"), {"configurable": {"thread_id": thread}})
            .artifact["idempotency_key"] for thread in ("thread-a", "thread-b")}
    assert keys["thread-a"] != keys["thread-b"]


def test_the_same_tool_call_is_performed_once(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool()
    config = {"metadata": {"ailink_session_id": "sess-retry"}}
    first = tool.invoke(tool_call(charge(900), "call_same"), config)
    second = tool.invoke(tool_call(charge(900), "call_same"), config)  # e.g. a node retry
    assert first.artifact["idempotency_key"] == second.artifact["idempotency_key"]
    assert second.artifact["replayed"] is True and first.artifact["replayed"] is False
    other = tool.invoke(tool_call(charge(900), "call_other"), config)  # another call: another action
    assert other.artifact["idempotency_key"] != first.artifact["idempotency_key"]
    assert ailink_gateway.payments_stats()["charges"] == 2
    expected = tool.gateway.prepare(charge(900), ailink.CallContext(session_id="sess-retry", call_id="call_same"))[1]
    assert first.artifact["idempotency_key"] == expected


def test_an_explicit_key_wins(make_tool: Any) -> None:
    tool = make_tool()
    in_args = tool.invoke(tool_call({**charge(), "idempotency_key": "my-key-000000000001"}))
    assert in_args.artifact["idempotency_key"] == "my-key-000000000001"
    in_config = tool.invoke(tool_call(charge(), "call_cfg"),
                            {"configurable": {"ailink_idempotency_key": "my-key-000000000002"}})
    assert in_config.artifact["idempotency_key"] == "my-key-000000000002"


def test_plain_invocations_are_distinct_actions(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool()
    tool.invoke(charge(1234))
    tool.invoke(charge(1234))
    assert ailink_gateway.payments_stats()["charges"] == 2
