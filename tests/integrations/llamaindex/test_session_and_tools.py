"""Session ids, packaging, the tool outside agents, idempotency and the tool spec."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.tools import FunctionTool
from llama_index.tools.ailink import AIlinkToolSpec, ailink_session, current_session_id, llamaindex_tool
from llama_index.tools.ailink._session import trace_context, track_root_spans
from llama_index_instrumentation.dispatcher import instrument_tags
from llama_index_instrumentation.span import active_span_id

import ailink
from ailink.testing import EmulatorGateway

from .conftest import CHARGE, DENY_REFUNDS, TOOL
from .test_agent_tools import make_tool

PACKAGE_ROOT = Path(__file__).resolve().parents[3] / "integrations" / "llamaindex"


def test_namespace_packages_have_no_init() -> None:
    for folder in ("llama_index", "llama_index/llms", "llama_index/tools"):
        assert not (PACKAGE_ROOT / folder / "__init__.py").exists()
    import llama_index.core
    import llama_index.llms.ailink
    import llama_index.llms.openai_like
    import llama_index.tools.ailink

    assert len(list(llama_index.__path__)) >= 2
    assert Path(llama_index.llms.ailink.__file__).is_relative_to(PACKAGE_ROOT)
    assert Path(llama_index.tools.ailink.__file__).is_relative_to(PACKAGE_ROOT)


def test_ailink_integrations_reexports() -> None:
    from llama_index.llms.ailink import AIlink

    from ailink.integrations import llamaindex_llm
    from ailink.integrations import llamaindex_tool as reexported

    assert reexported is llamaindex_tool
    # llamaindex_llm also takes a client first; its positional-model form is the adapter's
    llm = llamaindex_llm("gpt-4o-mini", token="ailink_v1_reexport_check", gateway_url="http://127.0.0.1:9")
    assert isinstance(llm, AIlink) and llm.api_base == "http://127.0.0.1:9/v1" and llm.model == "gpt-4o-mini"


def test_session_id_order() -> None:
    track_root_spans()
    dispatcher = get_dispatcher(__name__)
    seen: dict[str, str] = {}

    @dispatcher.span
    def inner() -> None:
        seen["inner"] = current_session_id()
        seen["span"] = active_span_id.get() or ""
        seen["parent"] = trace_context().parent_span_id or ""

    @dispatcher.span
    def outer() -> None:
        seen["outer_span"] = active_span_id.get() or ""
        inner()

    outer()
    assert seen["inner"] == seen["outer_span"]  # root span of the call tree
    assert seen["parent"] == ailink.span_id_from(seen["span"]) and len(seen["parent"]) == 16
    with instrument_tags({"llamaindex.run_id": "run-1"}):
        assert current_session_id() == "run-1"
        with ailink.trace("trace-1"):
            assert current_session_id() == "trace-1"
            with ailink_session("explicit") as session:
                assert session == "explicit" and current_session_id() == "explicit"
        outer()
        assert seen["inner"] == "run-1"
    first, second = current_session_id(), current_session_id()
    assert first.startswith("sess_") and first != second
    with ailink_session() as generated:
        assert generated.startswith("sess_") and current_session_id() == generated


def test_identical_action_in_one_session_runs_once_unless_keyed(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="payments", policies=[DENY_REFUNDS])
    tool = make_tool(ailink_gateway, token)
    with ailink_session("li-idem"):
        first = tool.call(**CHARGE)
        again = tool.call(**CHARGE)
        forced = tool.call(**CHARGE, idempotency_key="deliberate-second-charge")
    assert first.raw_output["status"] == "ok" and not first.raw_output["replayed"]
    assert again.raw_output["replayed"] and "stored result" in again.content
    assert again.raw_output["idempotency_key"] == first.raw_output["idempotency_key"]
    assert forced.raw_output["idempotency_key"] == "deliberate-second-charge" and not forced.raw_output["replayed"]
    assert ailink_gateway.payments_stats()["charges"] == 2
    with ailink_session("li-idem-other"):
        tool.call(**CHARGE)
    assert ailink_gateway.payments_stats()["charges"] == 3


async def test_event_mode_without_workflow_returns_pending_then_reattaches(
    ailink_gateway: EmulatorGateway, payments_token: str
) -> None:
    tool = make_tool(ailink_gateway, payments_token, on_approval="event")
    with ailink_session("li-no-workflow"):
        pending = await tool.acall(**CHARGE)
        assert not pending.is_error and pending.raw_output["status"] == "pending"
        assert "waiting for human approval" in pending.content
        approval_id = pending.raw_output["approval_id"]
        ailink_gateway.decide(approval_id, "approved")
        done = await tool.acall(**CHARGE)
        sync_again = await asyncio.to_thread(tool.call, **CHARGE)
    assert done.raw_output["status"] == "ok" and done.raw_output["approval_id"] == approval_id
    assert sync_again.raw_output["replayed"]
    assert ailink_gateway.payments_stats()["charges"] == 1


def test_tool_metadata_and_spec(ailink_gateway: EmulatorGateway, payments_token: str) -> None:
    tool = make_tool(ailink_gateway, payments_token)
    assert isinstance(tool, FunctionTool) and tool.requires_context and tool.ctx_param_name == "ctx"
    schema = tool.metadata.get_parameters_dict()
    assert set(schema["properties"]) == {"method", "path", "query", "body", "idempotency_key"}
    assert schema["properties"]["method"]["enum"] == ["GET", "POST"]
    spec = AIlinkToolSpec(token=payments_token, gateway_url=ailink_gateway.url, name=TOOL, methods=["GET"])
    [spec_tool] = spec.to_tool_list()
    assert spec_tool.metadata.name == TOOL and spec.to_tool_list(spec_functions=["other"]) == []
    assert asyncio.run(spec.to_tool_list_async()) == [spec_tool]
    assert payments_token.split("_", 2)[-1] not in repr(tool.fn) + repr(tool.async_fn)
    output = spec_tool.call(method="GET", path="/v1/customers")
    assert output.raw_output["body"]["object"] == "list"
    with pytest.raises(ValueError, match="on_approval"):
        llamaindex_tool(token=payments_token, name=TOOL, description="d", on_approval="later")  # type: ignore[arg-type]


async def test_the_same_agent_tool_call_in_a_new_run_reattaches(ailink_gateway: EmulatorGateway) -> None:
    from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult

    from .conftest import scripted_llm

    token = ailink_gateway.create_token(upstream="payments")
    tool = make_tool(ailink_gateway, token)

    async def charge_once(**run: Any) -> Any:
        # a re-run of the same tool call (same tool id): what a workflow resumed under a new run id does
        handler = FunctionAgent(tools=[tool], llm=scripted_llm([CHARGE]), streaming=False).run("go", **run)
        [result] = [ev async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
        await handler
        return result.tool_output.raw_output

    first, again = await charge_once(), await charge_once()
    assert first["idempotency_key"] == again["idempotency_key"] and again["replayed"]
    assert ailink_gateway.payments_stats()["charges"] == 1
    gateway = ailink.gateway_tool(name=TOOL, description="d", token=token, gateway_url=ailink_gateway.url,
                                  methods=["GET", "POST"])
    assert first["idempotency_key"] == gateway.prepare(CHARGE, ailink.CallContext(call_id="call_1"))[1]
    with ailink_session("li-chosen"):  # a chosen session scopes the key: a new action
        chosen = await charge_once()
    assert chosen["idempotency_key"] != first["idempotency_key"] and not chosen["replayed"]
    assert ailink_gateway.payments_stats()["charges"] == 2
