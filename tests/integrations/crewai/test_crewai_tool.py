"""AIlinkTool inside real CrewAI crews, against the emulator over loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.events import crewai_event_bus
from crewai.tools import ToolExecutionFailedError, ToolFailure, ToolFailurePolicy
from crewai_ailink import AIlinkApprovalPendingEvent, AIlinkApprovalResolvedEvent, AIlinkTool, ailink_session
from crewai_support import CHARGE, LOOKUP, REFUND, ScriptedLLM, single_agent_crew, tool_call
from profiles import both_profiles

from ailink import span_id_from
from ailink.testing import EmulatorGateway

TOOL = "payments_api"


def rows(gateway: EmulatorGateway, session_id: str, path: str | None = None) -> list[dict[str, Any]]:
    found = gateway.audit(session_id=session_id)
    return [r for r in found if path is None or r["path"] == path]


def props(row: dict[str, Any]) -> dict[str, Any]:
    value = row.get("properties") or {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def test_import_does_not_load_crewai() -> None:
    code = (
        "import sys, crewai_ailink\n"
        "from crewai_ailink import crewai_tool, crewai_llm, ailink_session\n"
        "loaded = sorted(m for m in sys.modules if m == 'crewai' or m.startswith(('crewai.', 'crewai_core')))\n"
        "print(loaded)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[]"


def test_tool_shape_and_secrets(make_tool: Any) -> None:
    tool = make_tool()
    assert isinstance(tool, AIlinkTool)
    assert tool.name == TOOL
    assert tool.args_schema is tool.gateway.action.args_model
    assert set(tool.args_schema.model_fields) == {"method", "path", "query", "body", "idempotency_key"}
    token = tool.gateway.config.api_key
    assert token and token.startswith("ailink_v1_")
    assert token not in repr(tool)
    assert token not in str(tool.model_dump())


def test_on_approval_only_wait(make_tool: Any) -> None:
    with pytest.raises(ValueError, match="on_approval"):
        make_tool(on_approval="interrupt")


def test_reexported_from_ailink_integrations() -> None:
    import crewai_ailink

    from ailink.integrations import crewai_llm, crewai_tool

    assert crewai_tool is crewai_ailink.crewai_tool
    # crewai_llm also takes a client first; its keyword form builds what crewai_ailink.crewai_llm builds
    options = {"model": "gpt-4o-mini", "token": "ailink_v1_reexport_check", "gateway_url": "http://127.0.0.1:9"}
    llm, original = crewai_llm(**options), crewai_ailink.crewai_llm(**options)
    assert type(llm) is type(original) and llm.base_url == original.base_url == "http://127.0.0.1:9/v1"


def test_allowed_call(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    crew, llm, task = single_agent_crew(make_tool(), [tool_call(TOOL, LOOKUP), "Found Ada."])
    with ailink_session("sess-allowed"):
        output = crew.kickoff()

    assert output.raw == "Found Ada."
    assert output.tasks_output[0].tool_failures == []
    assert llm.seen_tool_results and llm.seen_tool_results[0].startswith("HTTP 200 from GET /v1/customers/cus_001")
    assert "Ada Lovelace" in llm.seen_tool_results[0]
    [row] = rows(ailink_gateway, "sess-allowed")
    assert (row["method"], row["path"], row["status_code"]) == ("GET", "/v1/customers/cus_001", 200)
    assert row["tool_name"] == TOOL
    assert row["agent_name"] == "billing-bot"
    path = props(row).pop("span_path")
    assert path[1] == [span_id_from(str(task.id)), "task: billing (Billing clerk)"]
    assert path[-1] == [row["parent_span_id"], f"tool:{TOOL}"]
    assert props(row) == {"framework": "crewai", "agent_role": "Billing clerk", "task": "billing",
                          "task_id": str(task.id), "crew": "crew", "span_path": path}


def test_denied_call_reaches_task_output(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    crew, llm, _ = single_agent_crew(make_tool("deny_refunds"), [tool_call(TOOL, REFUND), "Refund blocked."])
    output = crew.kickoff()

    [record] = output.tasks_output[0].tool_failures
    assert record.tool_name == TOOL
    assert record.agent_role == "Billing clerk"
    assert record.failure.code == "policy_denied"
    assert record.failure.details["policy"] == "no-refunds"
    assert record.failure.details["status"] == "denied"
    assert "no-refunds" in record.failure.message
    assert "no-refunds" in llm.seen_tool_results[0] and "(code: policy_denied)" in llm.seen_tool_results[0]
    assert ailink_gateway.payments_stats()["refunds"] == 0


def test_failure_policy_raise_aborts(make_tool: Any) -> None:
    tool = make_tool("deny_refunds")
    tool.tool_failure_policy = ToolFailurePolicy.RAISE
    crew, _, _ = single_agent_crew(tool, [tool_call(TOOL, REFUND), "not reached"])
    with pytest.raises(ToolExecutionFailedError) as caught:
        crew.kickoff()
    assert caught.value.record.failure.code == "policy_denied"


def test_invalid_arguments_are_a_tool_failure(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    bad = {"method": "DELETE", "path": "/v1/customers/cus_001"}
    crew, llm, _ = single_agent_crew(make_tool(), [tool_call(TOOL, bad), "Gave up."])
    with ailink_session("sess-invalid"):
        output = crew.kickoff()

    [record] = output.tasks_output[0].tool_failures
    assert record.failure.code == "invalid_arguments"
    assert "Nothing was sent" in llm.seen_tool_results[0]
    assert rows(ailink_gateway, "sess-invalid") == []


@both_profiles
@pytest.mark.parametrize("use_async", [False, True])
async def test_approved_by_background_approver(
    make_tool: Any, ailink_gateway: EmulatorGateway, bus_events: list[Any], use_async: bool
) -> None:
    crew, llm, task = single_agent_crew(make_tool("approve_charges"), [tool_call(TOOL, CHARGE), "Charged."])
    approver = ailink_gateway.approve_when_pending()
    with ailink_session("sess-approved"):
        output = await crew.akickoff() if use_async else await asyncio.to_thread(crew.kickoff)
    [approval_id] = approver.join()

    assert output.tasks_output[0].tool_failures == []
    assert llm.seen_tool_results[0].startswith("HTTP 200 from POST /v1/charges")
    assert ailink_gateway.payments_stats()["charges"] == 1
    assert len(ailink_gateway.approvals()) == 1

    crewai_event_bus.flush()
    if not ailink_gateway.serves_extensions:  # the call was held: no approval was ever named to the agent
        assert bus_events == []
        return
    pending, resolved = bus_events
    assert isinstance(pending, AIlinkApprovalPendingEvent)
    assert isinstance(resolved, AIlinkApprovalResolvedEvent)
    for event in (pending, resolved):
        assert event.approval_id == approval_id
        assert event.task_id == str(task.id)
        assert event.agent_role == "Billing clerk"
        assert event.tool_name == TOOL
        assert event.session_id == "sess-approved"
    assert pending.policy == "charges-need-approval"
    assert pending.summary == {"method": "POST", "path": "/v1/charges"}
    assert (resolved.outcome, resolved.status_code) == ("ok", 200)


def test_a_verbose_crew_shows_the_approval_id_and_how_to_decide_while_it_waits(
    make_tool: Any, ailink_gateway: EmulatorGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    crew, _, _ = single_agent_crew(make_tool("approve_charges"), [tool_call(TOOL, CHARGE), "Charged."])
    crew.verbose = True
    approver = ailink_gateway.approve_when_pending()
    try:
        crew.kickoff()
    finally:
        from crewai.events.event_listener import event_listener

        event_listener.formatter.verbose = False  # CrewAI's console is process-wide
    [approval_id] = approver.join()
    console = capsys.readouterr().out
    started = console.index("Tool Execution Started")
    pending = console.index("AIlink approval pending")
    assert started < pending < console.index("AIlink approval resolved")
    assert f"ailink approvals approve {approval_id}" in console[pending:]  # the id, whole, and how to decide
    assert "POST /v1/charges" in console[pending:] and "charges-need-approval" in console[pending:]
    assert "Outcome: ok" in console and ailink_gateway.payments_stats()["charges"] == 1


def test_a_quiet_crew_prints_no_approval_panel(make_tool: Any, ailink_gateway: EmulatorGateway,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    crew, _, _ = single_agent_crew(make_tool("approve_charges"), [tool_call(TOOL, CHARGE), "Charged."])
    approver = ailink_gateway.approve_when_pending()
    crew.kickoff()
    approver.join()
    assert "AIlink approval" not in capsys.readouterr().out


@both_profiles
def test_rejected(make_tool: Any, ailink_gateway: EmulatorGateway, bus_events: list[Any]) -> None:
    crew, llm, _ = single_agent_crew(make_tool("approve_charges"), [tool_call(TOOL, CHARGE), "Not charged."])
    approver = ailink_gateway.approve_when_pending(decision="rejected", reason="too much")
    output = crew.kickoff()
    [approval_id] = approver.join()

    [record] = output.tasks_output[0].tool_failures
    assert record.failure.code == "approval_rejected"
    assert ailink_gateway.payments_stats()["charges"] == 0
    assert len(ailink_gateway.approvals()) == 1
    crewai_event_bus.flush()
    if not ailink_gateway.serves_extensions:  # the real gateway names neither the approval nor the reason
        assert record.failure.details["approval_id"] is None and "rejected" in llm.seen_tool_results[0]
        assert bus_events == []
        return
    assert record.failure.details["approval_id"] == approval_id
    assert "too much" in llm.seen_tool_results[0]
    assert [(type(e).__name__, e.approval_id) for e in bus_events] == [
        ("AIlinkApprovalPendingEvent", approval_id), ("AIlinkApprovalResolvedEvent", approval_id)]
    assert bus_events[1].outcome == "rejected"


@both_profiles
def test_timed_out(make_tool: Any, ailink_gateway: EmulatorGateway, bus_events: list[Any]) -> None:
    if not ailink_gateway.serves_extensions:  # the gateway holds the call until its policy's timeout
        tool = make_tool("approve_charges_1s", approval_timeout=5.0)
        crew, llm, _ = single_agent_crew(tool, [tool_call(TOOL, CHARGE), "No decision."])
        [record] = crew.kickoff().tasks_output[0].tool_failures
        assert record.failure.code == "approval_timeout" and record.failure.retryable is True
        [expired] = ailink_gateway.admin.approvals.list()
        assert expired.status == "expired" and record.failure.details["approval_id"] is None
        assert "NOT performed" in llm.seen_tool_results[0]
        assert ailink_gateway.payments_stats()["charges"] == 0
        crewai_event_bus.flush()
        assert bus_events == []
        return
    tool = make_tool("approve_charges", approval_timeout=1.0)
    crew, llm, _ = single_agent_crew(tool, [tool_call(TOOL, CHARGE), "No decision."])
    output = crew.kickoff()

    [record] = output.tasks_output[0].tool_failures
    assert record.failure.code == "approval_timeout"
    assert record.failure.retryable is True
    assert ailink_gateway.pending_approvals() == []  # withdrawn when the tool stopped waiting
    [withdrawn] = ailink_gateway.admin.approvals.list()
    assert withdrawn.status == "cancelled"
    assert record.failure.details["approval_id"] == withdrawn.id
    assert "NOT performed" in llm.seen_tool_results[0]
    assert ailink_gateway.payments_stats()["charges"] == 0
    crewai_event_bus.flush()
    assert [e.outcome for e in bus_events if isinstance(e, AIlinkApprovalResolvedEvent)] == ["timed_out"]


def test_same_action_twice_in_a_task_executes_once(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool()
    llm = ScriptedLLM(model="scripted", turns=[
        tool_call(TOOL, CHARGE, "a1"), tool_call(TOOL, CHARGE, "a2"), "first task done",
        tool_call(TOOL, CHARGE, "b1"), "second task done",
    ])
    agent = Agent(role="Billing clerk", goal="g", backstory="b", tools=[tool], llm=llm, verbose=False,
                  respect_context_window=False)
    first = Task(name="first", description="Charge once.", expected_output="x", agent=agent)
    second = Task(name="second", description="Charge again.", expected_output="x", agent=agent)
    crew = Crew(agents=[agent], tasks=[first, second], verbose=False)
    with ailink_session("sess-twice"):
        crew.kickoff()

    stats = ailink_gateway.payments_stats()
    # The repeat inside the first task got the stored result; the second task is a new action.
    assert stats["charges"] == 2
    assert sorted(stats["by_idempotency_key"].values()) == [1, 1]
    first_result, repeat, other_task = llm.seen_tool_results
    assert first_result.startswith("HTTP 200 from POST /v1/charges") and "stored result" not in first_result
    assert "stored result" in repeat
    assert other_task.startswith("HTTP 200 from POST /v1/charges") and "stored result" not in other_task


def test_two_agents_share_the_execution_session(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool()
    lookup_two = {"method": "GET", "path": "/v1/customers/cus_002"}
    researcher = Agent(role="Researcher", goal="g", backstory="b", tools=[tool], verbose=False,
                       respect_context_window=False,
                       llm=ScriptedLLM(model="scripted", turns=[tool_call(TOOL, LOOKUP), "ok"]))
    writer = Agent(role="Writer", goal="g", backstory="b", tools=[tool], verbose=False,
                   respect_context_window=False,
                   llm=ScriptedLLM(model="scripted", turns=[tool_call(TOOL, lookup_two), "ok"]))
    tasks = [Task(name="research", description="r", expected_output="x", agent=researcher),
             Task(name="write", description="w", expected_output="x", agent=writer)]
    crew = Crew(name="newsroom", agents=[researcher, writer], tasks=tasks, verbose=False)
    crew.kickoff()  # no ailink_session: the session id is CrewAI's own execution id

    found = [r for r in ailink_gateway.audit() if r["tool_name"] == TOOL]
    assert len(found) == 2
    sessions = {r["session_id"] for r in found}
    assert len(sessions) == 1 and None not in sessions
    by_role = {props(r)["agent_role"]: props(r) for r in found}
    assert set(by_role) == {"Researcher", "Writer"}
    assert by_role["Researcher"]["task"] == "research" and by_role["Writer"]["task"] == "write"
    assert {p["crew"] for p in by_role.values()} == {"newsroom"}
    assert {p["task_id"] for p in by_role.values()} == {str(t.id) for t in tasks}



def test_parallel_tool_calls_keep_their_own_step(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    lookup_two = {"method": "GET", "path": "/v1/customers/cus_002"}
    both = tool_call(TOOL, LOOKUP, "p1") + tool_call(TOOL, lookup_two, "p2")
    crew, llm, task = single_agent_crew(make_tool(), [both, "both found"])
    with ailink_session("sess-parallel"):
        crew.kickoff()

    found = rows(ailink_gateway, "sess-parallel")
    assert sorted(r["path"] for r in found) == ["/v1/customers/cus_001", "/v1/customers/cus_002"]
    assert all(props(r)["agent_role"] == "Billing clerk" and props(r)["task_id"] == str(task.id) for r in found)
    assert len(llm.seen_tool_results) == 2


def test_failures_are_never_cached(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool("deny_refunds")
    crew, llm, _ = single_agent_crew(
        tool,
        [tool_call(TOOL, REFUND, "r1"), tool_call(TOOL, REFUND, "r2"),
         tool_call(TOOL, LOOKUP, "l1"), tool_call(TOOL, LOOKUP, "l2"), "done"],
        cache=True,
    )
    with ailink_session("sess-cache"):
        crew.kickoff()

    cache = crew.agents[0].tools_handler.cache
    assert cache is not None
    assert cache.read(tool=TOOL, input=json.dumps(REFUND)) is None
    assert str(cache.read(tool=TOOL, input=json.dumps(LOOKUP))).startswith("HTTP 200")
    assert len(rows(ailink_gateway, "sess-cache", "/v1/customers/cus_001")) == 1  # the cached call sent nothing
    assert all("policy_denied" in text for text in llm.seen_tool_results[:2])


async def test_akickoff_uses_the_blocking_run(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    crew, _, _ = single_agent_crew(make_tool(), [tool_call(TOOL, LOOKUP), "async done"])
    with ailink_session("sess-akickoff"):
        output = await crew.akickoff()
    assert output.raw == "async done"
    [row] = rows(ailink_gateway, "sess-akickoff")
    assert props(row)["agent_role"] == "Billing clerk"


async def test_arun_direct(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    tool = make_tool("deny_refunds")
    with ailink_session("sess-arun"):
        ok = await tool.arun(**LOOKUP)
        denied = await tool.arun(**REFUND)
    assert str(ok).startswith("HTTP 200 from GET /v1/customers/cus_001")
    assert ok.artifact["status"] == "ok"
    assert isinstance(denied, ToolFailure) and denied.code == "policy_denied"
    found = rows(ailink_gateway, "sess-arun")
    assert {r["path"] for r in found} == {"/v1/customers/cus_001", "/v1/refunds"}
    for r in found:  # outside a crew: the session's kickoff span, then the call's own span
        assert props(r)["framework"] == "crewai"
        kickoff = [span_id_from("sess-arun"), "crew kickoff"]
        assert props(r)["span_path"] == [kickoff, [r["parent_span_id"], f"tool:{TOOL}"]]


def test_hooks_come_back_after_being_cleared(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    from crewai.hooks import clear_all_global_hooks

    clear_all_global_hooks()
    crew, _, _ = single_agent_crew(make_tool(), [tool_call(TOOL, LOOKUP), "ok"], role="Auditor")
    with ailink_session("sess-hooks"):
        crew.kickoff()
    [row] = rows(ailink_gateway, "sess-hooks")
    assert props(row)["agent_role"] == "Auditor"


def test_kicking_off_the_same_crew_again_reattaches(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    # No ailink_session: each kickoff runs under an execution id CrewAI mints, so the key rests
    # on the task id and the second kickoff of the same crew re-attaches instead of charging again.
    crew, llm, _ = single_agent_crew(make_tool(), [tool_call(TOOL, CHARGE, "k1"), "charged",
                                                   tool_call(TOOL, CHARGE, "k2"), "charged again"])
    crew.kickoff()
    crew.kickoff()
    assert ailink_gateway.payments_stats()["charges"] == 1
    first, second = llm.seen_tool_results
    assert "stored result" not in first and "stored result" in second
    sessions = {r["session_id"] for r in ailink_gateway.audit() if r["tool_name"] == TOOL}
    assert len(sessions) == 2  # two kickoffs, two execution ids, one action


def test_a_chosen_session_scopes_the_key(make_tool: Any, ailink_gateway: EmulatorGateway) -> None:
    crew, _, _ = single_agent_crew(make_tool(), [tool_call(TOOL, CHARGE, "s1"), "one",
                                                 tool_call(TOOL, CHARGE, "s2"), "two"])
    with ailink_session("sess-chosen-a"):
        crew.kickoff()
    with ailink_session("sess-chosen-b"):
        crew.kickoff()
    assert ailink_gateway.payments_stats()["charges"] == 2
