"""Every framework's tool binding accepts every tool generated from the realistic document, with the
core's argument schema; and the emulator serves its payments API's document through the gateway,
every operation of which works as described."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ailink import AIlinkClient
from ailink.adapters import gateway_tools
from ailink.openapi import convert
from ailink.testing import EmulatorGateway

FIXTURE = Path(__file__).parent / "fixtures" / "code_hosting.yaml"
OPTIONS: dict[str, Any] = {"openapi": FIXTURE, "token": "ailink_v1_fixture", "gateway_url": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return {action.name: action.args_schema() for action in convert(FIXTURE).actions}


def _names(schema: dict[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def test_langchain_binds_every_generated_tool(schemas: dict[str, dict[str, Any]]) -> None:
    from langchain_ailink import ChatAIlink, langchain_tools
    from langchain_core.utils.function_calling import convert_to_openai_tool

    tools = langchain_tools(**OPTIONS)
    assert [t.name for t in tools] == list(schemas)
    for tool in tools:
        function = convert_to_openai_tool(tool)["function"]
        assert function["name"] == tool.name and function["description"] == tool.description
        assert function["parameters"] == schemas[tool.name]  # the core's schema, as it is
        assert sorted(tool.args) == _names(schemas[tool.name])
        assert tool.metadata is not None and tool.metadata["ailink"]["path"].startswith("/")
    bound = ChatAIlink(model="gpt-4o-mini", token="ailink_v1_fixture", gateway_url="http://127.0.0.1:9").bind_tools(tools)
    sent = bound.kwargs["tools"]  # type: ignore[attr-defined]
    assert len(sent) == len(tools) and all(Draft202012Validator(t["function"]["parameters"]) for t in sent)


def test_crewai_binds_every_generated_tool(schemas: dict[str, dict[str, Any]]) -> None:
    from crewai.tools.structured_tool import format_description_for_llm
    from crewai.utilities.agent_utils import convert_tools_to_openai_schema
    from crewai_ailink import crewai_tools

    tools = crewai_tools(**OPTIONS)
    openai_tools, functions, by_name = convert_tools_to_openai_schema(tools)
    assert len(openai_tools) == len(functions) == len(by_name) == len(schemas)
    for tool, published in zip(tools, openai_tools, strict=True):
        parameters = published["function"]["parameters"]
        Draft202012Validator.check_schema(parameters)
        assert _names(parameters) == _names(schemas[tool.name])  # CrewAI makes it strict, the arguments stay
        assert tool.args_schema.model_json_schema() == schemas[tool.name]
        assert tool.ailink_metadata["operation_id"] == tool.gateway.action.operation.operation_id  # type: ignore[attr-defined]
        prompt = format_description_for_llm(tool.name, tool.args_schema, tool.description)  # CrewAI's prompt block
        assert tool.description in prompt and all(f'"{name}"' in prompt for name in _names(schemas[tool.name]))


def test_llamaindex_binds_every_generated_tool(schemas: dict[str, dict[str, Any]]) -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools.tool_spec.base import BaseToolSpec
    from llama_index.llms.ailink import AIlink
    from llama_index.tools.ailink import llamaindex_tools

    spec = llamaindex_tools(**OPTIONS)
    assert isinstance(spec, BaseToolSpec)
    tools = spec.to_tool_list()
    assert [t.metadata.name for t in tools] == list(schemas)
    assert [t.metadata.name for t in spec.to_tool_list(spec_functions=["gists_get", "meta_get"])] == [
        "gists_get", "meta_get"]
    llm = AIlink(model="gpt-4o-mini", token="ailink_v1_fixture", gateway_url="http://127.0.0.1:9")
    prepared = llm._prepare_chat_with_tools(tools, user_msg="hi")
    assert len(prepared["tools"]) == len(tools)
    for tool, published in zip(tools, prepared["tools"], strict=True):
        parameters = published["function"]["parameters"]
        ours = schemas[tool.metadata.name]
        assert {k: parameters[k] for k in ("type", "properties")} == {k: ours[k] for k in ("type", "properties")}
        assert parameters.get("required") == ours.get("required")
        assert tool.metadata.ailink["approval"]["approval"] == "none"  # type: ignore[attr-defined]
    FunctionAgent(name="agent", llm=llm, tools=tools)


def test_the_gateway_serves_the_payments_document_to_the_token(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(name="reader", upstream="payments")
    service_token = ailink_gateway.create_token(name="service-reader", upstream="llm")
    ailink_gateway.create_service("payments", "payments")
    with AIlinkClient(token, ailink_gateway.url) as client:
        direct = client.get("/openapi.json").json()
    with AIlinkClient(service_token, ailink_gateway.url) as client:
        through_service = client.get("/v1/proxy/services/payments/openapi.json").json()
    assert direct == through_service and direct["openapi"] == "3.1.0"
    on_service = gateway_tools(openapi=f"{ailink_gateway.url}/v1/proxy/services/payments/openapi.json",
                               token=service_token, gateway_url=ailink_gateway.url,
                               base_path="/v1/proxy/services/payments")
    result = {t.action.name: t for t in on_service}["retrieve_customer"].run({"customer_id": "cus_003"})
    assert result.ok and "Alan Turing" in result.content
    assert any(r["path"] == "/v1/proxy/services/payments/v1/customers/cus_003" for r in ailink_gateway.audit())


def test_every_operation_of_the_payments_document_works_as_described(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(name="all", upstream="payments")
    tools = {t.action.name: t for t in gateway_tools(openapi=f"{ailink_gateway.url}/openapi.json", token=token,
                                                       gateway_url=ailink_gateway.url)}
    customers = tools["list_customers"].run({})
    assert customers.ok and [c["id"] for c in customers.body["data"]] == ["cus_001", "cus_002", "cus_003"]
    charge = tools["create_charge"].run({"body": {"amount": 700, "currency": "eur", "customer": "cus_002"}})
    assert charge.ok and charge.body["amount"] == 700
    again = tools["retrieve_charge"].run({"charge_id": charge.body["id"]})
    assert again.ok and again.body == charge.body
    assert [c["id"] for c in tools["list_charges"].run({}).body["data"]] == [charge.body["id"]]
    refund = tools["create_refund"].run({"body": {"charge": charge.body["id"], "amount": 200}})
    assert refund.ok and refund.body["charge"] == charge.body["id"]
    missing = tools["retrieve_customer"].run({"customer_id": "cus_999"})
    assert missing.is_error and missing.status_code == 404
    refused = tools["create_charge"].run({"body": {"amount": 0}})
    assert refused.error_code == "invalid_arguments" and "body.amount: must be >= 1" in refused.content
    assert ailink_gateway.payments_stats()["charges"] == 1
    rows = [(r["tool_name"], r["method"], r["status_code"]) for r in ailink_gateway.audit() if r.get("tool_name")]
    assert ("create_refund", "POST", 200) in rows and not any(name == "create_charge" and status != 200
                                                              for name, _, status in rows)
    assert json.dumps(charge.artifact)  # JSON-ready for the frameworks


def test_the_one_liners_are_reexported_from_ailink_integrations() -> None:
    from crewai_ailink import crewai_tools
    from langchain_ailink import langchain_tools
    from llama_index.tools.ailink import llamaindex_tools

    import ailink.integrations as integrations

    assert (integrations.langchain_tools, integrations.crewai_tools, integrations.llamaindex_tools) == (
        langchain_tools, crewai_tools, llamaindex_tools)
