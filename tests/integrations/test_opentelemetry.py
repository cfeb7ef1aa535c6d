"""OpenTelemetry (extra ``otel``): a user's trace reaches the gateway, tool calls emit GenAI spans.

Real agents (LangChain ``create_agent`` with ``ChatAIlink``; a LlamaIndex ``FunctionAgent``) whose
model is the emulator's scripted mock LLM, over loopback, inside a span the test opens. The spans
go to the OTel SDK's in-memory exporter; the gateway's side is the emulator's audit log, which
keeps each request's ``traceparent`` (trace id and span id). The suite sets ``OTEL_SDK_DISABLED``
for CrewAI, so each test builds its own ``TracerProvider`` without it and installs it as the
global one for the test only.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ailink
from ailink.testing import EmulatorGateway

CHARGES_NEED_APPROVAL = {
    "name": "charges-need-approval",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
               "then": {"action": "require_approval", "timeout": "30s"}}],
}
BLOCK_REFUNDS = {
    "name": "block-refunds",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
               "then": {"action": "deny", "message": "refunds are not allowed"}}],
}
CHARGE = {"method": "POST", "path": "/v1/charges", "body": {"amount": 250000, "currency": "usd", "customer": "cus_001"}}


def _install(provider: Any) -> None:
    """Make ``provider`` the global tracer provider, or none (what OTel's own test utilities do: the
    API lets an application set it once per process, a test suite needs it per test)."""
    trace._TRACER_PROVIDER_SET_ONCE._done = provider is not None
    trace._TRACER_PROVIDER = provider


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)  # read when the provider is built
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    previous = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done)
    _install(provider)
    try:
        yield spans
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done = previous
        provider.shutdown()


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_a_langchain_agent_run_is_one_trace_from_the_users_span_to_the_gateway(
    exporter: InMemorySpanExporter, ailink_gateway: EmulatorGateway
) -> None:
    from langchain.agents import create_agent
    from langchain_ailink import AIlinkCallbackHandler, ChatAIlink, langchain_tool

    payments = ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL])
    llm_token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(llm_token, [
        {"tool_calls": [{"id": "call_charge_1", "name": "payments_api", "arguments": CHARGE}]},
        {"content": "Charged after approval."},
    ])
    tool = langchain_tool(token=payments, gateway_url=ailink_gateway.url, name="payments_api",
                          description="Call the payments API", methods=["GET", "POST"])
    llm = ChatAIlink(model="gpt-4o-mini", token=llm_token, gateway_url=ailink_gateway.url)
    agent = create_agent(llm, tools=[tool])
    approver = ailink_gateway.approve_when_pending()

    tracer = trace.get_tracer("the-users-app")
    with tracer.start_as_current_span("handle ticket 42") as user_span:
        result = agent.invoke({"messages": [("user", "Charge cus_001 2,500 USD")]},
                              {"metadata": {"ailink_session_id": "ticket-42"}, "callbacks": [AIlinkCallbackHandler()]})
    (approval_id,) = approver.join()
    assert result["messages"][-1].content == "Charged after approval."

    spans = exporter.get_finished_spans()
    trace_id = user_span.get_span_context().trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}  # one trace
    (tool_span,) = _by_name(spans, "execute_tool payments_api")
    assert tool_span.parent is not None and tool_span.parent.span_id == user_span.get_span_context().span_id
    assert tool_span.kind is trace.SpanKind.INTERNAL
    attributes = dict(tool_span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.tool.name"] == "payments_api"
    assert attributes["gen_ai.tool.call.id"] == "call_charge_1"  # the model's tool-call id
    assert attributes["gen_ai.conversation.id"] == "ticket-42"  # the session
    assert attributes["gen_ai.tool.description"] == "Call the payments API"
    assert attributes["http.request.method"] == "POST"
    assert attributes["ailink.tool.outcome"] == "ok" and attributes["http.response.status_code"] == 200
    assert attributes["ailink.approval.id"] == approval_id and attributes["ailink.approval.decision"] == "approved"
    assert tool_span.status.status_code is trace.StatusCode.UNSET

    requested, decided = tool_span.events
    assert requested.name == "ailink.approval.requested"
    assert requested.attributes is not None and requested.attributes["ailink.approval.id"] == approval_id
    assert requested.attributes["ailink.approval.policy"] == "charges-need-approval"
    assert decided.name == "ailink.approval.decided"
    assert decided.attributes is not None and decided.attributes["ailink.approval.decision"] == "approved"
    wait_time = decided.attributes["ailink.approval.wait.duration"]
    assert isinstance(wait_time, float) and wait_time >= 0
    (wait_span,) = _by_name(spans, "await_approval payments_api")
    assert wait_span.parent is not None and wait_span.parent.span_id == tool_span.context.span_id
    assert dict(wait_span.attributes or {})["ailink.approval.decision"] == "approved"

    # the gateway's side: every request of the run (model and tool) carries the user's trace; the
    # tool's request has the tool span as its parent
    rows = ailink_gateway.audit(session_id="ticket-42")
    assert len(rows) >= 3  # two model calls, the charge
    assert {row["trace_id"] for row in rows} == {_hex(trace_id, 32)}
    charge_rows = [row for row in rows if row["path"].endswith("/v1/charges")]  # parked, then executed
    assert charge_rows and {row["span_id"] for row in charge_rows} == {_hex(tool_span.context.span_id, 16)}
    model_rows = [row for row in rows if "chat/completions" in row["path"]]
    assert model_rows and {row["span_id"] for row in model_rows} == {_hex(user_span.get_span_context().span_id, 16)}


def test_a_denied_call_is_an_error_span_and_a_paused_graph_ends_its_span_without_error(
    exporter: InMemorySpanExporter, ailink_gateway: EmulatorGateway
) -> None:
    from langchain.agents import create_agent
    from langchain_ailink import ChatAIlink, langchain_tool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    payments = ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL, BLOCK_REFUNDS])
    llm_token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(llm_token, [
        {"tool_calls": [{"id": "call_refund", "name": "payments_api",
                         "arguments": {"method": "POST", "path": "/v1/refunds", "body": {"charge": "ch_1"}}}]},
        {"tool_calls": [{"id": "call_charge_7", "name": "payments_api", "arguments": CHARGE}]},
        {"content": "Done."},
    ])
    tool = langchain_tool(token=payments, gateway_url=ailink_gateway.url, name="payments_api",
                          description="Call the payments API", methods=["GET", "POST"], on_approval="interrupt")
    agent = create_agent(ChatAIlink(model="gpt-4o-mini", token=llm_token, gateway_url=ailink_gateway.url),
                         tools=[tool], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "order-7"}}

    with trace.get_tracer("the-users-app").start_as_current_span("first part"):
        paused = agent.invoke({"messages": [("user", "refund, then charge")]}, config)
    approval_id = paused["__interrupt__"][0].value["approval_id"]
    denied_span, paused_span = _by_name(exporter.get_finished_spans(), "execute_tool payments_api")

    denied = dict(denied_span.attributes or {})
    assert denied["gen_ai.tool.call.id"] == "call_refund" and denied["ailink.tool.outcome"] == "denied"
    assert denied["error.type"] == "policy_denied" and denied["ailink.policy"] == "block-refunds"
    assert denied_span.status.status_code is trace.StatusCode.ERROR

    stopped = dict(paused_span.attributes or {})
    assert stopped["gen_ai.tool.call.id"] == "call_charge_7" and stopped["ailink.tool.outcome"] == "paused"
    assert paused_span.status.status_code is trace.StatusCode.UNSET  # a pause is not an error
    assert [e.name for e in paused_span.events] == ["ailink.approval.requested", "ailink.approval.paused"]

    exporter.clear()
    ailink_gateway.admin.approvals.approve(approval_id)
    with trace.get_tracer("the-users-app").start_as_current_span("resumed"):
        done = agent.invoke(Command(resume=True), config)
    assert done["messages"][-1].content == "Done."
    (resumed_span,) = _by_name(exporter.get_finished_spans(), "execute_tool payments_api")
    resumed = dict(resumed_span.attributes or {})
    assert resumed["gen_ai.tool.call.id"] == "call_charge_7"  # the same tool call, run again
    assert resumed["ailink.tool.outcome"] == "ok" and resumed["ailink.approval.decision"] == "approved"
    assert ailink_gateway.payments_stats()["charges"] == 1


def test_a_llamaindex_agent_tool_span_carries_the_agents_tool_call_id(
    exporter: InMemorySpanExporter, ailink_gateway: EmulatorGateway
) -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.llms.ailink import AIlink
    from llama_index.tools.ailink import ailink_session, llamaindex_tool

    payments = ailink_gateway.create_token()
    llm_token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(llm_token, [
        {"tool_calls": [{"id": "call_lookup", "name": "payments_api",
                         "arguments": {"method": "GET", "path": "/v1/customers/cus_001"}}]},
        {"content": "cus_001 is Ada Lovelace."},
    ])
    tool = llamaindex_tool(token=payments, gateway_url=ailink_gateway.url, name="payments_api",
                           description="Call the payments API", methods=["GET"])
    agent = FunctionAgent(tools=[tool], llm=AIlink(model="gpt-4o-mini", token=llm_token,
                                                   gateway_url=ailink_gateway.url))

    async def run() -> str:
        with ailink_session("rag-7"):
            return str(await agent.run("Who is cus_001?"))

    with trace.get_tracer("the-users-app").start_as_current_span("question") as user_span:
        answer = asyncio.run(run())
    assert "Ada Lovelace" in answer
    (tool_span,) = _by_name(exporter.get_finished_spans(), "execute_tool payments_api")
    attributes = dict(tool_span.attributes or {})
    assert attributes["gen_ai.tool.call.id"] == "call_lookup" and attributes["gen_ai.conversation.id"] == "rag-7"
    assert tool_span.context.trace_id == user_span.get_span_context().trace_id
    (row,) = [r for r in ailink_gateway.audit(session_id="rag-7") if r["path"].endswith("/v1/customers/cus_001")]
    assert row["trace_id"] == _hex(user_span.get_span_context().trace_id, 32)


def test_without_a_span_requests_keep_the_sessions_own_trace(
    exporter: InMemorySpanExporter, ailink_gateway: EmulatorGateway
) -> None:
    token = ailink_gateway.create_token()
    with ailink.AIlinkClient(token, ailink_gateway.url) as client, client.trace("sess-no-span"):
        client.get("/v1/customers/cus_001")
    (row,) = ailink_gateway.audit(session_id="sess-no-span")
    from ailink._tracing import trace_id_for

    assert row["trace_id"] == trace_id_for("sess-no-span")
    assert exporter.get_finished_spans() == ()  # a plain request is no tool call: no span of ours


def test_import_and_calls_never_load_opentelemetry_on_their_own() -> None:
    code = (
        "import sys, httpx, ailink\n"
        "from ailink.adapters import gateway_tool\n"
        "seen = []\n"
        "def answer(request):\n"
        "    seen.append(request.headers['traceparent'])\n"
        "    return httpx.Response(200, json={'ok': True})\n"
        "client = ailink.AIlinkClient('ailink_v1_test', 'http://127.0.0.1:9', transport=httpx.MockTransport(answer))\n"
        "tool = gateway_tool(name='api', description='d', client=client, methods=['GET'])\n"
        "with client.trace('s1'):\n"
        "    client.get('/x')\n"
        "    assert tool.run({'method': 'GET', 'path': '/y'}).ok\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')), len(seen))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] 2"
