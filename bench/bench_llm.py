"""LLM call overhead: median latency of ``AIlinkClient.chat`` vs the official ``openai`` SDK's
``chat.completions.create`` called directly (``max_retries=0``), against the same loopback server
answering a chat completion, measured side by side in interleaved rounds; then the async twins.

Both clients build the request, send it over a kept-alive connection and parse the answer into
pydantic models. ``client.chat`` also adds the gateway's protocol headers, reads the cost and request
id, and runs its retry/approval flow. Target: ratio <= 1.05 for sync and for async (ailink / openai).
Prints the numbers and PASS/FAIL; exits 0.
Usage: python bench/bench_llm.py [--rounds N] [--per-round N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loopback import loopback_server

import ailink

TARGET = 1.05
TOKEN = "ailink_v1_benchmarkTOKEN0000000000000000"
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi."}]
COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi.", "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
    "system_fingerprint": "fp_bench",
}).encode()


def _report(label: str, samples: dict[str, list[float]]) -> bool:
    sdk_m, ours_m = (statistics.median(samples[k]) * 1e6 for k in ("openai", "ailink"))
    ratio = ours_m / sdk_m
    ok = ratio <= TARGET
    print(f"{label:<6} openai SDK median {sdk_m:8.1f} us | ailink chat median {ours_m:8.1f} us | "
          f"difference {ours_m - sdk_m:+7.1f} us | ratio {ratio:.3f} (target <= {TARGET}) {'PASS' if ok else 'FAIL'}")
    return ok


def _order(i: int) -> tuple[str, ...]:
    names = ("openai", "ailink")
    return names if i % 2 == 0 else names[::-1]  # AB BA: both see the same noise


def bench_sync(url: str, rounds: int, per_round: int) -> bool:
    sdk = openai.OpenAI(api_key=TOKEN, base_url=url + "/v1", max_retries=0)
    ours = ailink.AIlinkClient(TOKEN, url, agent_name="bench-agent")

    def sdk_call() -> None:
        assert sdk.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content  # type: ignore[arg-type]

    def ours_call() -> None:
        assert ours.chat(MODEL, MESSAGES).content

    calls: dict[str, Callable[[], None]] = {"openai": sdk_call, "ailink": ours_call}
    samples: dict[str, list[float]] = {"openai": [], "ailink": []}
    for fn in calls.values():
        for _ in range(50):
            fn()
    gc.disable()
    try:
        for _ in range(rounds):
            for i in range(per_round):
                for name in _order(i):
                    fn = calls[name]
                    start = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - start)
            gc.collect()
    finally:
        gc.enable()
        sdk.close()
        ours.close()
    return _report("sync", samples)


async def _bench_async(url: str, rounds: int, per_round: int) -> bool:
    sdk = openai.AsyncOpenAI(api_key=TOKEN, base_url=url + "/v1", max_retries=0)
    ours = ailink.AsyncClient(TOKEN, url, agent_name="bench-agent")

    async def sdk_call() -> None:
        answer = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content

    async def ours_call() -> None:
        assert (await ours.chat(MODEL, MESSAGES)).content

    calls: dict[str, Callable[[], Awaitable[None]]] = {"openai": sdk_call, "ailink": ours_call}
    samples: dict[str, list[float]] = {"openai": [], "ailink": []}
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
        await sdk.close()
        await ours.aclose()
    return _report("async", samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"bench_llm: {args.rounds} rounds x {args.per_round} chat calls per client, interleaved call by call, "
          f"loopback server in a separate process, python {sys.version.split()[0]}, openai {openai.__version__}")
    with loopback_server(COMPLETION) as url:
        sync_ok = bench_sync(url, args.rounds, args.per_round)
        async_ok = asyncio.run(_bench_async(url, args.rounds, args.per_round))
    print(f"bench_llm: {'PASS' if sync_ok and async_ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
