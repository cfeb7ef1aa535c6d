"""The adapter contract: the core's tool flow calls a ToolDriver to announce, pause and resume approvals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ailink import ApprovalPendingError, ToolOutcome
from ailink.adapters import (
    CANNOT_PAUSE,
    ApprovalPending,
    ApprovalResolved,
    CallContext,
    GatewayTool,
    PauseRequest,
    Rejection,
    ToolAction,
    ToolDriver,
)

from .helpers import Driver, FakeClock, Recorder, gateway_error, pending_answer

ACTION = ToolAction(name="payments_api", description="Payments API", methods=("POST",))
CTX = CallContext(session_id="sess-1", call_id="call_1")
CHARGE = {"method": "POST", "path": "/v1/charges", "body": {"amount": 1200}}
STORED = httpx.Response(200, json={"id": "ch_1"},
                        headers={"Idempotent-Replayed": "true", "X-AIlink-Approval-Id": "apr_1"})
APPROVED = httpx.Response(200, json={"status": "approved"})
WITHDRAWN = httpx.Response(200, json={"approval_id": "apr_1", "status": "cancelled", "updated": True})


def advertised(answer: httpx.Response) -> httpx.Response:
    """``answer`` from a gateway with the agent-side approval endpoints (the emulator says so on every answer)."""
    answer.headers["X-AIlink-Extensions"] = "respond-async, outcome-store"
    return answer


class Paused(Exception):
    """What a framework's pause raises on the first run (LangGraph's GraphInterrupt, LlamaIndex's WaitingForEvent)."""


class Recorded(ToolDriver):
    """A driver that records what the flow asks of it; ``resumes`` are the values successive pauses return."""

    def __init__(self, approvals: Any = "pause", *, still_pending: Any = "wait", resumed: bool = False,
                 resumes: tuple[Any, ...] = ()) -> None:
        self.approvals = approvals
        self.still_pending = still_pending
        self.was_resumed = resumed
        self.resumes = list(resumes)
        self.events: list[tuple[str, str, str | None]] = []
        self.pauses: list[PauseRequest] = []

    def emit(self, event: ApprovalPending | ApprovalResolved) -> None:
        status = event.result.outcome.value if isinstance(event, ApprovalResolved) else None
        self.events.append((type(event).__name__, event.approval_id, status))

    def pause(self, request: PauseRequest) -> Any:
        self.pauses.append(request)
        if not self.resumes:
            raise Paused(request.approval_id)
        return self.resumes.pop(0)

    def resumed(self, approval_id: str) -> bool:
        return self.was_resumed


def tool(driver: Driver, recorder: Recorder) -> GatewayTool:
    return driver.tool(recorder, ACTION)


async def run(driver: Driver, gateway: GatewayTool, tool_driver: ToolDriver) -> Any:
    if driver.kind == "sync":
        return gateway.run(CHARGE, CTX, tool_driver)
    return await gateway.arun(CHARGE, CTX, tool_driver)


async def test_waiting_announces_then_resolves(driver: Driver, clock: FakeClock) -> None:
    recorder = Recorder(script=[pending_answer("apr_1"), APPROVED, STORED])
    recorded = Recorded("wait")
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.ok and result.approval_id == "apr_1"
    assert recorded.events == [("ApprovalPending", "apr_1", None), ("ApprovalResolved", "apr_1", "ok")]
    assert recorded.pauses == []


async def test_the_first_run_pauses_with_the_frameworks_exception(driver: Driver) -> None:
    recorder = Recorder(script=[pending_answer("apr_1")])
    recorded = Recorded("pause")
    with pytest.raises(Paused):
        await run(driver, tool(driver, recorder), recorded)
    [pause] = recorded.pauses
    assert pause.approval_id == "apr_1" and pause.pending is not None and pause.tool == "payments_api"
    assert pause.idempotency_key == recorder.header("x-ailink-idempotency-key")[0]
    assert pause.to_dict()["summary"] == {"method": "POST", "path": "/v1/charges"}
    assert recorded.events == [("ApprovalPending", "apr_1", None)]
    assert recorder.paths() == ["POST /v1/charges"]  # nothing waited for in the tool


async def test_a_replay_that_finds_the_decision_resolves_without_pausing(driver: Driver) -> None:
    recorder = Recorder(script=[STORED])
    recorded = Recorded("pause")  # a framework that cannot tell a replay (LangGraph)
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.ok and result.approval_id == "apr_1"
    assert recorded.pauses == [] and recorded.events == [("ApprovalResolved", "apr_1", "ok")]


async def test_a_replay_with_step_state_collects_the_earlier_pause(driver: Driver) -> None:
    recorder = Recorder(script=[STORED])
    recorded = Recorded("pause", resumed=True, resumes=("the response event",))  # LlamaIndex
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.ok
    [pause] = recorded.pauses
    assert pause.approval_id == "apr_1" and pause.pending is None
    assert recorded.events == [("ApprovalResolved", "apr_1", "ok")]


async def test_resumed_while_still_pending_pauses_again(driver: Driver) -> None:
    recorder = Recorder(script=[pending_answer("apr_1"), pending_answer("apr_1")])
    recorded = Recorded("pause", still_pending="pause", resumes=("is it decided?",))
    with pytest.raises(Paused):
        await run(driver, tool(driver, recorder), recorded)
    assert [p.approval_id for p in recorded.pauses] == ["apr_1", "apr_1"]
    assert recorded.events == [("ApprovalPending", "apr_1", None), ("ApprovalPending", "apr_1", None)]
    keys = recorder.header("x-ailink-idempotency-key")
    assert len(keys) == 2 and keys[0] == keys[1]  # the re-send re-attaches by key


async def test_resumed_while_still_pending_waits_when_the_driver_says_so(driver: Driver, clock: FakeClock) -> None:
    recorder = Recorder(script=[pending_answer("apr_1"), pending_answer("apr_1"), APPROVED, STORED])
    recorded = Recorded("pause", still_pending="wait", resumed=True, resumes=("decided?",))
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.ok and len(recorded.pauses) == 1
    assert recorded.events == [("ApprovalResolved", "apr_1", "ok")]  # announced by the earlier run
    assert recorder.paths() == ["POST /v1/charges", "POST /v1/charges", "GET /v1/approvals/apr_1",
                                "GET /v1/approvals/apr_1/result"]


async def test_a_driver_that_cannot_pause_here_waits(driver: Driver, clock: FakeClock) -> None:
    recorder = Recorder(script=[pending_answer("apr_1"), httpx.Response(200, json={"status": "rejected",
                                                                                    "reason": "no"})])
    recorded = Recorded("pause", resumes=(CANNOT_PAUSE,))
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.outcome is ToolOutcome.REJECTED and result.reason == "no"
    assert recorded.events == [("ApprovalPending", "apr_1", None), ("ApprovalResolved", "apr_1", "rejected")]


async def test_return_hands_back_the_pending_result(driver: Driver) -> None:
    recorder = Recorder(script=[pending_answer("apr_1")])
    recorded = Recorded("return")
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.outcome is ToolOutcome.PENDING and result.approval_id == "apr_1"
    assert recorded.events == [("ApprovalPending", "apr_1", None)] and recorded.pauses == []


async def test_no_approval_means_no_driver_call(driver: Driver) -> None:
    recorder = Recorder(script=[httpx.Response(200, json={"id": "ch_1"})])
    recorded = Recorded("pause", resumed=True)
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.ok and recorded.events == [] and recorded.pauses == []


async def test_async_drivers_are_awaited_under_arun(clock: FakeClock) -> None:
    async_driver = Driver("async")
    seen: list[str] = []

    class AsyncRecorded(ToolDriver):
        approvals = "pause"

        async def emit(self, event: ApprovalPending | ApprovalResolved) -> None:
            seen.append(type(event).__name__)

        async def pause(self, request: PauseRequest) -> Any:
            seen.append("pause")
            return CANNOT_PAUSE

        async def resumed(self, approval_id: str) -> bool:
            seen.append("resumed?")
            return False

    recorder = Recorder(script=[pending_answer("apr_1"), APPROVED, STORED])
    result = await async_driver.tool(recorder, ACTION).arun(CHARGE, CTX, AsyncRecorded())
    assert result.ok
    assert seen == ["resumed?", "ApprovalPending", "pause", "ApprovalResolved"]


async def test_a_rejection_as_resume_value_withdraws_the_approval(driver: Driver) -> None:
    recorder = Recorder(script=[advertised(pending_answer("apr_1")), WITHDRAWN])
    recorded = Recorded("pause", resumed=True, resumes=(Rejection("not this month"),))
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.outcome is ToolOutcome.REJECTED and result.approval_id == "apr_1"
    assert result.reason == "not this month" and result.is_error
    assert "rejected (approval apr_1 withdrawn): not this month" in result.content
    assert "not performed" in result.content
    assert result.idempotency_key == recorder.header("x-ailink-idempotency-key")[0]
    assert recorder.paths() == ["POST /v1/charges", "DELETE /v1/approvals/apr_1"]  # nothing re-sent after it
    assert recorded.events == [("ApprovalResolved", "apr_1", "rejected")]


async def test_a_rejection_that_comes_after_the_approval_reports_the_performed_action(driver: Driver) -> None:
    decided = httpx.Response(200, json={"approval_id": "apr_1", "status": "approved", "updated": False})
    recorder = Recorder(script=[advertised(pending_answer("apr_1")), decided, STORED])
    recorded = Recorded("pause", resumed=True, resumes=(Rejection("too late"),))
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.ok and result.replayed and result.approval_id == "apr_1"  # the model reads the truth
    assert recorder.paths() == ["POST /v1/charges", "DELETE /v1/approvals/apr_1", "POST /v1/charges"]
    keys = recorder.header("x-ailink-idempotency-key")
    assert keys[0] == keys[2]
    assert recorded.events == [("ApprovalResolved", "apr_1", "ok")]


async def test_a_rejection_whose_withdrawal_fails_is_an_unknown_outcome(driver: Driver) -> None:
    refused = gateway_error(404, "approval_not_found", "No such approval request")
    recorder = Recorder(script=[advertised(pending_answer("apr_1")), refused])
    recorded = Recorded("pause", resumed=True, resumes=(Rejection(),))
    result = await run(driver, tool(driver, recorder), recorded)
    assert result.outcome is ToolOutcome.UNKNOWN and result.approval_id == "apr_1" and result.status_code == 404
    assert "could not be withdrawn" in result.content and "may still approve it" in result.content
    assert recorder.paths() == ["POST /v1/charges", "DELETE /v1/approvals/apr_1"]


async def test_reject_from_outside_the_run_reattaches_and_withdraws(driver: Driver) -> None:
    recorder = Recorder(script=[advertised(pending_answer("apr_1")), WITHDRAWN])
    gateway = tool(driver, recorder)
    if driver.kind == "sync":
        result = gateway.reject(CHARGE, CTX, "over budget")
    else:
        result = await gateway.areject(CHARGE, CTX, "over budget")
    assert result.outcome is ToolOutcome.REJECTED and result.reason == "over budget"
    assert recorder.paths() == ["POST /v1/charges", "DELETE /v1/approvals/apr_1"]
    expected = ACTION.idempotency_key(ACTION.parse(CHARGE), CTX)  # the key the paused run sent
    assert recorder.header("x-ailink-idempotency-key")[0] == expected


async def test_reject_after_a_reviewer_decided_returns_the_decision(driver: Driver) -> None:
    rejected = gateway_error(403, "approval_rejected", "rejected", details={"approval_id": "apr_1",
                                                                             "reason": "reviewer said no"})
    recorder = Recorder(script=[rejected])
    gateway = tool(driver, recorder)
    result = gateway.reject(CHARGE, CTX) if driver.kind == "sync" else await gateway.areject(CHARGE, CTX)
    assert result.outcome is ToolOutcome.REJECTED and "reviewer said no" in result.content
    assert recorder.paths() == ["POST /v1/charges"]


@pytest.mark.parametrize("answers", [
    [advertised(pending_answer("apr_1")), gateway_error(404, "approval_not_found", "No such approval request")],
    [gateway_error(403, "token_revoked", "revoked")],  # never re-attached: nothing withdrawn
], ids=["withdrawal-refused", "not-reattached"])
async def test_reject_that_does_not_take_effect_raises(driver: Driver, answers: list[httpx.Response]) -> None:
    recorder = Recorder(script=list(answers))
    gateway = tool(driver, recorder)
    with pytest.raises(ApprovalPendingError, match="did not take effect") as raised:
        gateway.reject(CHARGE, CTX) if driver.kind == "sync" else await gateway.areject(CHARGE, CTX)
    assert raised.value.code == "approval_not_withdrawn"
    assert raised.value.idempotency_key == ACTION.idempotency_key(ACTION.parse(CHARGE), CTX)


def test_a_driver_and_the_direct_options_do_not_mix() -> None:
    gateway = GatewayTool(ACTION)
    with pytest.raises(TypeError, match="not both"):
        gateway.run(CHARGE, CTX, Recorded(), wait=False)


# -- helpers every adapter shares ------------------------------------------------------------


def test_choose_session_takes_the_callers_choice_then_a_trace_block_then_the_frameworks() -> None:
    import ailink
    from ailink.adapters import choose_session

    assert choose_session("meta", "thread", fallbacks=("run",)) == ("meta", True)
    assert choose_session(None, "thread", fallbacks=("run",)) == ("thread", True)
    assert choose_session("", None, fallbacks=(None, "root-run")) == ("root-run", False)
    with ailink.trace(session_id="from-trace"):
        assert choose_session(None, "thread") == ("from-trace", True)
        assert choose_session("meta", "thread") == ("meta", True)
    fresh, chosen = choose_session(None)
    assert fresh.startswith("sess_") and not chosen and fresh != choose_session(None)[0]


def test_iterate_within_enters_the_context_only_while_the_producer_runs() -> None:
    import contextlib
    import contextvars

    from ailink.adapters import iterate_within

    var: contextvars.ContextVar[str | None] = contextvars.ContextVar("v", default=None)
    seen_by_producer: list[str | None] = []

    def producer() -> Any:
        for i in range(3):
            seen_by_producer.append(var.get())
            yield i

    @contextlib.contextmanager
    def scoped() -> Any:
        token = var.set("run")
        try:
            yield
        finally:
            var.reset(token)

    seen_by_consumer = []
    for item in iterate_within(producer(), scoped):
        seen_by_consumer.append((item, var.get()))
    assert seen_by_producer == ["run", "run", "run"]
    assert seen_by_consumer == [(0, None), (1, None), (2, None)]
