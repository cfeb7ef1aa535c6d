"""Run every ``bench/bench_*.py`` script in turn (``make bench``), printing their output.

The benchmarks print ratios and PASS/FAIL per target; they are measurements, not tests, so this
script exits 0 unless a benchmark crashed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    crashed: list[str] = []
    for script in sorted(here.glob("bench_*.py")):
        print(f"=== {script.name} ===", flush=True)
        result = subprocess.run([sys.executable, str(script)], cwd=here.parent)
        if result.returncode != 0:
            crashed.append(script.name)
            print(f"!!! {script.name} exited with {result.returncode}", flush=True)
        print(flush=True)
    if crashed:
        print(f"run_all: crashed: {', '.join(crashed)}")
        return 1
    print("run_all: every benchmark ran")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
