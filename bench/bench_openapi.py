"""OpenAPI conversion time: the realistic document (``tests/openapi/fixtures/code_hosting.yaml``, 62
operations, 61 tools) converted by ``ailink.openapi.convert``, median of N interleaved runs, side by side
with validating the same document with ``openapi-spec-validator`` (what a careful user runs anyway),
plus the same conversion with a token's policies and with a 10x larger document (the paths copied
under ten prefixes, as a dict) to show how it grows: references are converted once per document and
each distinct argument schema is checked against the metaschema once, so repeated shapes cost little
more. Target: <= 1 s for the realistic document (a one-off
cost when an agent starts). Prints the numbers and PASS/FAIL; exits 0.
Usage: python bench/bench_openapi.py [--runs N]
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailink._openapi.document import load_document, validate_document
from ailink.openapi import convert

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "openapi" / "fixtures" / "code_hosting.yaml"
TARGET_S = 1.0
POLICIES = [
    {"name": "no-deletes", "rules": [{"when": {"field": "request.method", "op": "eq", "value": "DELETE"},
                                      "then": {"action": "deny", "message": "no deletions"}}]},
    {"name": "writes-need-a-human", "rules": [{
        "when": {"all": [{"field": "request.method", "op": "in", "value": ["POST", "PUT", "PATCH"]},
                         {"field": "request.path", "op": "glob", "value": "/repos/*"}]},
        "then": {"action": "require_approval", "timeout": "10m"}}]},
    {"name": "big-pages", "rules": [{"when": {"field": "request.query.per_page", "op": "gt", "value": 50},
                                     "then": {"action": "require_approval"}}]},
]


def _median(fn: Callable[[], Any], samples: list[float]) -> None:
    gc.collect()
    start = time.perf_counter()
    fn()
    samples.append(time.perf_counter() - start)


def _scaled(times: int) -> dict[str, Any]:
    document = load_document(FIXTURE).contents
    bigger = copy.deepcopy(dict(document))
    bigger["paths"] = {}
    for i in range(times):
        for path, item in document["paths"].items():
            renamed = copy.deepcopy(item)
            for operation in renamed.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["operationId"] = f"v{i}/{operation['operationId']}"
            bigger["paths"][f"/v{i}{path}"] = renamed
    return bigger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    conversion = convert(FIXTURE)  # warm imports and caches
    operations = len(conversion.actions) + len(conversion.skipped)
    assert not conversion.errors, conversion.errors
    plain: list[float] = []
    gated: list[float] = []
    validation: list[float] = []
    for _ in range(args.runs):  # interleaved, so machine noise hits each alike
        _median(lambda: convert(FIXTURE), plain)
        _median(lambda: validate_document(load_document(FIXTURE)), validation)
        _median(lambda: convert(FIXTURE, policies=POLICIES), gated)
    big = _scaled(10)
    big_runs: list[float] = []
    for _ in range(max(3, args.runs // 3)):
        _median(lambda: convert(big), big_runs)
    convert_s, validate_s, gated_s = (statistics.median(x) for x in (plain, validation, gated))
    big_s = statistics.median(big_runs)
    ok = convert_s <= TARGET_S
    print(f"bench_openapi: {args.runs} interleaved runs; {FIXTURE.name}: {operations} operations, "
          f"{len(conversion.actions)} tools")
    print(f"convert            {convert_s * 1000:8.1f} ms  ({convert_s * 1000 / operations:5.2f} ms per operation)"
          f"  target <= {TARGET_S * 1000:.0f} ms {'PASS' if ok else 'FAIL'}")
    print(f"convert + policies {gated_s * 1000:8.1f} ms  ({len(POLICIES)} policies: gates known in advance)")
    print(f"openapi-spec-validator on the same document {validate_s * 1000:8.1f} ms;"
          f" convert / validate = {convert_s / validate_s:4.2f}")
    print(f"10x document ({operations * 10} operations) {big_s * 1000:8.1f} ms;"
          f" {big_s / convert_s:4.1f}x the time for 10x the operations")
    print(f"bench_openapi: {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
