"""Routing decision overhead in the emulator with a pool of 10 targets (issue 15).

1. **In the request path**: median latency of a proxied ``GET`` through the emulator for a token with
   one upstream vs a token whose ``upstreams`` pool has 10 targets (weighted turns, breakers), and vs a
   ``dynamic_route`` policy over a 10-target pool (``round_robin``; ``lowest_cost``, which reads the
   price table for every target). Same loopback server (a separate process) behind every target,
   interleaved request by request (rotating order) so machine noise hits all alike; GC off while timing.
2. **The decision alone**: the emulator's planning step (``Router``) for the same pools, called
   in-process, in microseconds per decision.

Targets: pool-of-10 request ratio <= 1.10 (vs one upstream); a pool decision <= 50 us.
Prints the numbers and PASS/FAIL; exits 0.
Usage: python bench/bench_routing.py [--rounds N] [--per-round N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loopback import loopback_server

from ailink.emulator import run_in_thread

REQUEST_RATIO_TARGET = 1.10
DECISION_TARGET_US = 50.0
POOL = 10
MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo", "o1", "o1-mini", "o3-mini",
          "claude-3-5-sonnet", "claude-3-haiku"]


def _setup(gateway_url: str, admin_key: str, upstream: str) -> dict[str, str]:
    """Tokens: one upstream; a 10-target pool; dynamic routes (round_robin, lowest_cost) over 10 targets."""
    targets = [f"{upstream}/t{i}" for i in range(POOL)]
    with httpx.Client(base_url=gateway_url, headers={"X-Admin-Key": admin_key}) as admin:
        def token(body: dict[str, Any]) -> str:
            resp = admin.post("/api/v1/tokens", json={"name": "bench", "upstream_url": upstream, **body})
            resp.raise_for_status()
            return str(resp.json()["token_id"])

        def routed(strategy: str) -> str:
            pool = [{"model": MODELS[i], "upstream_url": url} for i, url in enumerate(targets)]
            rule = {"when": {"always": True}, "then": {"action": "dynamic_route", "strategy": strategy, "pool": pool}}
            policy = admin.post("/api/v1/policies", json={"name": strategy, "rules": [rule]})
            policy.raise_for_status()
            return token({"policy_ids": [policy.json()["id"]]})

        return {
            "one upstream": token({}),
            "pool of 10": token({"upstreams": [{"url": url, "weight": 10 + i, "priority": 1 + i % 2}
                                               for i, url in enumerate(targets)]}),
            "route rr 10": routed("round_robin"),
            "route cost 10": routed("lowest_cost"),
        }


def bench_requests(gateway_url: str, tokens: dict[str, str], rounds: int, per_round: int) -> bool:
    names = list(tokens)
    samples: dict[str, list[float]] = {name: [] for name in names}
    with httpx.Client(base_url=gateway_url, timeout=30) as http:
        calls: dict[str, Callable[[], None]] = {}
        for name, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}

            def call(headers: dict[str, str] = headers) -> None:
                assert http.get("/v1/items", headers=headers).status_code == 200

            calls[name] = call
        for fn in calls.values():
            for _ in range(50):
                fn()
        gc.disable()
        try:
            for _ in range(rounds):
                for i in range(per_round):
                    order = names[i % len(names):] + names[:i % len(names)]
                    for name in order:
                        start = time.perf_counter()
                        calls[name]()
                        samples[name].append(time.perf_counter() - start)
                gc.collect()
        finally:
            gc.enable()
    base = statistics.median(samples["one upstream"]) * 1e6
    ok = True
    print(f"request  {'one upstream':<14} median {base:8.1f} us")
    for name in names[1:]:
        median = statistics.median(samples[name]) * 1e6
        ratio = median / base
        line = f"request  {name:<14} median {median:8.1f} us | overhead {median - base:+7.1f} us | ratio {ratio:.3f}"
        if name == "pool of 10":
            passed = ratio <= REQUEST_RATIO_TARGET
            ok = ok and passed
            line += f" (target <= {REQUEST_RATIO_TARGET}) {'PASS' if passed else 'FAIL'}"
        print(line)
    return ok


def bench_decisions(emulator: Any, tokens: dict[str, str], repeats: int) -> bool:
    """The planning step alone, in-process, on the emulator's own router and store."""
    from ailink.emulator._app import GatewayError
    from ailink.emulator._policy import MatchedAction

    router = emulator.routing
    store = emulator.store
    ok = True
    for name in ("pool of 10", "route rr 10", "route cost 10"):
        token = store.token_by_secret(tokens[name])
        call = SimpleNamespace(token=token)
        if name == "pool of 10":
            def decide(call: Any = call) -> None:
                router._pooled(call, GatewayError)
        else:
            policy = store.policies_by_ids(token["policy_ids"])[0]
            matched = MatchedAction(policy["id"], policy["name"], "enforce", 0, policy["rules"][0]["then"])

            def decide(call: Any = call, matched: MatchedAction = matched) -> None:
                router._dynamic(call, matched, GatewayError)
        for _ in range(200):
            decide()
        gc.disable()
        try:
            timings = []
            for _ in range(repeats):
                start = time.perf_counter()
                decide()
                timings.append(time.perf_counter() - start)
        finally:
            gc.enable()
        median = statistics.median(timings) * 1e6
        line = f"decision {name:<14} median {median:8.1f} us"
        if name == "pool of 10":
            passed = median <= DECISION_TARGET_US
            ok = ok and passed
            line += f" (target <= {DECISION_TARGET_US:.0f} us) {'PASS' if passed else 'FAIL'}"
        print(line)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=100)
    args = parser.parse_args(argv)
    with loopback_server() as upstream:
        gateway = run_in_thread()
        try:
            tokens = _setup(gateway.url, gateway.admin_key, upstream)
            ok = bench_requests(gateway.url, tokens, args.rounds, args.per_round)
            ok = bench_decisions(gateway.app.state.emulator, tokens, args.rounds * args.per_round) and ok
        finally:
            gateway.stop()
    print("bench_routing:", "PASS" if ok else "FAIL (see above)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
