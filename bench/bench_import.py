"""Import cost: wall time of ``python -c "import ailink"`` vs ``python -c "pass"`` (median of N
interleaved subprocess runs), target <= 150 ms for ailink itself; and ``import ailink`` must
not import openai or any agent framework. Prints the numbers and PASS/FAIL; exits 0.
Usage: python bench/bench_import.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_MS = 150.0
FORBIDDEN = ("openai", "langchain", "langchain_core", "langgraph", "crewai", "llama_index")


def _run(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    baseline: list[float] = []
    with_ailink: list[float] = []
    _run("import ailink")  # warm the file system cache and the bytecode cache
    for _ in range(args.runs):
        baseline.append(_run("pass"))
        with_ailink.append(_run("import ailink"))
    base_ms = statistics.median(baseline) * 1000
    ailink_ms = statistics.median(with_ailink) * 1000
    own_ms = ailink_ms - base_ms
    ok_time = own_ms <= TARGET_MS
    print(f"bench_import: {args.runs} interleaved runs, python {sys.version.split()[0]}")
    print(f"import  python -c pass {base_ms:7.1f} ms | python -c 'import ailink' {ailink_ms:7.1f} ms | "
          f"ailink itself {own_ms:6.1f} ms (target <= {TARGET_MS:.0f} ms) {'PASS' if ok_time else 'FAIL'}")

    probe = (
        "import sys, ailink\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
        "ailink.AIlinkClient, ailink.gateway_tool, ailink.AdminClient\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    after_import, after_use = [*out.splitlines(), "", ""][:2]
    ok_modules = not after_import and not after_use
    print(f"modules after 'import ailink': {after_import or 'none of ' + ', '.join(FORBIDDEN)}; "
          f"after using the clients and tools: {after_use or 'none'} {'PASS' if ok_modules else 'FAIL'}")
    print(f"bench_import: {'PASS' if ok_time and ok_modules else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
