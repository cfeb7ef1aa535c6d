"""The exactly-once soak, long version: ``python bench/soak.py --schedules 2000 --seed N``.

Runs seeded fault schedules (``ailink.faults``) over every real tool path on both emulator
profiles and prints, per profile and hop (then per path and per approval decision): schedules,
calls, successes, typed failures, explicit "outcome unknown" reports, unclassified reports,
duplicates (an action executed more than once) and dishonest reports (a failure although the
upstream executed, a success although it did not), followed by examples of violating calls.
``--schedule-index I`` re-runs one schedule of a seed, to reproduce a violation.
``--restart`` adds the ``kill -9`` restart scenario. The harness is ``tests/faults/soak.py``.

Exit status: 0 when nothing ran twice, nothing was reported dishonestly or left unclassified
(and the restart scenario, when asked for, passed); 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

# CrewAI reads its telemetry switches when imported (the soak imports it on first use).
for _name in ("CREWAI_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED", "CREWAI_TESTING"):
    os.environ.setdefault(_name, "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="ailink-soak-crewai-"))

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faults.soak import (  # noqa: E402 - after the environment and path set-up above
    HOPS,
    PATHS,
    PROFILES,
    SoakConfig,
    parse_list,
    run_restart_scenario,
    run_soak,
)

from ailink.faults import DEFAULT_WEIGHTS, FAULTS  # noqa: E402


def _weights(value: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in value.split(","):
        name, sep, weight = item.partition("=")
        if not sep or name.strip() not in FAULTS:
            raise argparse.ArgumentTypeError(f"expected name=weight with names from {', '.join(FAULTS)}")
        weights[name.strip()] = float(weight)
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=2000, help="schedules in all (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calls", type=int, default=6, help="logical calls per schedule (default 6)")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma list (default: ailink,real)")
    parser.add_argument("--hops", default=",".join(HOPS), help="comma list of hop1, hop2, both")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    parser.add_argument("--weights", type=_weights, default=dict(DEFAULT_WEIGHTS),
                        help="fault weights, e.g. pass=7,drop_response=1 (default: every fault)")
    parser.add_argument("--approval-share", type=float, default=0.25, help="share of approval-gated calls")
    parser.add_argument("--schedule-index", type=int, default=None, help="run only this schedule of the seed")
    parser.add_argument("--restart", action="store_true", help="also run the kill -9 restart scenario")
    parser.add_argument("--examples", type=int, default=20, help="violating calls to list")
    args = parser.parse_args(argv)
    try:
        config = SoakConfig(
            schedules=args.schedules,
            seed=args.seed,
            calls_per_schedule=args.calls,
            profiles=parse_list(args.profiles, PROFILES),
            hops=parse_list(args.hops, HOPS),
            paths=parse_list(args.paths, PATHS),
            weights=args.weights,
            approval_share=args.approval_share,
            only_schedule=args.schedule_index,
        )
    except ValueError as exc:
        parser.error(str(exc))
    result = run_soak(config, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.table(examples=args.examples))
    ok = result.ok
    if args.restart:
        with tempfile.TemporaryDirectory(prefix="ailink-soak-restart-") as workdir:
            restart = run_restart_scenario(Path(workdir))
        print("\nrestart scenario (kill -9 during an in-flight POST and a pending approval):")
        print(restart.describe())
        ok = ok and restart.ok
    print("\nsoak: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
