"""``ailink demo``: an agent on an in-process emulator, a human approval, and the run's trace."""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ailink.demo import LARGE_CHARGE, TOOL_NAME, DemoEnv, DemoOutcome

#: The frameworks with a demo, and what installs each one's scenario with everything it runs.
FRAMEWORK_PACKAGES = {
    "langchain": "langchain-ailink[agents]",
    "crewai": "crewai-ailink",
    "llamaindex": "llama-index-ailink",
}
#: Entry-point group under which a framework package registers ``run(env) -> DemoOutcome``.
SCENARIO_GROUP = "ailink.demos"
DEMO_KEY_FILE = Path(".ailink") / "demo_admin_key"


def demo_frameworks() -> list[str]:
    """The frameworks ``ailink demo --framework`` accepts: the known ones and any other that registered a scenario."""
    return sorted({*FRAMEWORK_PACKAGES, *(ep.name for ep in entry_points(group=SCENARIO_GROUP))})


def load_scenario(framework: str) -> Callable[[DemoEnv], DemoOutcome]:
    """The ``run`` function a framework package registered (ImportError when it is not installed)."""
    found = [ep for ep in entry_points(group=SCENARIO_GROUP) if ep.name == framework]
    if not found:
        raise ImportError(f"no package registered an {SCENARIO_GROUP!r} entry point named {framework!r}")
    run: Callable[[DemoEnv], DemoOutcome] = found[0].load()
    return run


def install_hint(framework: str, error: ImportError) -> str:
    """One line saying what ``ailink demo --framework framework`` lacks and the command that installs it."""
    package = FRAMEWORK_PACKAGES.get(framework, f"{framework}-ailink")
    missing = f" ({error.name.partition('.')[0]} is not installed)" if error.name else ""
    return f"The {framework} demo needs {package}{missing}: pip install '{package}'"


def prepare_crewai_environment() -> None:
    """CrewAI reads these at import time: telemetry and tracing off, storage in a temp dir."""
    os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
    os.environ.setdefault("CREWAI_TESTING", "true")
    os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="ailink-demo-crewai-"))


def is_interactive(auto_approve: bool) -> bool:
    """Ask the person only with a TTY on both ends, outside CI, and without --auto-approve."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return not auto_approve and not in_ci and sys.stdin.isatty() and sys.stdout.isatty()


@dataclass
class Decision:
    approval_id: str
    summary: str
    decision: str | None = None
    decided_by: str = ""
    seen_at: float = field(default_factory=time.monotonic)
    decided_at: float | None = None

    @property
    def waited(self) -> float:
        return (self.decided_at or time.monotonic()) - self.seen_at


@contextlib.contextmanager
def _cbreak(enabled: bool) -> Iterator[int | None]:
    if not enabled:
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class ApprovalReviewer(threading.Thread):
    """Watches the emulator for pending approvals and gets them decided.

    Interactive: a live spinner says what is asked and how to decide (a/r keys, or the
    ``ailink approvals`` command from another shell). Otherwise approves after ``delay`` seconds.
    """

    def __init__(self, env: DemoEnv, console: Any, *, interactive: bool, delay: float) -> None:
        super().__init__(name="ailink-demo-reviewer", daemon=True)
        from ailink._client import AdminClient

        self.admin = AdminClient(admin_key=env.admin_key, gateway_url=env.gateway_url)
        self.env = env
        self.console = console
        self.interactive = interactive
        self.delay = delay
        self.decisions: dict[str, Decision] = {}
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        try:
            self._poll()  # a decision made elsewhere may have landed after the last poll
        finally:
            self.admin.close()

    def _instructions(self, item: Decision) -> str:
        return (
            f"[bold yellow]Approval needed[/bold yellow] {item.approval_id}: {item.summary}\n"
            "  press [bold]a[/bold] to approve or [bold]r[/bold] to reject, or from another shell:\n"
            f"  AILINK_GATEWAY_URL={self.env.gateway_url} AILINK_ADMIN_KEY=$(cat {DEMO_KEY_FILE}) "
            f"ailink approvals approve {item.approval_id}"
        )

    def _decide(self, item: Decision, decision: str, by: str) -> None:
        result = self.admin.approvals.decide(item.approval_id, decision, f"{by} in ailink demo")
        item.decision = result.status if result.updated else item.decision
        item.decided_by = by
        item.decided_at = time.monotonic()

    def _poll(self) -> Decision | None:
        pending = {a.id: a for a in self.admin.approvals.list(status="pending")}
        for approval_id, approval in pending.items():
            if approval_id not in self.decisions:
                summary = approval.summary_text
                body = approval.request_summary.get("body_preview")
                if body:
                    summary += f" {str(body)[:120]}"
                self.decisions[approval_id] = Decision(approval_id, summary)
        for item in self.decisions.values():
            if item.decision is None and item.approval_id not in pending:
                final = self.admin.approvals.get(item.approval_id)
                item.decision, item.decided_by, item.decided_at = final.status, "another shell", time.monotonic()
        return next((d for d in self.decisions.values() if d.decision is None), None)

    def run(self) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        try:
            with _cbreak(self.interactive) as fd:
                live: Live | None = None
                announced: set[str] = set()
                while not self._stop_event.is_set():
                    item = self._poll()
                    if item is None:
                        if live is not None:
                            live.stop()
                            live = None
                        self._stop_event.wait(0.2)
                        continue
                    if self.interactive:
                        text = self._instructions(item) + f"\n  waiting {item.waited:.0f} s"
                        if live is None:
                            live = Live(Spinner("dots", text=text), console=self.console, refresh_per_second=8)
                            live.start()
                        else:
                            live.update(Spinner("dots", text=text))
                        assert fd is not None  # interactive runs read the terminal in cbreak mode
                        ready, _, _ = select.select([fd], [], [], 0.2)
                        key = os.read(fd, 1).decode(errors="ignore").lower() if ready else ""
                        if key in ("a", "r"):
                            self._decide(item, "approved" if key == "a" else "rejected", "you")
                        continue
                    if item.approval_id not in announced:
                        announced.add(item.approval_id)
                        self.console.print(
                            f"⏳ Approval {item.approval_id} pending: {item.summary} — "
                            f"auto-approving in {self.delay:g} s (non-interactive run)"
                        )
                    if item.waited >= self.delay:
                        self._decide(item, "approved", "auto-approve")
                    else:
                        self._stop_event.wait(0.1)
                if live is not None:
                    live.stop()
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _summary_table(outcome: DemoOutcome, session: Any, stats: dict[str, Any], reviewer: ApprovalReviewer) -> Any:
    from rich.table import Table

    tool_requests = [r for r in session.requests if r.tool_name == TOOL_NAME]
    llm_requests = [r for r in session.requests if (r.path or "").endswith("/chat/completions")]
    table = Table(title="Summary", show_header=True)
    table.add_column("what")
    table.add_column("result")
    for artifact in outcome.tool_artifacts:
        detail = artifact.get("policy") or artifact.get("approval_id") or ""
        table.add_row(f"tool call → HTTP {artifact.get('status_code')}", f"{artifact.get('status')} {detail}".strip())
    for item in reviewer.decisions.values():
        table.add_row(f"approval {item.approval_id}", f"{item.decision} by {item.decided_by} after {item.waited:.1f} s")
    table.add_row("charges executed upstream", str(stats.get("charges")))
    counts = f"{len(session.requests)} ({len(tool_requests)} tool, {len(llm_requests)} LLM)"
    table.add_row("gateway requests in session", counts)
    table.add_row("final answer", outcome.final_answer[:200])
    return table


def check_outcome(outcome: DemoOutcome, session: Any, stats: dict[str, Any], rejected: bool = False) -> list[str]:
    """What must be true after the demo; an empty list means success.

    Approved (the default): the charge ran exactly once. Rejected by the person running the
    demo: it never ran and the agent was told so. The charge is recognised by its answer, not by an
    approval id: a gateway that holds the call (the real one) never names the approval.
    """
    problems = []
    statuses = [a.get("status") for a in outcome.tool_artifacts]
    expected_charges = 0 if rejected else 1
    if stats.get("charges") != expected_charges:
        problems.append(f"expected {expected_charges} charge(s) executed upstream, saw {stats.get('charges')}")
    if not any(a.get("status") == "ok" and a.get("status_code") == 200 and not _is_charge(a)
               for a in outcome.tool_artifacts):
        problems.append(f"the customer lookup did not succeed (tool outcomes: {statuses})")
    if not any(a.get("status") == "denied" and a.get("policy") == "block-refunds" for a in outcome.tool_artifacts):
        problems.append(f"the refund was not reported as denied by 'block-refunds' (tool outcomes: {statuses})")
    if rejected:
        charged = any(a.get("status") == "rejected" for a in outcome.tool_artifacts)
    else:
        charged = any(a.get("status") == "ok" and _is_charge(a) for a in outcome.tool_artifacts)
    charge_status = "rejected" if rejected else "ok"
    if not charged:
        problems.append(f"the charge did not end {charge_status} after the approval (tool outcomes: {statuses})")
    tool_requests = [r for r in session.requests if r.tool_name == TOOL_NAME]
    if len(tool_requests) < 3:
        problems.append(f"the trace has {len(tool_requests)} tool requests, expected at least 3")
    if any(not r.parent_span_id for r in session.requests):
        problems.append("some requests in the trace have no parent span")
    return problems


def _is_charge(artifact: dict[str, Any]) -> bool:
    """The tool artifact of the demo's large charge (the upstream's answer names its amount)."""
    body = artifact.get("body")
    return isinstance(body, dict) and body.get("amount") == LARGE_CHARGE["body"]["amount"]  # type: ignore[index]


def _use_real_model(env_kwargs: dict[str, Any], admin: Any) -> None:
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        return
    credential = admin.credentials.create("openai-demo", provider="openai", secret=key)
    created = admin.tokens.create("demo-llm-openai", "https://api.openai.com", credential_id=credential.id)
    env_kwargs.update(llm_token=created.token_id, scripted=False)


def run_demo(framework: str = "langchain", *, auto_approve: bool = False, approval_delay: float = 1.5) -> int:
    """Run the demo; returns the process exit code."""
    prepare_crewai_environment()
    from rich.console import Console

    from ailink._session_tree import render_session

    console = Console()
    try:
        from ailink.emulator import run_in_thread
    except ImportError as exc:
        missing = (exc.name or "more packages").partition(".")[0]
        console.print(f"ailink demo runs the local gateway emulator, which needs {missing}: "
                      "pip install 'ailink-sdk[emulator]'", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    try:
        scenario = load_scenario(framework)
    except ImportError as exc:
        console.print(install_hint(framework, exc), style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    interactive = is_interactive(auto_approve)
    console.rule(f"[bold]AIlink demo · {framework}")
    emulator = run_in_thread(seed="demo", admin_key=f"demo-admin-{secrets.token_hex(16)}")
    try:
        DEMO_KEY_FILE.parent.mkdir(exist_ok=True)
        DEMO_KEY_FILE.write_text(emulator.admin_key)
        DEMO_KEY_FILE.chmod(0o600)
        from ailink._client import AdminClient

        admin = AdminClient(admin_key=emulator.admin_key, gateway_url=emulator.url)
        seed = emulator.seed
        assert seed is not None, "the emulator was started with seed='demo'"
        env_kwargs: dict[str, Any] = {
            "gateway_url": emulator.url,
            "admin_key": emulator.admin_key,
            "payments_token": seed.payments_token,
            "llm_token": seed.llm_token,
            "session_id": f"demo-{framework}-{secrets.token_hex(4)}",
        }
        _use_real_model(env_kwargs, admin)
        env = DemoEnv(**env_kwargs)
        console.print(
            f"Emulator at {emulator.url} · session [bold]{env.session_id}[/bold] · "
            f"model {'scripted (offline)' if env.scripted else env.model}\n"
            "The agent will look up a customer (allowed), charge $2,500.00 (needs approval) "
            "and refund a charge (blocked by policy)."
        )
        reviewer = ApprovalReviewer(env, console, interactive=interactive, delay=approval_delay)
        reviewer.start()
        try:
            with console.status("Agent running…") if not interactive else contextlib.nullcontext():
                outcome = scenario(env)
        except ImportError as exc:  # the scenario imports its framework when it starts
            console.print(install_hint(framework, exc), style="red", markup=False, highlight=False, soft_wrap=True)
            return 2
        except Exception as exc:
            console.print(f"[red]The agent run failed: {type(exc).__name__}: {exc}[/red]")
            return 1
        finally:
            reviewer.stop()
        if reviewer.error is not None:
            console.print(f"[red]Approval reviewer failed: {reviewer.error}[/red]")
            return 1
        import httpx

        stats = httpx.get(emulator.url + "/api/v1/emulator/payments/stats",
                          headers={"X-Admin-Key": emulator.admin_key}, timeout=10).json()
        session = admin.sessions.get(env.session_id)
        console.rule("Trace")
        console.print(render_session(session))
        console.print(_summary_table(outcome, session, stats, reviewer))
        rejected = any(d.decision == "rejected" for d in reviewer.decisions.values())
        problems = check_outcome(outcome, session, stats, rejected=rejected)
        if problems:
            for problem in problems:
                console.print(f"[red]✗ {problem}[/red]")
            return 1
        charge = (
            "the charge was rejected and never executed"
            if rejected
            else "one charge executed exactly once after approval"
        )
        console.print(f"[green]✓ {charge}; the refund was denied; trace complete.[/green]")
        return 0
    finally:
        emulator.stop()
        with contextlib.suppress(OSError):
            DEMO_KEY_FILE.unlink()
