"""Approval-wait benchmarks against the local emulator (a plain script, not a test).

(a) Wait efficiency: a decision made T = 5 s after a 202 request is noticed by the waiter within
    0.5 s, using at most ceil(T / 50) + 2 HTTP requests (long poll).
(b) Load: 500 concurrent async requests, each waiting on its own approval, all decided by a
    background approver thread through the management API. Reports wall time, peak RSS of this
    (client) process, and requests per approval.

The emulator runs in a separate process so the RSS measured here is the client's. The waiter is a
plain coroutine (``raw_waiter``): swap ``WAITER`` for a function built on the real client's
``wait_for_approval`` to benchmark that instead.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

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
    requests: int  # HTTP requests the waiter made (status polls + the result fetch)
    result_status: int | None


# A waiter: (client, token, approval_id) -> outcome. Replace with the real client's wait_for_approval later.
Waiter = Callable[[httpx.AsyncClient, str, str], Awaitable[WaitOutcome]]


async def raw_waiter(client: httpx.AsyncClient, token: str, approval_id: str) -> WaitOutcome:
    """Long-poll ``GET /v1/approvals/{id}?wait=50`` until it leaves pending, then fetch the result."""
    headers = {"Authorization": f"Bearer {token}"}
    requests = 0
    while True:
        resp = await client.get(f"/v1/approvals/{approval_id}", params={"wait": 50}, headers=headers)
        requests += 1
        resp.raise_for_status()
        status = resp.json()["status"]
        if status != "pending":
            break
    result_status = None
    if status == "approved":
        result = await client.get(f"/v1/approvals/{approval_id}/result", headers=headers)
        requests += 1
        result_status = result.status_code
    return WaitOutcome(status, requests, result_status)


WAITER: Waiter = raw_waiter


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


async def request_approval(client: httpx.AsyncClient, token: str, amount: int) -> str:
    resp = await client.post("/v1/charges", json={"amount": amount, "currency": "usd"},
                             headers={"Authorization": f"Bearer {token}", "Prefer": "respond-async",
                                      "Idempotency-Key": secrets.token_hex(16)})
    if resp.status_code != 202:
        raise RuntimeError(f"expected 202, got {resp.status_code}: {resp.text}")
    return str(resp.json()["approval_id"])


def bench_wait_efficiency(url: str, token: str, delay: float) -> bool:
    async def run() -> tuple[WaitOutcome, float]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            approval_id = await request_approval(client, token, 5000)
            decided_at: list[float] = []

            admin = httpx.Client(base_url=url, headers={"X-Admin-Key": ADMIN_KEY})  # built before the clock starts

            def decide() -> None:
                with admin:
                    time.sleep(delay)
                    decided_at.append(time.monotonic())
                    admin.post(f"/api/v1/approvals/{approval_id}/decision", json={"decision": "approved"})

            threading.Thread(target=decide, daemon=True).start()
            outcome = await WAITER(client, token, approval_id)
            noticed = time.monotonic()
            return outcome, noticed - decided_at[0]

    outcome, lag = asyncio.run(run())
    budget = math.ceil(delay / 50) + 2
    ok = outcome.status == "approved" and outcome.result_status == 200 and lag <= 0.5 and outcome.requests <= budget
    print(f"(a) wait efficiency, decision at T={delay:.1f}s: noticed {lag * 1000:.0f} ms after the decision "
          f"(target <= 500 ms), {outcome.requests} requests incl. result (budget {budget}) -> "
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

    async def one(client: httpx.AsyncClient, i: int) -> WaitOutcome:
        approval_id = await request_approval(client, token, 2000 + i)
        return await WAITER(client, token, approval_id)

    async def run() -> list[WaitOutcome]:
        # httpcore's pool does O(open connections) work per request: with hundreds of concurrent long
        # polls on one client that dominates the client's CPU, so the calls are spread over `clients`.
        per_client = math.ceil(concurrency / clients) * 2
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        pool = [httpx.AsyncClient(base_url=url, timeout=120, limits=limits) for _ in range(clients)]
        try:
            return await asyncio.gather(*(one(pool[i % clients], i) for i in range(concurrency)))
        finally:
            for client in pool:
                await client.aclose()

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
    per_approval = sum(o.requests + 1 for o in outcomes) / len(outcomes)  # +1: the request that created it
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
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, waiter: {WAITER.__name__}")
    with emulator_process() as url:
        token = setup_token(url)
        ok_a = bench_wait_efficiency(url, token, args.delay)
        ok_b = bench_load(url, token, args.concurrency, args.clients)
    return 0 if ok_a and ok_b else 1


if __name__ == "__main__":
    raise SystemExit(main())
