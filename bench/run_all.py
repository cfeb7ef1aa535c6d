"""Run every ``bench/bench_*.py`` script in turn (``make bench``), printing their output.

The benchmarks print ratios and PASS/FAIL per target; they are measurements, not tests, so this
script exits 0 unless a benchmark crashed. ``--soak`` (opt-in) also runs the exactly-once soak
(``bench/soak.py``, ``--soak-schedules`` schedules); it exits 1 when the soak finds a violation.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks.")
    parser.add_argument("--soak", action="store_true", help="also run bench/soak.py (long)")
    parser.add_argument("--soak-schedules", type=int, default=2000)
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    runs = [(script.name, [str(script)]) for script in sorted(here.glob("bench_*.py"))]
    if args.soak:
        runs.append(("soak.py", [str(here / "soak.py"), "--schedules", str(args.soak_schedules), "--restart"]))
    failed: list[str] = []
    for name, command in runs:
        print(f"=== {name} ===", flush=True)
        result = subprocess.run([sys.executable, *command], cwd=here.parent)
        if result.returncode != 0:
            failed.append(name)
            print(f"!!! {name} exited with {result.returncode}", flush=True)
        print(flush=True)
    if failed:
        print(f"run_all: failed or crashed: {', '.join(failed)}")
        return 1
    print("run_all: every benchmark ran")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
