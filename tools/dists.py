"""``make dists``: the four distributions as users get them, and every README run in fresh virtualenvs.

1. Build each distribution's wheel and sdist (``python -m build --no-isolation``) into
   ``.dists/artifacts`` and run ``twine check --strict`` on them.
2. For each Python (``PYTHONS``, default ``3.10 3.11 3.13``) and each distribution's README: a fresh
   virtualenv holding only what that README's ``pip install`` lines name (this project's
   distributions from the built wheels, everything else from the package index), then the README
   test (``tests/e2e/test_readme.py``) with ``AILINK_README=<distribution>`` and
   ``AILINK_README_PYTHON=<the fresh interpreter>``: the harness runs the emulator, every example
   of that README runs in the fresh virtualenv.

Usage: ``python tools/dists.py [distribution ...]`` (default: all four). Exit status 0 when all passed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".dists"
def _distributions() -> dict[str, Path]:
    """Every distribution of the repository: the core, then each ``integrations/<framework>/``."""
    found = {"ailink-sdk": ROOT}
    for pyproject in sorted(ROOT.glob("integrations/*/pyproject.toml")):
        found[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    return found


DISTRIBUTIONS = _distributions()
SHELL_BLOCK = re.compile(r"```(?:bash|sh|console)\n(.*?)```", re.S)


def build() -> dict[str, Path]:
    """Build every distribution; returns ``name -> wheel``."""
    artifacts = OUT / "artifacts"
    shutil.rmtree(artifacts, ignore_errors=True)
    for path in DISTRIBUTIONS.values():
        subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(artifacts), str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(artifacts.iterdir()))],
                   check=True)
    return {name: next(artifacts.glob(f"{name.replace('-', '_')}-*.whl")) for name in DISTRIBUTIONS}


def readme_requirements(name: str) -> list[str]:
    """Every requirement the README's ``pip install`` lines name."""
    text = (DISTRIBUTIONS[name] / "README.md").read_text()
    found: list[str] = []
    for block in SHELL_BLOCK.findall(text):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["pip", "install"]:
                found += [w for w in words[2:] if w not in found]
    return found


def _from_wheels(requirements: list[str], wheels: dict[str, Path]) -> list[str]:
    """This project's requirements as paths to the built wheels (extras kept), others unchanged."""
    out = []
    for requirement in requirements:
        name, bracket, extras = requirement.partition("[")
        out.append(f"{wheels[name]}{bracket}{extras}" if name in wheels else requirement)
    return out


def find_python(version: str) -> str | None:
    for candidate in (f"python{version}", *sorted((Path.home() / ".pyenv/versions").glob(f"{version}.*/bin/python"))):
        found = shutil.which(str(candidate))
        if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
            return found
    return None


def check(name: str, python: str, version: str, wheels: dict[str, Path]) -> bool:
    venv = OUT / f"py{version}-{name}"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    fresh = str(venv / "bin" / "python")
    requirements = readme_requirements(name)
    print(f"== {name} on Python {version}: pip install {' '.join(requirements)}", flush=True)
    pip = [fresh, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    installed = subprocess.run([*pip, "--find-links", str(wheels[name].parent), *_from_wheels(requirements, wheels)])
    if installed.returncode != 0:
        print(f"== {name} on Python {version}: FAILED to install")
        return False
    env = {**os.environ, "AILINK_README": name, "AILINK_README_PYTHON": fresh}
    start = time.monotonic()
    test = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_readme.py"]
    result = subprocess.run(test, cwd=ROOT, env=env)
    ok = result.returncode == 0
    print(f"== {name} on Python {version}: README {'passed' if ok else 'FAILED'} ({time.monotonic() - start:.0f} s)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"distributions (default: all): {', '.join(DISTRIBUTIONS)}")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(DISTRIBUTIONS)
    if unknown:
        parser.error(f"unknown distributions: {', '.join(sorted(unknown))}")
    wheels = build()
    results: dict[str, bool] = {}
    for version in os.environ.get("PYTHONS", "3.10 3.11 3.13").split():
        python = find_python(version)
        if python is None:
            print(f"== Python {version}: not found (set PYTHONS to the versions this machine has)")
            results[f"python {version}"] = False
            continue
        for name in args.names or DISTRIBUTIONS:
            results[f"{name} on Python {version}"] = check(name, python, version, wheels)
    for label, ok in results.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
