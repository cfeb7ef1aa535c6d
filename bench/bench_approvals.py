"""Approval-wait benchmarks against the local emulator (a plain script, not a test).

(a) Wait efficiency: a decision made T = 5 s after a 202 request is noticed by the waiter within
    0.5 s, using at most ceil(T / 50) + 2 HTTP requests (long poll).
(b) Load: 500 concurrent async requests, each waiting on its own approval, all decided by a
    background approver thread through the management API. Reports wall time, peak RSS of this
    (client) process, and requests per approval.

The emulator runs in a separate process so the RSS measured here is the client's. The waiter is a
real tool call (``GatewayTool.arun``), so both numbers measure what an agent's tool does.

Run: ``.venv/bin/python bench/bench_approvals.py [--concurrency 500] [--delay 5]``; exits 0 when the
targets are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

import ailink

ADMIN_KEY = "bench-admin-" + secrets.token_hex(8)
POLICY = {
    "name": "charges-over-1000",
    "rules": [{"when": {"all": [{"field": "request.path", "op": "eq", "value": "/v1/charges"},
                                {"field": "request.body.amount", "op": "gt", "value": 1000}]},
               "then": {"action": "require_approval", "timeout": "10m"}}],
}


@dataclass
class WaitOutcome:
    status: str
    requests: int  # HTTP requests the call made (the original request, status polls, the result fetch)
    result_status: int | None


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts the HTTP requests an ailink client really sends."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def payments_tool(url: str, token: str, transport: CountingTransport) -> ailink.GatewayTool:
    """The tool an agent would get: POST /v1/charges through the gateway, waiting for approvals."""
    action = ailink.ToolAction(name="payments_api", description="payments", methods=("POST",))
    client = ailink.AsyncClient(token, url, transport=transport, approval_timeout=600)
    return ailink.GatewayTool(action, async_client=client)


@contextmanager
def emulator_process() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code = ("import uvicorn; from ailink.emulator import create_app; "
            f"uvicorn.run(create_app(':memory:', {ADMIN_KEY!r}), host='127.0.0.1', port={port}, "
            "log_level='warning', access_log=False, backlog=4096, timeout_keep_alive=65)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
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
        proc.wait(10)


def setup_token(url: str) -> str:
    with httpx.Client(base_url=url, headers={"X-Admin-Key": ADMIN_KEY}) as admin:
        policy_id = admin.post("/api/v1/policies", json=POLICY).json()["id"]
        created = admin.post("/api/v1/tokens", json={"name": "bench", "upstream_url": "http://payments.mock",
                                                     "policy_ids": [policy_id]})
        return str(created.json()["token_id"])


def bench_wait_efficiency(url: str, token: str, delay: float) -> bool:
    """One tool call, approved ``delay`` s after it asked: noticed how fast, with how many requests."""

    async def run() -> tuple[WaitOutcome, float]:
        transport = CountingTransport()
        tool = payments_tool(url, token, transport)
        decided_at: list[float] = []
        admin = httpx.Client(base_url=url, headers={"X-Admin-Key": ADMIN_KEY})  # built before the clock starts

        def decide_later(pending: ailink.PendingApproval) -> None:
            def decide() -> None:
                with admin:
                    time.sleep(delay)
                    decided_at.append(time.monotonic())
                    admin.post(f"/api/v1/approvals/{pending.approval_id}/decision", json={"decision": "approved"})

            threading.Thread(target=decide, daemon=True).start()

        result = await tool.arun({"method": "POST", "path": "/v1/charges", "body": {"amount": 5000}},
                                 ailink.CallContext(call_id="efficiency"), on_pending=decide_later)
        noticed = time.monotonic()
        await tool.async_client.aclose()
        outcome = WaitOutcome("approved" if result.ok else result.outcome.value, transport.count, result.status_code)
        return outcome, noticed - decided_at[0]

    outcome, lag = asyncio.run(run())
    budget = math.ceil(delay / 50) + 2
    ok = outcome.status == "approved" and outcome.result_status == 200 and lag <= 0.5 and outcome.requests <= budget
    print(f"(a) wait efficiency, decision at T={delay:.1f}s: noticed {lag * 1000:.0f} ms after the decision "
          f"(target <= 500 ms), {outcome.requests} HTTP requests in all (budget ceil(T/50)+2 = {budget}) -> "
          f"{'OK' if ok else 'FAIL'}")
    return ok


def bench_load(url: str, token: str, concurrency: int, clients: int) -> bool:
    decided = 0
    stop = threading.Event()

    def approver() -> None:
        nonlocal decided
        with httpx.Client(base_url=url, headers={"X-Admin-Key": ADMIN_KEY}, timeout=30) as admin:
            while not stop.is_set() and decided < concurrency:
                pending = admin.get("/api/v1/approvals", params={"status": "pending", "limit": 1000}).json()
                for row in pending:
                    admin.post(f"/api/v1/approvals/{row['id']}/decision", json={"decision": "approved"})
                    decided += 1
                if not pending:
                    time.sleep(0.02)

    async def run() -> list[WaitOutcome]:
        # One tool per agent, `clients` agents sharing the calls: httpcore's pool does O(open
        # connections) work per request, so hundreds of long polls on one client cost client CPU.
        transports = [CountingTransport() for _ in range(clients)]
        tools = [payments_tool(url, token, t) for t in transports]

        async def one(i: int) -> ailink.ToolResult:
            args = {"method": "POST", "path": "/v1/charges", "body": {"amount": 2000 + i, "currency": "usd"}}
            return await tools[i % clients].arun(args, ailink.CallContext(session_id="load", call_id=f"call-{i}"))

        try:
            results = await asyncio.gather(*(one(i) for i in range(concurrency)))
        finally:
            for tool in tools:
                await tool.async_client.aclose()
        per_call = sum(t.count for t in transports) / concurrency
        return [WaitOutcome("approved" if r.ok else r.outcome.value, per_call, r.status_code) for r in results]

    with httpx.Client(base_url=url, headers={"X-Admin-Key": ADMIN_KEY}) as admin:
        charges_before = admin.get("/api/v1/emulator/payments/stats").json()["charges"]
    thread = threading.Thread(target=approver, daemon=True)
    started = time.monotonic()
    thread.start()
    outcomes = asyncio.run(run())
    wall = time.monotonic() - started
    stop.set()
    thread.join(10)
    with httpx.Client(base_url=url, headers={"X-Admin-Key": ADMIN_KEY}) as admin:
        stats = admin.get("/api/v1/emulator/payments/stats").json()
    all_ok = all(o.status == "approved" and o.result_status == 200 for o in outcomes)
    exactly_once = stats["charges"] - charges_before == concurrency and all(
        v == 1 for v in stats["by_idempotency_key"].values())
    per_approval = sum(o.requests for o in outcomes) / len(outcomes)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = all_ok and exactly_once
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(f"(b) {concurrency} concurrent approvals over {clients} AsyncClient(s): wall {wall:.2f} s, "
          f"peak RSS (client process) {peak_mb:.1f} MB, "
          f"{per_approval:.2f} HTTP requests per approval (incl. the original request and the result), "
          f"client CPU {cpu.ru_utime + cpu.ru_stime:.1f} s, upstream charges {stats['charges'] - charges_before} "
          f"-> {'OK' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=10, help="AsyncClients the concurrent calls are spread over")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, waiter: ailink.GatewayTool.arun")
    with emulator_process() as url:
        token = setup_token(url)
        ok_a = bench_wait_efficiency(url, token, args.delay)
        ok_b = bench_load(url, token, args.concurrency, args.clients)
    return 0 if ok_a and ok_b else 1


if __name__ == "__main__":
    raise SystemExit(main())
