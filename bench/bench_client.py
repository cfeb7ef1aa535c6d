"""Client overhead: median latency of ``AIlinkClient.post`` vs a bare ``httpx.Client.post``
(and the async twins) against a loopback server, measured side by side in interleaved rounds.

Targets: ratio <= 1.05 for sync and for async. Prints the numbers and PASS/FAIL; exits 0.
A third client, bare httpx sending the same protocol headers as ailink (the idempotency key and
the agent name in both gateway generations' spellings, ``X-Request-Id``, ``Prefer``,
``User-Agent``), separates this client's own cost from
the cost of those headers on the wire (h11 validation, bytes, the server's parsing). ailink's
clients keep no cookie jar and parse each request URL once; bare httpx does both on every call
(see bench/README.md).
Usage: python bench/bench_client.py [--rounds N] [--per-round N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loopback import loopback_server

import ailink

TARGET = 1.05
TOKEN = "ailink_v1_benchmarkTOKEN0000000000000000"
PAYLOAD = {"amount": 1200, "currency": "eur", "customer": "cus_1"}
PATH = "/v1/charges"


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def _report(label: str, samples: dict[str, list[float]]) -> bool:
    bare_m, ours_m, same_m = (_median_us(samples[k]) for k in ("bare", "ours", "same_headers"))
    ratio = ours_m / bare_m
    ok = ratio <= TARGET
    print(f"{label:<6} bare httpx median {bare_m:8.1f} us | ailink median {ours_m:8.1f} us | "
          f"overhead {ours_m - bare_m:6.1f} us | ratio {ratio:.3f} (target <= {TARGET}) "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"{'':<6} bare httpx + the same protocol headers {same_m:8.1f} us | ailink / that {ours_m / same_m:.3f} "
          f"(the client's own cost; the rest is the headers on the wire)")
    return ok


def _protocol_headers() -> dict[str, str]:
    key = f"idk_{uuid.uuid4().hex}"
    return {"X-AIlink-Idempotency-Key": key, "X-TrueFlow-Idempotency-Key": key, "Prefer": "respond-async",
            "X-Request-Id": f"req_{uuid.uuid4().hex}", "X-AIlink-Agent-Name": "bench-agent",
            "X-TrueFlow-Agent-Name": "bench-agent", "User-Agent": "ailink-python/0"}


def _order(i: int) -> tuple[str, ...]:
    names = ("bare", "ours", "same_headers")
    return names if i % 2 == 0 else names[::-1]  # ABC CBA: every client sees the same noise


def bench_sync(url: str, rounds: int, per_round: int) -> bool:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bare = httpx.Client(headers=headers)
    ours = ailink.AIlinkClient(TOKEN, url, agent_name="bench-agent")

    def bare_call() -> None:
        bare.post(url + PATH, json=PAYLOAD).raise_for_status()

    def ours_call() -> None:
        ours.post(PATH, json=PAYLOAD)

    def same_headers_call() -> None:
        bare.post(url + PATH, json=PAYLOAD, headers=_protocol_headers()).raise_for_status()

    samples: dict[str, list[float]] = {"bare": [], "ours": [], "same_headers": []}
    calls = {"bare": bare_call, "ours": ours_call, "same_headers": same_headers_call}
    for fn in calls.values():  # warm up connections and code paths
        for _ in range(50):
            fn()
    gc.disable()
    try:
        for _ in range(rounds):
            for i in range(per_round):
                # Interleaved request by request, so all clients see the same machine noise.
                for name in _order(i):
                    fn = calls[name]
                    start = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - start)
            gc.collect()
    finally:
        gc.enable()
        bare.close()
        ours.close()
    return _report("sync", samples)


async def _bench_async(url: str, rounds: int, per_round: int) -> bool:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bare = httpx.AsyncClient(headers=headers)
    ours = ailink.AsyncClient(TOKEN, url, agent_name="bench-agent")

    async def bare_call() -> None:
        (await bare.post(url + PATH, json=PAYLOAD)).raise_for_status()

    async def ours_call() -> None:
        await ours.post(PATH, json=PAYLOAD)

    async def same_headers_call() -> None:
        (await bare.post(url + PATH, json=PAYLOAD, headers=_protocol_headers())).raise_for_status()

    calls: dict[str, Callable[[], Awaitable[None]]] = {
        "bare": bare_call, "ours": ours_call, "same_headers": same_headers_call,
    }
    samples: dict[str, list[float]] = {"bare": [], "ours": [], "same_headers": []}
    for fn in calls.values():
        for _ in range(50):
            await fn()
    gc.disable()
    try:
        for _ in range(rounds):
            for i in range(per_round):
                for name in _order(i):
                    afn = calls[name]
                    start = time.perf_counter()
                    await afn()
                    samples[name].append(time.perf_counter() - start)
            gc.collect()
    finally:
        gc.enable()
        await bare.aclose()
        await ours.aclose()
    return _report("async", samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"bench_client: {args.rounds} rounds x {args.per_round} POSTs per client, interleaved request by request, "
          f"loopback server "
          f"in a separate process, python {sys.version.split()[0]}, httpx {httpx.__version__}")
    with loopback_server() as url:
        sync_ok = bench_sync(url, args.rounds, args.per_round)
        async_ok = asyncio.run(_bench_async(url, args.rounds, args.per_round))
    print(f"bench_client: {'PASS' if sync_ok and async_ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
