"""``make lowest``: each distribution installed with the lowest versions it declares, then its tests.

For each distribution a virtualenv (``.lowest/<name>``; Python 3.11 unless ``LOWEST_PYTHON`` names
another interpreter) gets the distribution (editable) with every direct
dependency pinned to its declared lower bound: pip constraints generated from the pyproject
(``>=X`` becomes ``==X``), everything else resolved as usual. That is uv's
``--resolution lowest-direct``, done with pip. The test tools the suite needs (pytest plugins,
``langchain-tests``, ...) are not the distribution's dependencies and are not pinned. Then the
distribution's own tests run: the core's unit and emulator tests, or an integration's tests and its
conformance scenarios.

Usage: ``python tools/lowest.py [name ...]`` (default: all). Exit status 0 when all passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CORE = "ailink-sdk"


@dataclass(frozen=True)
class Target:
    """One distribution: where it is, the extras its tests use, its tests and the unpinned test tools."""

    path: str
    extras: tuple[str, ...]
    tests: tuple[str, ...]
    tools: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


TEST_TOOLS = ("pytest-asyncio>=0.24", "pytest-timeout>=2.3")
TARGETS = {
    CORE: Target(".", ("openai", "anthropic", "realtime", "emulator", "otel", "testing"),
                 ("tests/unit", "tests/emulator"), (*TEST_TOOLS, "respx>=0.21", "opentelemetry-sdk")),
    "langchain-ailink": Target("integrations/langchain", ("agents",),
                               ("tests/integrations/langchain", "tests/conformance"),
                               (*TEST_TOOLS, "langchain-tests>=1.0", "langgraph-checkpoint-sqlite"),
                               {"AILINK_CONFORMANCE": "langchain"}),
    "crewai-ailink": Target("integrations/crewai", (), ("tests/integrations/crewai", "tests/conformance"),
                            TEST_TOOLS, {"AILINK_CONFORMANCE": "crewai"}),
    "llama-index-ailink": Target("integrations/llamaindex", (),
                                 ("tests/integrations/llamaindex", "tests/conformance"),
                                 TEST_TOOLS, {"AILINK_CONFORMANCE": "llamaindex"}),
}


def _by_convention() -> dict[str, Target]:
    """Integrations without an entry above: their tests and conformance driver are named after their folder."""
    found = {}
    for pyproject in sorted(ROOT.glob("integrations/*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        folder = pyproject.parent.name
        tests = folder.replace("-", "_")  # integrations/openai-agents → tests/integrations/openai_agents
        found[name] = Target(f"integrations/{folder}", (), (f"tests/integrations/{tests}", "tests/conformance"),
                             TEST_TOOLS, {"AILINK_CONFORMANCE": tests})
    return found


TARGETS = {**TARGETS, **{name: target for name, target in _by_convention().items() if name not in TARGETS}}


def _project(path: str) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / path / "pyproject.toml").read_text())["project"]
    return project


def direct_requirements(name: str, extras: tuple[str, ...]) -> list[Requirement]:
    """The distribution's dependencies and those of ``extras``, self-references expanded."""
    project = _project(TARGETS[name].path)
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})  # type: ignore[assignment]
    dependencies: list[str] = project.get("dependencies", [])  # type: ignore[assignment]
    wanted, seen, found = list(extras), set(), [Requirement(text) for text in dependencies]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if requirement.name == project["name"]:  # "ailink-sdk[emulator]" inside ailink-sdk
                wanted.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def lowest_pins(requirements: list[Requirement]) -> dict[str, str]:
    """``name -> lowest version`` for every requirement with a lower bound (the highest lower bound
    when a name appears twice); the local core is never pinned."""
    pins: dict[str, str] = {}
    for requirement in requirements:
        if requirement.name == CORE:
            continue
        for spec in requirement.specifier:
            if spec.operator in (">=", "==", "~="):
                current = pins.get(requirement.name)
                if current is None or Version(current) < Version(spec.version):
                    pins[requirement.name] = spec.version
    return pins


#: The Python of the lowest-versions run. Not 3.10: there, LlamaIndex's "paused run resumed in another
#: process" conformance scenario fails with every LlamaIndex version (``Path 'memory' not found in state``),
#: which is no lower-bound question; ``LOWEST_PYTHON=python3.10`` runs it there.
LOWEST_VERSION = "3.11"


def _python() -> str:
    explicit = os.environ.get("LOWEST_PYTHON")
    pyenv = sorted((Path.home() / ".pyenv/versions").glob(f"{LOWEST_VERSION}.*/bin/python"))
    candidates = [explicit] if explicit else [f"python{LOWEST_VERSION}", *map(str, pyenv)]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
            return found
    raise SystemExit(f"make lowest: no Python {LOWEST_VERSION} found; set LOWEST_PYTHON=/path/to/python")


def run_target(name: str, python: str) -> bool:
    target = TARGETS[name]
    venv = ROOT / ".lowest" / name
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    bin_python = str(venv / "bin" / "python")
    pins = lowest_pins(direct_requirements(name, target.extras))
    constraints = venv / "lowest-constraints.txt"
    constraints.write_text("".join(f"{dist}=={version}\n" for dist, version in sorted(pins.items())))
    print(f"== {name}: pinned to the lower bounds: {', '.join(f'{d}=={v}' for d, v in sorted(pins.items()))}")
    pip = [bin_python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    extras = f"[{','.join(target.extras)}]" if target.extras else ""
    packages = ["-e", f"{ROOT / target.path}{extras}"]
    if name != CORE:  # the integration's tests run the emulator of the local core
        packages += ["-e", f"{ROOT}[emulator,testing,openapi]"]  # the conformance suite has generated tools
    installed = subprocess.run([*pip, "-c", str(constraints), *packages, *target.tools])
    if installed.returncode != 0:
        print(f"== {name}: FAILED to install with the lowest versions")
        return False
    versions = subprocess.run([bin_python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True)
    chosen = {line.split("==")[0].lower(): line for line in versions.stdout.splitlines()}
    print("   installed:", ", ".join(chosen.get(dist.lower(), f"{dist}?") for dist in sorted(pins)))
    env = {**os.environ, **target.env, "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true",
           "CREWAI_TRACING_ENABLED": "false", "CREWAI_TESTING": "true"}
    start = time.monotonic()
    tests = subprocess.run([bin_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *target.tests],
                           cwd=ROOT, env=env)
    print(f"== {name}: tests {'passed' if tests.returncode == 0 else 'FAILED'} ({time.monotonic() - start:.0f} s)")
    return tests.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"distributions (default: all): {', '.join(TARGETS)}")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown distributions: {', '.join(sorted(unknown))}")
    python = _python()
    print(f"make lowest: {subprocess.run([python, '--version'], capture_output=True, text=True).stdout.strip()}")
    results = {name: run_target(name, python) for name in (args.names or TARGETS)}
    for name, ok in results.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
