"""crewai_llm against the emulator's mock LLM: native tool calling, session headers, retries."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from crewai import Agent, Crew, Task
from crewai_ailink import ailink_session, crewai_llm, crewai_tool
from crewai_support import LOOKUP
from profiles import both_profiles

from ailink import span_id_from
from ailink.testing import EmulatorGateway

TOOL = "payments_api"


def props(row: dict[str, Any]) -> dict[str, Any]:
    value = row.get("properties") or {}
    return json.loads(value) if isinstance(value, str) else dict(value)


@both_profiles
def test_llm_is_native_openai_without_retries(ailink_gateway: EmulatorGateway) -> None:
    from crewai.llms.providers.openai.completion import OpenAICompletion

    token = ailink_gateway.create_token(upstream="llm")
    llm = crewai_llm(model="acme/mock-gpt", token=token, gateway_url=ailink_gateway.url, approval_timeout=5)
    assert isinstance(llm, OpenAICompletion)
    assert llm.model == "acme/mock-gpt"
    assert llm.max_retries == 0
    assert llm.base_url == ailink_gateway.url + "/v1"
    assert llm.timeout is not None and llm.timeout > 5
    assert token not in repr(llm.interceptor)


def test_direct_call_carries_the_session(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    llm = crewai_llm(model="mock-gpt", token=token, gateway_url=ailink_gateway.url, agent_name="writer")
    with ailink_session("sess-llm-direct") as session_id:
        answer = llm.call("hello there")
    assert session_id == "sess-llm-direct"
    assert answer == "Echo: hello there"
    [row] = ailink_gateway.audit(session_id="sess-llm-direct")
    assert row["path"] == "/v1/chat/completions"
    assert row["agent_name"] == "writer"
    [kickoff, llm_span] = props(row).pop("span_path")
    assert kickoff == [span_id_from("sess-llm-direct"), "crew kickoff"]
    assert llm_span == [row["parent_span_id"], "llm"]
    assert props(row) == {"framework": "crewai", "span_path": [kickoff, llm_span]}


def test_crew_on_gateway_llm_shares_the_session(ailink_gateway: EmulatorGateway) -> None:
    llm_token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(llm_token, [
        {"tool_calls": [{"id": "call_1", "name": TOOL, "arguments": LOOKUP}]},
        {"content": "Ada Lovelace is a customer."},
    ])
    tool = crewai_tool(token=ailink_gateway.create_token(), name=TOOL, description="Payments API.",
                       gateway_url=ailink_gateway.url, agent_name="billing-bot")
    llm = crewai_llm(model="mock-gpt", token=llm_token, gateway_url=ailink_gateway.url, agent_name="billing-bot")
    agent = Agent(role="Billing clerk", goal="g", backstory="b", tools=[tool], llm=llm, verbose=False,
                  respect_context_window=False)
    task = Task(name="lookup", description="Look up cus_001.", expected_output="x", agent=agent)
    crew = Crew(agents=[agent], tasks=[task], verbose=False)
    with ailink_session("sess-llm-crew"):
        output = crew.kickoff()

    assert output.raw == "Ada Lovelace is a customer."
    found = ailink_gateway.audit(session_id="sess-llm-crew")
    llm_rows = [r for r in found if r["path"] == "/v1/chat/completions"]
    tool_rows = [r for r in found if r["tool_name"] == TOOL]
    assert len(llm_rows) == 2 and len(tool_rows) == 1
    task_span = span_id_from(str(task.id))
    kickoff_span = span_id_from("sess-llm-crew")
    for row in [*llm_rows, *tool_rows]:
        # kickoff → task → this call: each call its own span, under the task's span
        path = props(row)["span_path"]
        assert [span for span, _label in path[:2]] == [kickoff_span, task_span]
        assert path[-1][0] == row["parent_span_id"] and row["parent_span_id"] != task_span
        assert row["trace_id"] == tool_rows[0]["trace_id"]
    for row in llm_rows:
        assert row["agent_name"] == "billing-bot"
        assert props(row)["task_id"] == str(task.id) and props(row)["span_path"][-1][1] == "llm"
    assert props(tool_rows[0])["span_path"][-1][1] == f"tool:{TOOL}"
    assert len({row["parent_span_id"] for row in found}) == 3


def test_llm_error_is_not_retried(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"status": 500}, {"content": "second answer"}])
    llm = crewai_llm(model="mock-gpt", token=token, gateway_url=ailink_gateway.url)
    with pytest.raises(openai.InternalServerError):
        llm.call("hi")
    assert len(ailink_gateway.audit()) == 1


def test_the_token_never_shows_and_still_authenticates(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    llm = crewai_llm(model="mock-gpt", token=token, gateway_url=ailink_gateway.url)
    secret = token.removeprefix("ailink_v1_")
    for text in (repr(llm), str(llm), str(llm.model_dump()), llm.model_dump_json(), str(llm.to_config_dict())):
        assert secret not in text
    assert llm.call("still signed in") == "Echo: still signed in"  # the token is what authenticates
    wrong = crewai_llm(model="mock-gpt", token="ailink_v1_not_a_token_of_this_gateway", gateway_url=ailink_gateway.url)
    with pytest.raises(openai.AuthenticationError):
        wrong.call("who am I")
