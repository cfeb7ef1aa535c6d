"""The exactly-once soak: seeded fault schedules over the real tool paths, counted at the upstream.

The toolkit promises that an agent's action happens once, or visibly not at all. This harness
measures the promise. Per emulator profile it builds one environment::

    caller ─ hop 1 (FaultProxy) ─ emulator ─ hop 2 (FaultProxy) ─ CountingUpstream

plus a background approver. Each schedule reseeds the two proxies (faults on hop 1, hop 2 or
both) and drives a few logical calls, each with a unique ``ref``, through one real path: the
core clients (``AIlinkClient.post``, ``AsyncClient.post``), ``GatewayTool.run/arun``, the
LangChain tool (``invoke(ToolCall)``), the CrewAI tool (``run``), the LlamaIndex
``FunctionTool`` (``call/acall``), the Agents SDK tool as its runner invokes it (``on_invoke_tool``)
and the Pydantic AI tool in a real agent with a scripted model (``run_sync/run``). A share of the
calls needs human approval.

Every call's report is classified (success / definite failure / explicit outcome unknown /
unclassified) and checked against the upstream's execution count for its ``ref``:

* **duplicate**: executed more than once;
* **dishonest**: a definite failure ("failed", "denied", "not performed", ...) although it was
  executed, or a success although it was not;
* **unclassified**: an exception that is not a typed ``AIlinkError``, a report the contract does
  not know, or no answer by the caller's deadline.

Used by ``tests/faults/test_soak.py`` (short) and ``bench/soak.py`` (long).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import ailink
from ailink.faults import DEFAULT_WEIGHTS, CountingUpstream, FaultProxy
from ailink.testing import start_gateway

PROFILES = ("ailink", "real")
HOPS = ("hop1", "hop2", "both")
PATHS = (
    "client.post",
    "async_client.post",
    "gateway_tool.run",
    "gateway_tool.arun",
    "langchain.invoke",
    "crewai.run",
    "llamaindex.call",
    "llamaindex.acall",
    "openai_agents.on_invoke_tool",
    "pydantic_ai.run_sync",
    "pydantic_ai.run",
)
REPORTS = ("success", "failure", "unknown", "unclassified")
PASS_ONLY: Mapping[str, float] = {"pass": 1.0}
#: Outcomes of a tool result that say the action definitely was not (or failed to be) performed.
FAILURE_OUTCOMES = frozenset({"rejected", "timed_out", "denied", "invalid_arguments", "error"})
UNKNOWN_OUTCOME = "outcome_unknown"
APPROVAL_THRESHOLD = 1000
APPROVAL_POLICY: dict[str, Any] = {
    "name": "soak-charges-need-approval",
    "rules": [
        {
            "when": {
                "all": [
                    {"field": "request.method", "op": "eq", "value": "POST"},
                    {"field": "request.body.amount", "op": "gt", "value": APPROVAL_THRESHOLD},
                ]
            },
            "then": {"action": "require_approval", "timeout": "60s"},
        }
    ],
}
TOOL_NAME = "payments"
TOOL_PATH = "/v1/charges"


@dataclass(frozen=True)
class SoakConfig:
    """What to run. ``schedules`` are split over ``profiles`` (round robin), then over ``hops``."""

    schedules: int = 24
    seed: int = 0
    calls_per_schedule: int = 6
    profiles: tuple[str, ...] = PROFILES
    hops: tuple[str, ...] = HOPS
    paths: tuple[str, ...] = PATHS
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    approval_share: float = 0.25
    reject_share: float = 0.25
    timeout: float = 3.0
    approval_timeout: float = 8.0
    max_retries: int = 2
    only_schedule: int | None = None

    @property
    def call_bound(self) -> float:
        """The caller's deadline for one logical call; a call still running past it is a hang."""
        return (self.max_retries + 1) * self.timeout + self.approval_timeout + 10.0

    def schedule_indices(self, profile: str) -> list[int]:
        wanted = range(self.schedules) if self.only_schedule is None else [self.only_schedule]
        return [i for i in wanted if self.profiles[i % len(self.profiles)] == profile]


@dataclass(frozen=True)
class CallPlan:
    ref: str
    path: str
    amount: int
    decision: str | None  # "approved" / "rejected" for an approval-gated call, else None


@dataclass(frozen=True)
class SchedulePlan:
    index: int
    profile: str
    hop: str
    proxy_seed: int
    calls: tuple[CallPlan, ...]


def plan_schedule(config: SoakConfig, index: int) -> SchedulePlan:
    """The schedule ``index`` of ``config`` (reproducible from the seed alone)."""
    rng = random.Random(f"soak:{config.seed}:{index}")
    nprof = len(config.profiles)
    profile = config.profiles[index % nprof]
    hop = config.hops[(index // nprof) % len(config.hops)]
    calls = []
    for k in range(config.calls_per_schedule):
        path = rng.choice(config.paths)
        gated = rng.random() < config.approval_share
        decision = ("rejected" if rng.random() < config.reject_share else "approved") if gated else None
        amount = rng.randint(APPROVAL_THRESHOLD + 1, 5000) if gated else rng.randint(1, APPROVAL_THRESHOLD)
        calls.append(CallPlan(f"r{config.seed}-{index}-{k}", path, amount, decision))
    return SchedulePlan(index, profile, hop, rng.getrandbits(48), tuple(calls))


@dataclass(frozen=True)
class Report:
    """How the caller was told the call ended."""

    kind: str  # one of REPORTS
    detail: str


@dataclass(frozen=True)
class CallOutcome:
    """One logical call: what the caller was told and what the upstream did."""

    schedule: int
    profile: str
    hop: str
    path: str
    ref: str
    decision: str | None
    report: Report
    faults: tuple[str, ...]
    executions: int = 0

    @property
    def duplicate(self) -> bool:
        return self.executions > 1

    @property
    def dishonest(self) -> bool:
        if self.report.kind == "failure":
            return self.executions >= 1
        if self.report.kind == "success":
            return self.executions == 0
        return False

    @property
    def violation(self) -> bool:
        return self.duplicate or self.dishonest or self.report.kind == "unclassified"

    def describe(self) -> str:
        gate = f" approval={self.decision}" if self.decision else ""
        faults = ",".join(self.faults) or "none"
        return (
            f"schedule {self.schedule} {self.profile}/{self.hop} {self.path} ref={self.ref}{gate}: "
            f"reported {self.report.kind} ({self.report.detail}), executed {self.executions}x; faults [{faults}]"
        )


# ---------------------------------------------------------------------------------- classification


def classify_error(exc: BaseException) -> Report:
    """A raised error: typed errors by their ``ambiguous`` flag, anything else is unclassified."""
    if isinstance(exc, ailink.AIlinkError):
        if getattr(exc, "ambiguous", False) is True:
            return Report("unknown", type(exc).__name__)
        return Report("failure", f"{type(exc).__name__}({exc.status_code}, {exc.code})")
    return Report("unclassified", f"untyped {type(exc).__name__}: {str(exc)[:160]}")


def classify_outcome(status: Any, where: str) -> Report:
    """A tool result's outcome value (``ToolResult.outcome`` / artifact ``status``)."""
    if status == "ok":
        return Report("success", f"{where} ok")
    if status == UNKNOWN_OUTCOME:
        return Report("unknown", f"{where} {UNKNOWN_OUTCOME}")
    if status in FAILURE_OUTCOMES:
        return Report("failure", f"{where} {status}")
    return Report("unclassified", f"{where} reported outcome {status!r}")


def classify_response(response: httpx.Response) -> Report:
    """A response returned by ``client.post(..., wait_for_approval=True)``."""
    if response.status_code == 202:
        return Report("unclassified", "202 returned although the call waits for approval")
    if response.status_code >= 400:
        return Report("unclassified", f"error status {response.status_code} returned instead of raised")
    return Report("success", f"HTTP {response.status_code}")


def _artifact_status(artifact: Any) -> Any:
    return artifact.get("status") if isinstance(artifact, Mapping) else None


# ---------------------------------------------------------------------------------- environment


class Approver:
    """A background reviewer: decides every pending approval of the gateway, per the ``ref`` in
    the request body (``decisions[ref]``; approved when unknown)."""

    def __init__(self, gateway_url: str, admin_key: str, interval: float = 0.02) -> None:
        self.decisions: dict[str, str] = {}
        self.decided: dict[str, str] = {}
        self.errors: list[str] = []
        self._http = httpx.Client(base_url=gateway_url, headers={"X-Admin-Key": admin_key}, timeout=10.0)
        self._interval = interval
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-approver", daemon=True)
        self._thread.start()

    def _pending(self) -> list[dict[str, Any]]:
        response = self._http.get("/api/v1/approvals", params={"status": "pending", "limit": 1000})
        response.raise_for_status()
        rows = response.json()
        return [r for r in rows if isinstance(r, dict) and r.get("status") == "pending"]

    @staticmethod
    def _ref_of(row: Mapping[str, Any]) -> str | None:
        summary = row.get("request_summary") or row.get("summary") or {}
        preview = summary.get("body_preview") if isinstance(summary, Mapping) else None
        try:
            body = json.loads(preview) if isinstance(preview, str) else None
        except ValueError:
            return None
        ref = body.get("ref") if isinstance(body, dict) else None
        return ref if isinstance(ref, str) else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rows = self._pending()
                self._idle.set() if not rows else self._idle.clear()
                for row in rows:
                    ref = self._ref_of(row)
                    if ref is None and len(self.errors) < 20:
                        self.errors.append(f"approval {row.get('id')} shows no ref in its body preview: approved")
                    decision = self.decisions.get(ref or "", "approved")
                    self._http.post(f"/api/v1/approvals/{row['id']}/decision", json={"decision": decision})
                    self.decided[str(row["id"])] = decision
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                if len(self.errors) < 20:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self._interval)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no approval is pending (after at least one fresh look)."""
        self._idle.clear()
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._http.close()


class AsyncRunner:
    """One event loop in a thread: async paths run there, each bounded by a deadline."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="soak-async", daemon=True)
        self._thread.start()

    def run(self, factory: Callable[[], Awaitable[Report]], bound: float) -> Report:
        async def bounded() -> Report:
            return await asyncio.wait_for(factory(), bound)

        future = asyncio.run_coroutine_threadsafe(bounded(), self.loop)
        try:
            return future.result(bound + 5)
        except (asyncio.TimeoutError, TimeoutError, concurrent.futures.TimeoutError):
            future.cancel()
            return Report("unclassified", f"hang: no answer within {bound:g} s")
        except BaseException as exc:
            return classify_error(exc)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def run_bounded(fn: Callable[[], Report], bound: float) -> Report:
    """Run a blocking path in a thread; a call still running after ``bound`` seconds is a hang."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["report"] = fn()
        except BaseException as exc:
            box["report"] = classify_error(exc)

    thread = threading.Thread(target=target, name="soak-call", daemon=True)
    thread.start()
    thread.join(bound)
    if thread.is_alive():
        return Report("unclassified", f"hang: no answer within {bound:g} s")
    report: Report = box["report"]
    return report


class SoakEnvironment:
    """caller → hop 1 → emulator (``profile``) → hop 2 → counting upstream, plus an approver."""

    def __init__(self, profile: str, config: SoakConfig) -> None:
        self.profile = profile
        self.config = config
        self._closers: list[Callable[[], None]] = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        config = self.config
        self.upstream = CountingUpstream().start()
        self._closers.append(self.upstream.stop)
        self.hop2 = FaultProxy(self.upstream.url, weights=PASS_ONLY).start()
        self._closers.append(self.hop2.stop)
        options: dict[str, Any] = {} if self.profile == "ailink" else {"profile": self.profile}
        self.gateway, stop_gateway = start_gateway(**options)
        self._closers.append(stop_gateway)
        self.token = self.gateway.create_token(name=f"soak-{self.profile}", upstream=self.hop2.url,
                                               policies=[APPROVAL_POLICY])
        self.hop1 = FaultProxy(self.gateway.url, weights=PASS_ONLY).start()
        self._closers.append(self.hop1.stop)
        self.approver = Approver(self.gateway.url, self.gateway.admin_key)
        self._closers.append(self.approver.close)
        self.runner = AsyncRunner()
        self._closers.append(self.runner.close)
        retry = ailink.RetryConfig(max_retries=config.max_retries, backoff_base=0.01, backoff_cap=0.05,
                                   max_retry_after=2.0)
        options = {"agent_name": "soak-agent", "timeout": config.timeout, "retries": retry,
                   "approval_timeout": config.approval_timeout}
        self.client = ailink.AIlinkClient(self.token, self.hop1.url, **options)
        self._closers.append(self.client.close)
        self.async_client = ailink.AsyncClient(self.token, self.hop1.url, **options)
        self._closers.append(self._close_async_client)
        self._tools: dict[str, Any] = {}

    def _close_async_client(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.async_client.aclose(), self.runner.loop).result(5)

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                closer()

    def __enter__(self) -> SoakEnvironment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the tools, built on first use (CrewAI's import is slow) ---------------------------
    def tool(self, kind: str) -> Any:
        if kind not in self._tools:
            self._tools[kind] = self._build_tool(kind)
        return self._tools[kind]

    def _build_tool(self, kind: str) -> Any:
        common: dict[str, Any] = {
            "name": TOOL_NAME,
            "description": "Create a charge on the payments API.",
            "methods": ["POST"],
            "approval_timeout": self.config.approval_timeout,
        }
        if kind == "gateway_tool":
            return ailink.gateway_tool(client=self.client, **common)
        if kind == "gateway_tool_async":
            return ailink.gateway_tool(client=self.async_client, **common)
        if kind == "langchain":
            from langchain_ailink import langchain_tool

            return langchain_tool(client=self.client, **common)
        if kind == "crewai":
            from crewai_ailink import crewai_tool

            return crewai_tool(client=self.client, **common)
        if kind == "llamaindex":
            from llama_index.tools.ailink import llamaindex_tool

            return llamaindex_tool(client=self.client, **common)
        if kind == "llamaindex_async":
            from llama_index.tools.ailink import llamaindex_tool

            return llamaindex_tool(client=self.async_client, **common)
        if kind == "openai_agents":
            from agents_ailink import openai_agents_tool

            return openai_agents_tool(client=self.async_client, **common)
        if kind == "pydantic_ai":
            from pydantic_ai_ailink import pydantic_ai_tool

            return pydantic_ai_tool(client=self.async_client, **common)
        raise ValueError(f"unknown tool kind {kind!r}")

    # -- one logical call ------------------------------------------------------------------
    def call(self, plan: CallPlan, session_id: str) -> Report:
        """Drive ``plan`` through its path; the report is classified, never raised."""
        body = {"ref": plan.ref, "amount": plan.amount, "currency": "usd"}
        args = {"method": "POST", "path": TOOL_PATH, "body": body}
        bound = self.config.call_bound
        path = plan.path
        if path == "client.post":
            return run_bounded(lambda: classify_response(
                self.client.post(TOOL_PATH, json=body, wait_for_approval=True)), bound)
        if path == "async_client.post":
            async def post() -> Report:
                return classify_response(await self.async_client.post(TOOL_PATH, json=body, wait_for_approval=True))

            return self.runner.run(post, bound)
        if path == "gateway_tool.run":
            context = ailink.CallContext(session_id=session_id, call_id=plan.ref)
            return run_bounded(lambda: _tool_result(self.tool("gateway_tool").run(args, context)), bound)
        if path == "gateway_tool.arun":
            context = ailink.CallContext(session_id=session_id, call_id=plan.ref)

            async def arun() -> Report:
                return _tool_result(await self.tool("gateway_tool_async").arun(args, context))

            return self.runner.run(arun, bound)
        if path == "langchain.invoke":
            from langchain_ailink import SESSION_METADATA_KEY

            tool = self.tool("langchain")
            call = {"type": "tool_call", "id": plan.ref, "name": TOOL_NAME, "args": args}
            config = {"metadata": {SESSION_METADATA_KEY: session_id}}
            return run_bounded(lambda: _langchain_message(tool.invoke(call, config)), bound)
        if path == "crewai.run":
            tool = self.tool("crewai")
            return run_bounded(lambda: _crewai_result(tool.run(**args)), bound)
        if path == "llamaindex.call":
            tool = self.tool("llamaindex")
            return run_bounded(lambda: _llamaindex_output(tool.call(**args)), bound)
        if path == "llamaindex.acall":
            tool = self.tool("llamaindex_async")

            async def acall() -> Report:
                return _llamaindex_output(await tool.acall(**args))

            return self.runner.run(acall, bound)
        if path == "openai_agents.on_invoke_tool":
            from framework_calls import agents_invoke

            tool = self.tool("openai_agents")

            async def on_invoke_tool() -> Report:
                return _agents_output(await agents_invoke(tool, json.dumps(args), plan.ref))

            return self.runner.run(on_invoke_tool, bound)
        if path in ("pydantic_ai.run_sync", "pydantic_ai.run"):
            from framework_calls import scripted_agent, tool_answer

            agent = scripted_agent(self.tool("pydantic_ai"), json.dumps(args), plan.ref)
            if path == "pydantic_ai.run_sync":
                return run_bounded(lambda: _pydantic_ai_answer(
                    tool_answer(agent.run_sync("Charge.", conversation_id=session_id).new_messages(), plan.ref)),
                    bound)

            async def run() -> Report:
                result = await agent.run("Charge.", conversation_id=session_id)
                return _pydantic_ai_answer(tool_answer(result.new_messages(), plan.ref))

            return self.runner.run(run, bound)
        raise ValueError(f"unknown path {path!r}")

    def settle(self, timeout: float = 15.0) -> None:
        """Let approvals and approved executions finish before the upstream is counted."""
        self.approver.wait_idle(timeout)
        time.sleep(0.3)


def _tool_result(result: ailink.ToolResult) -> Report:
    outcome = result.outcome.value if hasattr(result.outcome, "value") else result.outcome
    return classify_outcome(outcome, "ToolResult")


def _langchain_message(message: Any) -> Report:
    artifact = getattr(message, "artifact", None)
    if artifact is None:
        return Report("unclassified", f"LangChain answer without an artifact: {type(message).__name__}")
    return classify_outcome(_artifact_status(artifact), "ToolMessage")


def _crewai_result(result: Any) -> Report:
    if hasattr(result, "artifact"):
        return classify_outcome(_artifact_status(result.artifact), "AIlinkToolOutput")
    details = getattr(result, "details", None)
    if details is not None:
        return classify_outcome(_artifact_status(details), "ToolFailure")
    return Report("unclassified", f"CrewAI answer of type {type(result).__name__}")


def _llamaindex_output(output: Any) -> Report:
    return classify_outcome(_artifact_status(getattr(output, "raw_output", None)), "ToolOutput")


def _agents_output(output: Any) -> Report:
    return classify_outcome(_artifact_status(getattr(output, "artifact", None)), "AIlinkToolOutput")


def _pydantic_ai_answer(part: Any) -> Report:
    """A ``ToolReturnPart`` (the artifact in ``metadata``); a retry prompt means the tool never ran."""
    from pydantic_ai.messages import ToolReturnPart

    if not isinstance(part, ToolReturnPart):
        return Report("unclassified", f"Pydantic AI answered {type(part).__name__}, not the tool's return")
    return classify_outcome(_artifact_status(part.metadata), f"ToolReturnPart({part.outcome})")


# ---------------------------------------------------------------------------------- the soak


@dataclass
class SoakResult:
    """Every call of a soak run, with tables and the violations."""

    config: SoakConfig
    outcomes: list[CallOutcome] = field(default_factory=list)
    schedules_run: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def duplicates(self) -> list[CallOutcome]:
        return [o for o in self.outcomes if o.duplicate]

    @property
    def dishonest(self) -> list[CallOutcome]:
        return [o for o in self.outcomes if o.dishonest]

    @property
    def unclassified(self) -> list[CallOutcome]:
        return [o for o in self.outcomes if o.report.kind == "unclassified"]

    @property
    def violations(self) -> list[CallOutcome]:
        return [o for o in self.outcomes if o.violation]

    @property
    def ok(self) -> bool:
        return not self.violations and not self.problems

    def rows(self, key: Callable[[CallOutcome], str]) -> list[tuple[str, dict[str, int]]]:
        groups: dict[str, list[CallOutcome]] = {}
        for outcome in self.outcomes:
            groups.setdefault(key(outcome), []).append(outcome)
        return [(name, _count(group)) for name, group in sorted(groups.items())]

    def table(self, examples: int = 15) -> str:
        """The result as text: per profile/hop, per path, approval-gated calls, and examples."""
        lines = [
            f"soak: seed {self.config.seed}, {self.schedules_run} schedules, {len(self.outcomes)} calls, "
            f"{self.seconds:.1f} s",
        ]
        by_hop = self.rows(lambda o: f"{o.profile}/{o.hop}")
        lines += _render("profile/hop", [*by_hop, ("total", _count(self.outcomes))])
        lines += _render("profile/path", self.rows(lambda o: f"{o.profile}/{o.path}"))
        lines += _render("profile/approval", self.rows(lambda o: f"{o.profile}/{o.decision or 'none'}"))
        faulted = Counter(f for o in self.violations for f in set(o.faults))
        if faulted:
            lines.append("faults seen by violating calls: " + ", ".join(f"{k} {v}" for k, v in faulted.most_common()))
        details = Counter(f"{o.report.kind}: {o.report.detail}" for o in self.outcomes)
        lines.append("reports: " + "; ".join(f"{k} x{v}" for k, v in details.most_common(12)))
        for problem in self.problems:
            lines.append(f"PROBLEM: {problem}")
        for outcome in self.violations[:examples]:
            lines.append("  " + outcome.describe())
        if len(self.violations) > examples:
            lines.append(f"  ... and {len(self.violations) - examples} more violating calls")
        return "\n".join(lines)


_COLUMNS = ("schedules", "calls", "success", "failures", "unknown", "unclassified", "duplicates", "dishonest")


def _count(outcomes: Sequence[CallOutcome]) -> dict[str, int]:
    kinds = Counter(o.report.kind for o in outcomes)
    return {
        "schedules": len({(o.profile, o.schedule) for o in outcomes}),
        "calls": len(outcomes),
        "success": kinds["success"],
        "failures": kinds["failure"],
        "unknown": kinds["unknown"],
        "unclassified": kinds["unclassified"],
        "duplicates": sum(o.duplicate for o in outcomes),
        "dishonest": sum(o.dishonest for o in outcomes),
    }


def _render(title: str, rows: list[tuple[str, dict[str, int]]]) -> list[str]:
    width = max([len(title)] + [len(name) for name, _ in rows])
    out = ["", f"{title:<{width}}  " + "  ".join(f"{c:>12}" for c in _COLUMNS)]
    for name, counts in rows:
        out.append(f"{name:<{width}}  " + "  ".join(f"{counts[c]:>12}" for c in _COLUMNS))
    return out


def _faults_since(proxy: FaultProxy, start: int, hop: str) -> tuple[list[str], int]:
    records = proxy.records
    return [f"{hop}:{r.fault}" for r in records[start:] if r.fault != "pass"], len(records)


def run_profile(config: SoakConfig, profile: str, result: SoakResult,
                progress: Callable[[str], None] | None = None) -> None:
    """Run the schedules of ``profile`` and add their calls to ``result``."""
    indices = config.schedule_indices(profile)
    if not indices:
        return
    try:
        env = SoakEnvironment(profile, config)
    except TypeError as exc:
        if "profile" not in str(exc):
            raise
        result.problems.append(f"profile {profile!r} could not be started ({exc}); its schedules did not run")
        return
    pending: list[CallOutcome] = []
    with env:
        for n, index in enumerate(indices):
            plan = plan_schedule(config, index)
            faulty = dict(config.weights)
            env.hop1.reseed(plan.proxy_seed, faulty if plan.hop in ("hop1", "both") else PASS_ONLY)
            env.hop2.reseed(plan.proxy_seed + 1, faulty if plan.hop in ("hop2", "both") else PASS_ONLY)
            seen1 = seen2 = 0
            session = f"soak-{config.seed}-{index}"
            for call in plan.calls:
                if call.decision is not None:
                    env.approver.decisions[call.ref] = call.decision
                report = env.call(call, session)
                faults1, seen1 = _faults_since(env.hop1, seen1, "hop1")
                faults2, seen2 = _faults_since(env.hop2, seen2, "hop2")
                pending.append(CallOutcome(index, profile, plan.hop, call.path, call.ref, call.decision, report,
                                           tuple(faults1 + faults2)))
            result.schedules_run += 1
            if progress is not None and (n + 1) % 50 == 0:
                progress(f"{profile}: {n + 1}/{len(indices)} schedules")
        env.settle()
        counts = env.upstream.counts()
        if env.approver.errors:
            result.problems.append(f"approver errors on {profile}: {env.approver.errors[:3]}")
    result.outcomes += [_with_executions(o, counts.get(o.ref, 0)) for o in pending]


def _with_executions(outcome: CallOutcome, executions: int) -> CallOutcome:
    return CallOutcome(outcome.schedule, outcome.profile, outcome.hop, outcome.path, outcome.ref,
                       outcome.decision, outcome.report, outcome.faults, executions)


def run_soak(config: SoakConfig, progress: Callable[[str], None] | None = None) -> SoakResult:
    """Run every schedule of ``config``; the result holds every call and its verdict."""
    started = time.monotonic()
    result = SoakResult(config)
    for profile in config.profiles:
        run_profile(config, profile, result, progress)
    result.seconds = time.monotonic() - started
    return result


# ---------------------------------------------------------------------------------- restart


@dataclass
class RestartResult:
    """The restart scenario: what was observed after ``kill -9`` and a restart on the same DB."""

    stuck_keys: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    approval_delivered: bool = False
    approval_executions: int = 0

    @property
    def ok(self) -> bool:
        return not self.stuck_keys and not self.duplicates and self.approval_delivered and \
            self.approval_executions == 1

    def describe(self) -> str:
        return "\n".join([
            f"stuck keys (409 after restart): {self.stuck_keys or 'none'}",
            f"duplicates: {self.duplicates or 'none'}",
            f"approval pending across the restart delivered: {self.approval_delivered}, "
            f"executed {self.approval_executions}x",
            *self.notes,
        ])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmulatorProcess:
    """``ailink dev`` in a subprocess on a fixed port and database file (so it can be killed)."""

    def __init__(self, db_path: Path, port: int, admin_key: str, profile: str = "ailink") -> None:
        self.db_path = db_path
        self.port = port
        self.admin_key = admin_key
        self.profile = profile
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        argv = ["--host", "127.0.0.1", "--port", str(self.port), "--db", str(self.db_path),
                "--admin-key", self.admin_key]
        if self.profile != "ailink":
            argv += ["--profile", self.profile]
        code = "import sys; from ailink.emulator import main_dev; sys.exit(main_dev(sys.argv[1:]))"
        self.process = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=self.db_path.parent,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"the emulator exited with {self.process.returncode}: {err[-500:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("the emulator did not start")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no cleanup."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


@contextlib.contextmanager
def _background(fn: Callable[[], Any]) -> Iterator[dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        thread.join(30)


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def run_restart_scenario(workdir: Path, *, resends: int = 3) -> RestartResult:
    """``kill -9`` the emulator during an in-flight POST and with an approval pending, restart
    it on the same database and port, and re-send: no key may be stuck (409), nothing may run
    twice, and the pending approval must still be delivered and executed once."""
    result = RestartResult()
    admin_key = "ailink_admin_" + os.urandom(12).hex()
    emulator = EmulatorProcess(workdir / "emulator.db", _free_port(), admin_key)
    with CountingUpstream() as upstream:
        emulator.start()
        try:
            admin_http = httpx.Client(base_url=emulator.url, headers={"X-Admin-Key": admin_key}, timeout=10.0)
            try:
                policy = admin_http.post("/api/v1/policies", json=APPROVAL_POLICY).json()["id"]
                token = admin_http.post("/api/v1/tokens", json={
                    "name": "restart", "upstream_url": upstream.url, "policy_ids": [policy]}).json()["token_id"]
            finally:
                admin_http.close()
            _restart_checks(result, emulator, upstream, token, admin_key, resends)
        finally:
            emulator.stop()
    return result


def _restart_checks(result: RestartResult, emulator: EmulatorProcess, upstream: CountingUpstream, token: str,
                    admin_key: str, resends: int) -> None:
    no_retry = ailink.RetryConfig(max_retries=0)
    client = ailink.AIlinkClient(token, emulator.url, timeout=5.0, retries=no_retry, approval_timeout=20.0)
    try:
        # 1. a completed call before the crash (must be replayed, not re-run, afterwards)
        done_body = {"ref": "restart-done", "amount": 10}
        client.post(TOOL_PATH, json=done_body, idempotency_key="restart-key-done")
        # 2. an in-flight call: the upstream counts it, then holds its answer while we kill -9
        inflight_body = {"ref": "restart-inflight", "amount": 20, "upstream_delay": 3}
        # 3. an approval-gated call, pending across the restart
        gated_body = {"ref": "restart-gated", "amount": APPROVAL_THRESHOLD + 500}
        pending = client.post(TOOL_PATH, json=gated_body, idempotency_key="restart-key-gated")
        approval_id = pending.json().get("approval_id") if pending.status_code == 202 else None
        if approval_id is None:
            result.notes.append(f"the gated call was not parked for approval (HTTP {pending.status_code})")
        with _background(lambda: client.post(TOOL_PATH, json=inflight_body,
                                             idempotency_key="restart-key-inflight")) as first:
            if not _wait_for(lambda: upstream.executions("restart-inflight") >= 1, 10):
                result.notes.append("the in-flight call never reached the upstream")
            emulator.kill()
        error = first.get("error")
        result.notes.append(f"in-flight call at kill -9: {type(error).__name__ if error else 'answered'}")
        emulator.start()

        keys = {"restart-key-done": done_body, "restart-key-inflight": inflight_body,
                "restart-key-gated": gated_body}
        for _ in range(resends):
            for key, body in keys.items():
                try:
                    response = client.post(TOOL_PATH, json=body, idempotency_key=key)
                    outcome = f"HTTP {response.status_code}"
                except ailink.IdempotencyConflictError:
                    if key not in result.stuck_keys:
                        result.stuck_keys.append(key)
                    outcome = "409 idempotency_in_progress"
                except ailink.AIlinkError as exc:
                    outcome = f"{type(exc).__name__}({exc.status_code}, {exc.code})"
                note = f"re-send {key} after restart: {outcome}"
                if note not in result.notes:
                    result.notes.append(note)
        if approval_id is not None:
            with httpx.Client(base_url=emulator.url, headers={"X-Admin-Key": admin_key}, timeout=10.0) as admin:
                admin.post(f"/api/v1/approvals/{approval_id}/decision", json={"decision": "approved"})
            try:
                decided = client.wait_for_approval(approval_id, timeout=15.0)
                final = decided.response
                result.approval_delivered = final is not None and final.status_code < 300
                result.notes.append(f"approval after restart: {decided.status.value}, "
                                    f"HTTP {final.status_code if final is not None else None}")
            except ailink.AIlinkError as exc:
                result.notes.append(f"approval after restart: {type(exc).__name__}: {exc}")
            with contextlib.suppress(ailink.AIlinkError):
                client.post(TOOL_PATH, json=gated_body, idempotency_key="restart-key-gated")
        time.sleep(0.3)
        result.approval_executions = upstream.executions("restart-gated")
        result.duplicates = upstream.duplicates()
    finally:
        client.close()


def parse_list(value: str, known: Iterable[str]) -> tuple[str, ...]:
    """A comma list checked against ``known`` (for command lines)."""
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in items if v not in known]
    if unknown:
        raise ValueError(f"unknown {unknown}; known: {', '.join(known)}")
    return items
