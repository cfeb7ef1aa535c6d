"""The exactly-once soak, short version (the long one is ``bench/soak.py``), and the restart scenario.

Every logical call goes through a real path (core clients, GatewayTool, LangChain, CrewAI,
LlamaIndex, OpenAI Agents SDK, Pydantic AI) with seeded faults on hop 1, hop 2 or both; the counting upstream says what
really happened. Required: no action runs twice, no report contradicts the upstream, and every
report is one the contract knows.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import ailink

from .soak import (
    PASS_ONLY,
    PATHS,
    PROFILES,
    CallOutcome,
    Report,
    SoakConfig,
    classify_error,
    classify_outcome,
    plan_schedule,
    run_restart_scenario,
    run_soak,
)

pytestmark = pytest.mark.faults

#: 24 schedules per profile (8 per hop), 6 calls each.
SHORT = SoakConfig(schedules=24, seed=20240611, calls_per_schedule=6)


@pytest.mark.parametrize("profile", PROFILES)
def test_soak_every_action_runs_once_or_visibly_not(profile: str) -> None:
    config = replace(SHORT, profiles=(profile,))
    result = run_soak(config)
    report = result.table()
    assert not result.problems, report
    assert result.schedules_run == config.schedules, report
    assert len(result.outcomes) == config.schedules * config.calls_per_schedule
    assert {o.path for o in result.outcomes} == set(PATHS), report
    assert {o.hop for o in result.outcomes} == {"hop1", "hop2", "both"}
    assert any(o.decision for o in result.outcomes), report
    assert not result.duplicates, report
    assert not result.dishonest, report
    assert not result.unclassified, report


@pytest.mark.parametrize("profile", PROFILES)
def test_without_faults_every_call_is_performed_once_or_refused(profile: str) -> None:
    """The harness itself: with every fault off, each call succeeds and runs once, or (rejected
    by the reviewer) fails and never runs."""
    config = replace(SHORT, schedules=2, calls_per_schedule=12, profiles=(profile,), weights=PASS_ONLY,
                     approval_share=0.4, reject_share=0.5)
    result = run_soak(config)
    assert not result.problems, result.table()
    rejected = [o for o in result.outcomes if o.decision == "rejected"]
    performed = [o for o in result.outcomes if o.decision != "rejected"]
    assert rejected and performed
    assert all((o.report.kind, o.executions) == ("failure", 0) for o in rejected), result.table()
    assert all((o.report.kind, o.executions) == ("success", 1) for o in performed), result.table()
    assert all(o.faults == () for o in result.outcomes)


def test_restart_kill9_leaves_no_stuck_key_and_runs_nothing_twice(tmp_path: Path) -> None:
    result = run_restart_scenario(tmp_path)
    summary = result.describe()
    assert not result.stuck_keys, summary
    assert not result.duplicates, summary
    assert result.approval_delivered, summary
    assert result.approval_executions == 1, summary


# -- the verdicts the soak relies on ------------------------------------------------------------


def _outcome(kind: str, executions: int) -> CallOutcome:
    return CallOutcome(0, "ailink", "hop1", "client.post", "r", None, Report(kind, "x"), (), executions)


@pytest.mark.parametrize(
    ("kind", "executions", "duplicate", "dishonest"),
    [
        ("success", 1, False, False),
        ("success", 0, False, True),
        ("success", 2, True, False),
        ("failure", 0, False, False),
        ("failure", 1, False, True),
        ("unknown", 0, False, False),
        ("unknown", 1, False, False),
        ("unknown", 3, True, False),
    ],
)
def test_verdicts(kind: str, executions: int, duplicate: bool, dishonest: bool) -> None:
    outcome = _outcome(kind, executions)
    assert (outcome.duplicate, outcome.dishonest) == (duplicate, dishonest)
    assert outcome.violation == (duplicate or dishonest)


def test_classification_follows_the_contract() -> None:
    ambiguous = ailink.APIConnectionError("may have happened")
    ambiguous.ambiguous = True  # type: ignore[attr-defined]
    assert classify_error(ambiguous).kind == "unknown"
    assert classify_error(ailink.PolicyDeniedError("no", status_code=403, code="policy_denied")).kind == "failure"
    assert classify_error(KeyError("x")).kind == "unclassified"
    assert classify_outcome("ok", "t").kind == "success"
    assert classify_outcome("outcome_unknown", "t").kind == "unknown"
    assert {classify_outcome(s, "t").kind for s in ("rejected", "timed_out", "denied", "error")} == {"failure"}
    assert classify_outcome("pending", "t").kind == "unclassified"
    assert classify_outcome(None, "t").kind == "unclassified"


def test_schedules_are_reproducible_from_the_seed() -> None:
    assert plan_schedule(SHORT, 5) == plan_schedule(SHORT, 5)
    assert plan_schedule(SHORT, 5) != plan_schedule(replace(SHORT, seed=1), 5)
    refs = [c.ref for i in range(SHORT.schedules) for c in plan_schedule(SHORT, i).calls]
    assert len(refs) == len(set(refs))
