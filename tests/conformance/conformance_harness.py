"""What a framework's conformance driver provides, and the child-process entry point of the pause scenario.

A driver file (``drivers/<framework>.py``) defines ``DRIVER``, a :class:`FrameworkDriver` that builds a
real agent of its framework: the framework's gateway LLM (scripted by the emulator's mock LLM, so
its requests land in the session next to the tool's) and the framework's tool one-liner, and
reports what the agent got back for each tool call and which approval events the framework's own
event channel carried. Adding a framework to the suite = adding one such file.

Run as a script (``python conformance_harness.py <driver file> pause|resume|reject <env JSON> <state file>``),
it runs one half of the pause → resume (or pause → reject) scenario in a process of its own and prints the
:class:`Run` as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailink.testing import EmulatorGateway

TOOL = "payments_api"
FINAL_ANSWER = "Conformance run finished."
#: Why the application rejects a paused call in the framework (the reject scenario); the model must read it.
REJECTION = "the customer cancelled the order"
CUSTOMER = {"method": "GET", "path": "/v1/customers/cus_001"}
CHARGE = {"method": "POST", "path": "/v1/charges", "body": {"amount": 250000, "currency": "usd", "customer": "cus_001"}}
REFUND = {"method": "POST", "path": "/v1/refunds", "body": {"charge": "ch_1", "amount": 100}}
INVALID = {"method": "DELETE", "path": "/v1/customers/cus_001"}
# The same actions with the tools generated from the payments API's OpenAPI document.
OP_CUSTOMER = ("retrieve_customer", {"customer_id": "cus_001"})
OP_CHARGE = ("create_charge", {"body": {"amount": 250000, "currency": "usd", "customer": "cus_001"}})
OP_INVALID = ("create_charge", {"body": {"amount": "a lot", "currency": "usd"}})
OP_REFUND = ("create_refund", {"body": {"charge": "ch_1", "amount": 100}})  # denied: not among the tools


@dataclass(frozen=True)
class Env:
    """Where a driver's agent runs: the emulator, the two tokens and the session (JSON-able, for child processes).

    With ``openapi`` set (the URL of the payments API's OpenAPI document) the agent gets the generated
    tools (the framework's ``*_tools`` one-liner, ``openapi_options()``) instead of the generic tool.
    """

    gateway_url: str
    payments_token: str = field(repr=False)
    llm_token: str = field(repr=False)
    session_id: str
    approval_timeout: float = 20.0
    openapi: str | None = None
    admin_key: str | None = field(default=None, repr=False)

    def tool_options(self) -> dict[str, Any]:
        """The keyword arguments of every framework's tool one-liner (``GatewayToolOptions``)."""
        return {"token": self.payments_token, "name": TOOL, "description": "Call the payments API.",
                "methods": ["GET", "POST"], "gateway_url": self.gateway_url, "agent_name": "conformance-agent",
                "approval_timeout": self.approval_timeout}

    def openapi_options(self) -> dict[str, Any]:
        """The keyword arguments of every framework's generated-tools one-liner (``OpenAPIToolsOptions``):
        the document the gateway serves, the token's policies read with the admin key."""
        assert self.openapi is not None
        return {"openapi": self.openapi, "token": self.payments_token, "gateway_url": self.gateway_url,
                "agent_name": "conformance-agent", "approval_timeout": self.approval_timeout,
                "admin_key": self.admin_key}

    def llm_options(self) -> dict[str, Any]:
        """The keyword arguments of every framework's gateway LLM."""
        return {"model": "gpt-4o-mini", "token": self.llm_token, "gateway_url": self.gateway_url,
                "agent_name": "conformance-agent"}


@dataclass(frozen=True)
class Seen:
    """What the agent got back for one tool call, read the framework's way."""

    is_error: bool
    text: str
    status: str | None
    approval_id: str | None = None
    idempotency_key: str | None = None

    @classmethod
    def of(cls, is_error: bool, text: str, details: dict[str, Any] | None) -> Seen:
        details = details or {}
        return cls(is_error, text, details.get("status"), details.get("approval_id"), details.get("idempotency_key"))


@dataclass
class Run:
    """One agent run: each tool call's answer, the approval events (``("pending"|"resolved", approval id)``)
    its framework's own channel carried, the final answer, and the approval it paused on (if any)."""

    calls: list[Seen] = field(default_factory=list)
    events: list[tuple[str, str | None]] = field(default_factory=list)
    final_answer: str = ""
    paused_on: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Run:
        data = json.loads(text)
        return cls([Seen(**c) for c in data["calls"]], [tuple(e) for e in data["events"]],  # type: ignore[misc]
                   data["final_answer"], data["paused_on"])


class FrameworkDriver:
    """One framework's side of the suite. ``pauses``: the framework can pause a run on an approval
    and resume it in another process from persisted state (then :meth:`pause` and :meth:`resume`)."""

    name: str = ""
    pauses: bool = False
    source: Path  # the driver file (set by load_driver; the pause scenario runs it in child processes)

    def run(self, env: Env) -> Run:
        """Run the framework's agent once; its tool waits for approvals in place."""
        raise NotImplementedError

    def pause(self, env: Env, state: Path) -> Run:
        """Run until the agent pauses on an approval, persist the run's state in ``state``, stop."""
        raise NotImplementedError

    def resume(self, env: Env, state: Path) -> Run:
        """Resume the paused run from ``state`` (the approval is decided by now) to its end."""
        raise NotImplementedError

    def reject(self, env: Env, state: Path) -> Run:
        """Resume the paused run from ``state`` rejecting the call in the framework, the way the adapter
        documents as THE way to reject (with :data:`REJECTION` as the reason), to its end."""
        raise NotImplementedError


def script(*actions: dict[str, Any], calls: tuple[tuple[str, dict[str, Any]], ...] = ()) -> list[dict[str, Any]]:
    """The emulator mock LLM's script: one tool call per action (of the generic tool), or per
    ``(tool name, arguments)`` of ``calls``, then the final answer."""
    named = [(TOOL, action) for action in actions] + list(calls)
    turns: list[dict[str, Any]] = [{"tool_calls": [{"id": f"call_{i}", "name": name, "arguments": arguments}]}
                                   for i, (name, arguments) in enumerate(named, start=1)]
    return [*turns, {"content": FINAL_ANSWER}]


def load_driver(path: Path) -> FrameworkDriver:
    """The ``DRIVER`` of a driver file (imported under a name of its own)."""
    spec = importlib.util.spec_from_file_location(f"conformance_driver_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    driver: FrameworkDriver = module.DRIVER
    driver.source = path
    return driver


def in_child(driver: FrameworkDriver, phase: str, env: Env, state: Path) -> Run:
    """One half of the pause scenario in a process of its own (the state file is all it shares)."""
    harness = Path(__file__)
    path = os.pathsep.join(filter(None, [str(harness.parent), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, str(harness), str(driver.source), phase, json.dumps(asdict(env)), str(state)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr[-4000:]
    return Run.from_json(done.stdout.strip().splitlines()[-1])


def pause_then_resume_once(driver: FrameworkDriver, env: Env, gateway: EmulatorGateway, state: Path) -> Seen:
    """The pause scenario, the gated call already scripted: one process pauses on it (nothing performed),
    a reviewer approves, another process resumes from ``state`` and the action runs once. Returns the
    resumed call's answer."""
    first = in_child(driver, "pause", env, state)
    [pending] = gateway.pending_approvals()
    assert first.paused_on == pending["id"] and first.calls == [] and first.events == [("pending", pending["id"])]
    assert gateway.payments_stats()["charges"] == 0

    gateway.decide(pending["id"], "approved")
    second = in_child(driver, "resume", env, state)
    [call] = second.calls
    assert not call.is_error and call.status == "ok" and call.approval_id == pending["id"]
    assert second.events == [("resolved", pending["id"])] and second.final_answer == FINAL_ANSWER
    stats = gateway.payments_stats()
    assert stats["total_executions"] == 1 and stats["by_idempotency_key"] == {call.idempotency_key: 1}
    return call


def main(argv: list[str]) -> None:
    driver_file, phase, env_json, state = argv
    driver = load_driver(Path(driver_file))
    env = Env(**json.loads(env_json))
    phases = {"pause": driver.pause, "resume": driver.resume, "reject": driver.reject}
    print(phases[phase](env, Path(state)).to_json())


if __name__ == "__main__":
    main(sys.argv[1:])
