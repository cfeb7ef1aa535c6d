"""Ten thousand agents waiting (issue 17): approval waits that share connections, and a test fixture
that costs milliseconds. A plain script, not a test.

Each scenario runs in a child process of its own (so the RSS and CPU reported are that client's),
against an emulator in another process; decisions come from a thread of the child through the
management API, spread over ``--spread`` seconds (90 % approved, 10 % rejected, random order).

* ``async``: ``--waits`` concurrent ``AsyncClient.post(..., wait_for_approval=True)`` on one client.
* ``threads``: ``--threads`` threads, each a sync ``GatewayTool.run`` that waits, on one ``AIlinkClient``.
* ``latency``: the median ``client.post`` latency of a client with ``--latency-waits`` pending waits
  against an idle client of the same process, measured side by side (ABBA) while the waits are pending.
* ``fixture``: the median per-test cost of a test using ``ailink_gateway`` (create a token, one
  call), run by pytest in a child process: this branch (the session's emulator host), this branch
  with ``--ailink-fresh-gateway`` (a server thread per test), and ``--base-ref``'s code.

Side by side in the same run, ``async`` also runs with ``--base-ref``'s code (its client and its
emulator) at ``--base-waits`` waits: the per-wait long polls the issue measured.

Targets: every call correct and executed once; p99 delay from a decision to the caller noticing
<= 0.5 s; at most 4 connections for the waits; requests <= 2 per call + 1 per 50 s of waiting + 5;
client RSS <= 300 MB; latency ratio <= 1.2; fixture <= 30 ms per test.

Run: ``.venv/bin/python bench/bench_scale.py`` (defaults: 10,000 async waits, 1,000 threads, 5,000
pending for latency, 60 s spread; ``--quick`` for a smaller run). Exits 0 when the targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "ailink_admin_bench" + secrets.token_hex(8)
POLICY = {
    "name": "charges-over-1000",
    "rules": [{"when": {"all": [{"field": "request.path", "op": "eq", "value": "/v1/charges"},
                                {"field": "request.body.amount", "op": "gt", "value": 1000}]},
               "then": {"action": "require_approval", "timeout": "30m"}}],
}
WATCH_PATH = "/v1/approvals/events"
LANE = "ailink_lane"  # the request extension naming a request's connection pool (this branch)


# ---------------------------------------------------------------------------------------- plumbing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def emulator_process(src: str | None = None) -> Iterator[str]:
    """The emulator (``src``'s code when given) in a process of its own; yields its URL."""
    port = _free_port()
    code = ("import uvicorn; from ailink.emulator import create_app; "
            f"uvicorn.run(create_app(':memory:', {ADMIN_KEY!r}), host='127.0.0.1', port={port}, "
            "log_level='warning', access_log=False, backlog=8192, timeout_keep_alive=120)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(src))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("emulator did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-Admin-Key": ADMIN_KEY}, timeout=120)


def setup_token(url: str) -> str:
    with _admin(url) as admin:
        policy_id = admin.post("/api/v1/policies", json=POLICY).json()["id"]
        created = admin.post("/api/v1/tokens", json={"name": "bench", "upstream_url": "http://payments.mock",
                                                     "policy_ids": [policy_id]})
        return str(created.json()["token_id"])


def run_child(scenario: str, url: str, token: str, args: argparse.Namespace, src: str | None = None) -> dict[str, Any]:
    """Run one scenario in a child process (``src``'s code when given); its JSON report."""
    command = [sys.executable, __file__, "--child", scenario, "--url", url, "--token", token,
               "--admin-key", ADMIN_KEY, "--spread", str(args.spread), "--seed", str(args.seed)]
    count = {"async": args.waits if src is None else args.base_waits, "threads": args.threads,
             "latency": args.latency_waits}[scenario]
    command += ["--count", str(count)]
    done = subprocess.run(command, env=_env(src), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"scenario {scenario} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


class Traffic:
    """Requests by kind that reached the gateway, the connections each lane used, and the attempts
    that failed by exception type (``PoolTimeout``: queued past its pool timeout, never sent; the
    retry rules queue it again), from httpx event hooks and a wrapper around the client's transport."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()  # answered by the gateway
        self.failures: Counter[str] = Counter()  # attempts that raised, by exception type
        self.connections: dict[str, set[Any]] = {}
        self._lock = threading.Lock()

    def on_response(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        local = stream.get_extra_info("client_addr") if stream is not None else None
        lane = response.request.extensions.get(LANE) or "calls"
        path = response.request.url.path
        kind = ("watch" if path == WATCH_PATH else "result" if path.endswith("/result")
                else "status" if path.startswith("/v1/approvals/") else "call")
        if lane == "calls" and path.startswith("/v1/approvals/"):
            lane = "calls (approval requests)"
        with self._lock:
            self.requests[kind] += 1
            self.connections.setdefault(lane, set()).add(local)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures[type(exc).__name__] += 1

    def sent(self) -> int:
        """Requests that reached the gateway: the answered ones, plus any that failed after leaving."""
        return sum(self.requests.values()) + sum(n for name, n in self.failures.items()
                                                 if name not in ("PoolTimeout", "CancelledError"))

    def install(self, http: Any, asynchronous: bool) -> None:
        transport = http._transport
        if asynchronous:
            async def response(r: httpx.Response) -> None:
                self.on_response(r)

            handle_async = transport.handle_async_request

            async def counted_async(request: httpx.Request) -> httpx.Response:
                try:
                    return await handle_async(request)
                except BaseException as exc:
                    self.failed(exc)
                    raise

            transport.handle_async_request = counted_async
            http.event_hooks["response"].append(response)
        else:
            handle = transport.handle_request

            def counted(request: httpx.Request) -> httpx.Response:
                try:
                    return handle(request)
                except BaseException as exc:
                    self.failed(exc)
                    raise

            transport.handle_request = counted
            http.event_hooks["response"].append(self.on_response)


class Decider:
    """Decides the given approvals spread over ``spread`` seconds; records when each was sent."""

    def __init__(self, url: str, ids: list[str], spread: float, seed: int) -> None:
        rng = random.Random(seed)
        self.plan = list(ids)
        rng.shuffle(self.plan)
        self.decision = {i: ("rejected" if rng.random() < 0.1 else "approved") for i in self.plan}
        self.sent_at: dict[str, float] = {}
        self.updated = 0
        self.errors: list[str] = []
        self.bulk = True
        self._url = url
        self._spread = spread
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        step = 0.25
        batches = max(1, int(self._spread / step))
        per = math.ceil(len(self.plan) / batches)
        start = time.monotonic()
        with _admin(self._url) as admin:
            for b in range(batches):
                chunk = self.plan[b * per:(b + 1) * per]
                if not chunk:
                    break
                delay = start + b * step - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    self._decide(admin, chunk)
                except Exception as exc:  # reported, never hidden
                    self.errors.append(repr(exc)[:300])

    def _decide(self, admin: httpx.Client, chunk: list[str]) -> None:
        """One bulk call [ext]; where the gateway has none (the base ref's emulator), one call per approval."""
        if self.bulk:
            sent = time.monotonic()
            for i in chunk:
                self.sent_at[i] = sent
            answer = admin.post("/api/v1/approvals/decisions",
                                json={"decisions": [{"id": i, "decision": self.decision[i]} for i in chunk]})
            if answer.status_code != 404:
                answer.raise_for_status()
                self.updated += int(answer.json()["updated"])
                return
            self.bulk = False
        for i in chunk:
            self.sent_at[i] = time.monotonic()
            answer = admin.post(f"/api/v1/approvals/{i}/decision", json={"decision": self.decision[i]})
            answer.raise_for_status()
            self.updated += int(answer.json()["updated"])

    def join(self) -> None:
        self._thread.join()


def _rusage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _stats(url: str) -> dict[str, Any]:
    with _admin(url) as admin:
        stats: dict[str, Any] = admin.get("/api/v1/emulator/payments/stats").json()
    return stats


def _report(outcomes: dict[int, tuple[str, Any]], expected: dict[int, str], approval_of: dict[int, str],
            decider: Decider, noticed: dict[int, float], traffic: Traffic, stats_before: dict[str, Any],
            stats_after: dict[str, Any], wall: float, cpu: float, rss: float, waited: float) -> dict[str, Any]:
    wrong = [i for i, (kind, detail) in outcomes.items()
             if kind != expected[i] or (kind == "approved" and detail != 1001 + i)]
    delays = sorted(noticed[i] - decider.sent_at[approval_of[i]]
                    for i in outcomes if approval_of.get(i) in decider.sent_at)
    approved = sum(1 for i in outcomes if expected[i] == "approved")
    by_key = Counter(stats_after["by_idempotency_key"]) - Counter(stats_before["by_idempotency_key"])
    charges = stats_after["charges"] - stats_before["charges"]

    def pct(p: float) -> float:
        return delays[min(len(delays) - 1, math.ceil(p * len(delays)) - 1)] if delays else float("nan")

    return {
        "calls": len(outcomes), "wrong": len(wrong), "wrong_examples": [outcomes[i] for i in wrong[:3]],
        "approved": approved, "charges": charges, "executed_more_than_once": sum(1 for v in by_key.values() if v > 1),
        "decider_errors": decider.errors[:3], "decided": decider.updated,
        "p50_ms": pct(0.5) * 1000, "p99_ms": pct(0.99) * 1000,
        "max_ms": (delays[-1] if delays else float("nan")) * 1000,
        "requests": dict(traffic.requests), "requests_total": traffic.sent(), "failed_attempts": dict(traffic.failures),
        "connections": {lane: len(c) for lane, c in traffic.connections.items()},
        "wall_s": wall, "waited_s": waited, "cpu_s": cpu, "cpu_ms_per_wait": cpu * 1000 / max(1, len(outcomes)),
        "rss_mb": rss,
    }


# ---------------------------------------------------------------------------------------- scenarios (children)


def child_async(url: str, token: str, count: int, spread: float, seed: int) -> dict[str, Any]:
    import ailink

    async def main() -> dict[str, Any]:
        client = ailink.AsyncClient(token, url, approval_timeout=spread + 1200)
        traffic = Traffic()
        traffic.install(client._http, asynchronous=True)
        approval_of: dict[int, str] = {}
        noticed: dict[int, float] = {}
        outcomes: dict[int, tuple[str, Any]] = {}

        async def one(i: int) -> None:
            def parked(pending: Any) -> None:
                approval_of[i] = pending.approval_id

            try:
                answer = await client.post("/v1/charges", json={"amount": 1001 + i, "currency": "usd"},
                                           wait_for_approval=True, on_pending=parked)
                outcomes[i] = ("approved", answer.json().get("amount"))
            except ailink.ApprovalRejectedError:
                outcomes[i] = ("rejected", None)
            except Exception as exc:
                outcomes[i] = ("error", f"{type(exc).__name__}: {str(exc)[:200]}")
            noticed[i] = time.monotonic()

        stats_before = await asyncio.to_thread(_stats, url)
        cpu0, _ = _rusage()
        started = time.monotonic()
        tasks = [asyncio.ensure_future(one(i)) for i in range(count)]
        while len(approval_of) + len(outcomes) < count:
            await asyncio.sleep(0.05)
        parked_at = time.monotonic()
        decider = Decider(url, list(approval_of.values()), spread, seed)
        expected = {i: decider.decision[a] for i, a in approval_of.items()}
        expected.update({i: "error" for i in outcomes if i not in approval_of})
        decider.start()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - started
        cpu1, rss = _rusage()
        await asyncio.to_thread(decider.join)
        await client.aclose()
        stats_after = await asyncio.to_thread(_stats, url)
        report = _report(outcomes, expected, approval_of, decider, noticed, traffic, stats_before, stats_after,
                         wall, cpu1 - cpu0, rss, time.monotonic() - parked_at)
        report["park_s"] = parked_at - started
        return report

    return asyncio.run(main())


def child_threads(url: str, token: str, count: int, spread: float, seed: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import ailink
    from ailink.adapters import CallContext, GatewayTool, ToolAction

    client = ailink.AIlinkClient(token, url, approval_timeout=spread + 1200)
    traffic = Traffic()
    traffic.install(client._http, asynchronous=False)
    tool = GatewayTool(ToolAction(name="payments_api", description="payments", methods=("POST",)), client=client)
    approval_of: dict[int, str] = {}
    noticed: dict[int, float] = {}
    outcomes: dict[int, tuple[str, Any]] = {}

    def one(i: int) -> None:
        def parked(pending: Any) -> None:
            approval_of[i] = pending.approval_id

        result = tool.run({"method": "POST", "path": "/v1/charges", "body": {"amount": 1001 + i, "currency": "usd"}},
                          CallContext(session_id="bench-threads", call_id=f"call-{i}"), on_pending=parked)
        noticed[i] = time.monotonic()
        if result.ok:
            outcomes[i] = ("approved", result.body.get("amount") if isinstance(result.body, dict) else None)
        elif result.outcome.value == "rejected":
            outcomes[i] = ("rejected", None)
        else:
            outcomes[i] = ("error", f"{result.outcome.value}: {str(result.content)[:200]}")

    stats_before = _stats(url)
    cpu0, _ = _rusage()
    started = time.monotonic()
    pool = ThreadPoolExecutor(count)
    futures = [pool.submit(one, i) for i in range(count)]
    while len(approval_of) + len(outcomes) < count:
        time.sleep(0.05)
    parked_at = time.monotonic()
    decider = Decider(url, list(approval_of.values()), spread, seed)
    expected = {i: decider.decision[a] for i, a in approval_of.items()}
    decider.start()
    for future in futures:
        future.result()
    wall = time.monotonic() - started
    cpu1, rss = _rusage()
    pool.shutdown()
    decider.join()
    client.close()
    report = _report(outcomes, expected, approval_of, decider, noticed, traffic, stats_before, _stats(url),
                     wall, cpu1 - cpu0, rss, time.monotonic() - parked_at)
    report["park_s"] = parked_at - started
    report["threads"] = count
    return report


def child_latency(url: str, token: str, count: int, spread: float, seed: int) -> dict[str, Any]:
    import ailink

    async def main() -> dict[str, Any]:
        busy = ailink.AsyncClient(token, url, approval_timeout=3600)
        idle = ailink.AsyncClient(token, url)
        parked: list[str] = []

        async def wait(i: int) -> None:
            try:
                await busy.post("/v1/charges", json={"amount": 5001 + i}, wait_for_approval=True,
                                on_pending=lambda p: parked.append(p.approval_id))
            except ailink.AIlinkError:
                pass

        async def timed(client: Any, i: int) -> float:
            start = time.perf_counter()
            answer = await client.post("/v1/charges", json={"amount": 100 + i % 800, "currency": "usd"})
            assert answer.status_code == 200
            return time.perf_counter() - start

        async def abba(rounds: int) -> tuple[list[float], list[float]]:
            a: list[float] = []
            b: list[float] = []
            for r in range(rounds):
                for client, into in ((busy, a), (idle, b), (idle, b), (busy, a)):
                    into.append(await timed(client, r))
            return a, b

        await abba(20)  # warm both
        before_busy, before_idle = await abba(100)
        waits = [asyncio.ensure_future(wait(i)) for i in range(count)]
        while len(parked) < count:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        during_busy, during_idle = await abba(100)
        with _admin(url) as admin:
            admin.post("/api/v1/approvals/decisions",
                       json={"decisions": [{"id": i, "decision": "rejected"} for i in parked]})
        await asyncio.gather(*waits)
        await busy.aclose()
        await idle.aclose()
        med = statistics.median
        return {
            "pending_waits": count,
            "before_ms": {"busy_client": med(before_busy) * 1000, "idle_client": med(before_idle) * 1000},
            "during_ms": {"busy_client": med(during_busy) * 1000, "idle_client": med(during_idle) * 1000},
            "ratio_during": med(during_busy) / med(during_idle),
            "ratio_busy_vs_before": med(during_busy) / med(before_busy),
        }

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------- fixture


FIXTURE_TEST = '''
from ailink import AIlinkClient


def test_{i}(ailink_gateway):
    token = ailink_gateway.create_token()
    with AIlinkClient(token, ailink_gateway.url) as client:
        assert client.get("/v1/customers").status_code == 200
'''
FIXTURE_CONFTEST = '''
import json
import os
import time

import pytest

pytest_plugins = ["ailink.testing"]
_costs = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    yield
    _costs.append(time.perf_counter() - start)


def pytest_sessionfinish(session):
    with open(os.environ["AILINK_BENCH_FIXTURE_TIMES"], "w") as fh:
        json.dump(_costs, fh)
'''


def bench_fixture(tests: int, base_src: str | None) -> dict[str, Any]:
    """Median per-test cost (setup + call + teardown) of a test using ``ailink_gateway``."""
    with tempfile.TemporaryDirectory(prefix="ailink-fixture-bench-") as tmp:
        folder = Path(tmp)
        (folder / "conftest.py").write_text(FIXTURE_CONFTEST)
        (folder / "test_fixture_cost.py").write_text("\n".join(FIXTURE_TEST.format(i=i) for i in range(tests)))
        variants: list[tuple[str, str | None, list[str]]] = [("hosted (this branch)", None, []),
                                                              ("fresh thread (this branch)", None,
                                                               ["--ailink-fresh-gateway"])]
        if base_src:
            variants.append(("base ref", base_src, []))
        results: dict[str, Any] = {}
        for _round in range(2):  # interleaved twice: machine noise hits every variant alike
            for name, src, extra in variants:
                out = folder / "times.json"
                env = _env(src)
                env["AILINK_BENCH_FIXTURE_TIMES"] = str(out)
                done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                                       "no:randomly", str(folder), *extra], env=env, capture_output=True, text=True,
                                      cwd=tmp, timeout=1800)
                if done.returncode != 0:
                    raise RuntimeError(f"fixture bench ({name}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
                costs = json.loads(out.read_text())[1:]  # the first test also starts the session
                results.setdefault(name, []).extend(costs)
        return {name: statistics.median(costs) * 1000 for name, costs in results.items()}


# ---------------------------------------------------------------------------------------- main


def _base_src(ref: str | None) -> tuple[str | None, tempfile.TemporaryDirectory[str] | None]:
    if not ref:
        return None, None
    holder = tempfile.TemporaryDirectory(prefix="ailink-base-")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", holder.name], input=archive.stdout, check=True)
    return str(Path(holder.name) / "src"), holder


def _default_base() -> str | None:
    done = subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True)
    return done.stdout.strip() or None


def _print_waits(title: str, r: dict[str, Any], budget: int) -> bool:
    wait_conns = r["connections"].get("wait", r["connections"].get("calls (approval requests)", 0))
    ok = (r["wrong"] == 0 and r["executed_more_than_once"] == 0 and r["charges"] == r["approved"]
          and r["p99_ms"] <= 500 and wait_conns <= 4 and r["requests_total"] <= budget and r["rss_mb"] <= 300)
    print(f"{title}: {r['calls']} calls, wrong {r['wrong']} {r['wrong_examples']}, approved {r['approved']}, "
          f"upstream charges {r['charges']} (more than once: {r['executed_more_than_once']}); decision -> noticed "
          f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms; requests {r['requests']} "
          f"-> {r['requests_total']} sent (budget {budget}); failed attempts {r.get('failed_attempts', {})}; "
          f"connections used by lane (over the run) {r['connections']}; "
          f"park {r['park_s']:.1f} s, wall {r['wall_s']:.1f} s; client RSS {r['rss_mb']:.0f} MB, "
          f"CPU {r['cpu_s']:.1f} s ({r['cpu_ms_per_wait']:.2f} ms per wait)"
          + (f"; decider errors {r['decider_errors']}" if r["decider_errors"] else "")
          + f" -> {'OK' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--waits", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1_000)
    parser.add_argument("--latency-waits", type=int, default=5_000)
    parser.add_argument("--base-waits", type=int, default=500)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds the decisions are spread over")
    parser.add_argument("--fixture-tests", type=int, default=60)
    parser.add_argument("--base-ref", default=None,
                        help="git ref of the code to compare with (default: merge-base with main)")
    parser.add_argument("--no-base", action="store_true", help="skip the base ref's runs")
    parser.add_argument("--only", default="async,threads,latency,fixture,base")
    parser.add_argument("--quick", action="store_true", help="1,000 async waits, 200 threads, 1,000 pending, 20 s")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--token", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--admin-key", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        global ADMIN_KEY
        ADMIN_KEY = args.admin_key
        run = {"async": child_async, "threads": child_threads, "latency": child_latency}[args.child]
        print(json.dumps(run(args.url, args.token, args.count, args.spread, args.seed)))
        return 0
    if args.quick:
        args.waits, args.threads, args.latency_waits, args.spread = 1_000, 200, 1_000, 20.0
        args.base_waits, args.fixture_tests = min(args.base_waits, 300), 30
    only = set(args.only.split(","))
    base_ref = None if args.no_base else (args.base_ref or _default_base())
    base_src, holder = _base_src(base_ref) if {"base", "fixture"} & only else (None, None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"decisions spread over {args.spread:g} s; base ref {base_ref or '(none)'}")
    ok = True
    budget_extra = lambda calls: 2 * calls + math.ceil((args.spread + 60) / 50) + 5  # noqa: E731
    try:
        if "async" in only:
            with emulator_process() as url:
                r = run_child("async", url, setup_token(url), args)
            ok &= _print_waits(f"async, one AsyncClient, this branch ({args.waits:,} waits)", r,
                               budget_extra(r["calls"]))
        if "base" in only and base_src:
            with emulator_process(base_src) as url:
                r = run_child("async", url, setup_token(url), args, src=base_src)
            _print_waits(f"async, one AsyncClient, base ref ({args.base_waits:,} waits; for comparison)", r,
                         budget_extra(r["calls"]))
            if "async" not in only or args.base_waits != args.waits:
                with emulator_process() as url:
                    saved, args.waits = args.waits, args.base_waits
                    r = run_child("async", url, setup_token(url), args)
                    args.waits = saved
                _print_waits(f"async, one AsyncClient, this branch ({args.base_waits:,} waits; for comparison)", r,
                             budget_extra(r["calls"]))
        if "threads" in only:
            with emulator_process() as url:
                r = run_child("threads", url, setup_token(url), args)
            ok &= _print_waits(f"threads, one AIlinkClient, this branch ({args.threads:,} threads)", r,
                               budget_extra(r["calls"]))
        if "latency" in only:
            with emulator_process() as url:
                r = run_child("latency", url, setup_token(url), args)
            good = r["ratio_during"] <= 1.2
            ok &= good
            print(f"latency of client.post with {r['pending_waits']:,} waits pending on the same client: "
                  f"{r['during_ms']['busy_client']:.2f} ms vs an idle client {r['during_ms']['idle_client']:.2f} ms "
                  f"(ratio {r['ratio_during']:.3f}, target <= 1.2); before the waits "
                  f"{r['before_ms']['busy_client']:.2f} / {r['before_ms']['idle_client']:.2f} ms "
                  f"-> {'OK' if good else 'FAIL'}")
        if "fixture" in only:
            costs = bench_fixture(args.fixture_tests, base_src)
            hosted = costs["hosted (this branch)"]
            good = hosted <= 30
            ok &= good
            print("fixture, median per-test cost (create a token, one call): "
                  + ", ".join(f"{name} {ms:.1f} ms" for name, ms in costs.items())
                  + f" (target <= 30 ms) -> {'OK' if good else 'FAIL'}")
    finally:
        if holder is not None:
            holder.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
