"""Every code block of every distribution's README runs against a seeded emulator: a broken snippet fails the suite.

The READMEs: the root one (``ailink-sdk``, also the repository's page) and each integration's.
Python blocks run in a fresh interpreter each, with the environment the README describes
(``AILINK_GATEWAY_URL``, ``AILINK_API_KEY``, ``AILINK_LLM_TOKEN``, ``AILINK_ADMIN_KEY``) and a
reviewer approving pending approvals in the background. A hidden ``<!-- readme-test: ... -->``
line before a block scripts the emulator's mock model (``script-llm A | B``) or runs the block
as a pytest file (``pytest``). Shell blocks are checked against the Makefile, the package extras
and the CLI; the read-only CLI commands really run.

``AILINK_README=<distribution>,...`` limits the run to some READMEs, and ``AILINK_README_PYTHON``
names the interpreter the blocks run with: ``make dists`` points it at a fresh virtualenv holding
only the built wheels of what that README's ``pip install`` lines name.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from distributions import ROOT, distributions

import ailink
from ailink._cli import build_parser
from ailink.emulator import RunningEmulator, run_in_thread

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib



#: Each distribution's directory (its README.md and pyproject.toml).
DISTRIBUTIONS = distributions()
SELECTED = [name.strip() for name in os.environ.get("AILINK_README", "").split(",") if name.strip()]
SELECTED = SELECTED or list(DISTRIBUTIONS)
SNIPPET_PYTHON = os.environ.get("AILINK_README_PYTHON") or sys.executable
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<directive>.*?) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)
FULL_TOKEN = re.compile(r"ailink_v1_[A-Za-z0-9_\-]{8,}")


@dataclass
class Block:
    readme: str
    lang: str
    code: str
    directive: str
    line: int

    @property
    def id(self) -> str:
        return f"{self.readme}-line-{self.line}"


def blocks_of(distribution: str) -> list[Block]:
    text = (DISTRIBUTIONS[distribution] / "README.md").read_text()
    return [Block(distribution, m["lang"], m["code"], m["directive"] or "", text.count("\n", 0, m.start()) + 1)
            for m in BLOCK.finditer(text)]


BLOCKS = [block for name in SELECTED for block in blocks_of(name)]
PYTHON = [b for b in BLOCKS if b.lang == "python"]
SHELL = [b for b in BLOCKS if b.lang in ("bash", "sh", "console")]


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningEmulator]:
    running = run_in_thread(seed="demo")
    stop = threading.Event()

    def reviewer() -> None:  # approves whatever a snippet waits for
        with httpx.Client(base_url=running.url, headers={"X-Admin-Key": running.admin_key}) as admin:
            while not stop.wait(0.2):
                for row in admin.get("/api/v1/approvals", params={"status": "pending"}).json():
                    admin.post(f"/api/v1/approvals/{row['id']}/decision", json={"decision": "approved"})

    thread = threading.Thread(target=reviewer, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        stop.set()
        thread.join(5)
        running.stop()


def _env(gateway: RunningEmulator, tmp_path: Path) -> dict[str, str]:
    assert gateway.seed is not None
    # the suite switches the OTel SDK off for CrewAI; a reader's shell does not (the CrewAI
    # examples set it themselves, before importing crewai)
    inherited = {name: value for name, value in os.environ.items() if name != "OTEL_SDK_DISABLED"}
    return {
        **inherited,
        "AILINK_GATEWAY_URL": gateway.url,
        "AILINK_API_KEY": gateway.seed.payments_token,
        "AILINK_LLM_TOKEN": gateway.seed.llm_token,
        "AILINK_ADMIN_KEY": gateway.admin_key,
        "CREWAI_STORAGE_DIR": str(tmp_path / "crewai"),
        "CI": "true",
    }


def _script_llm(gateway: RunningEmulator, directive: str) -> None:
    assert gateway.seed is not None
    responses = [json.loads(part) for part in directive.removeprefix("script-llm").split(" | ")]
    httpx.post(gateway.url + "/api/v1/emulator/llm/script", headers={"X-Admin-Key": gateway.admin_key},
               json={"token_id": gateway.seed.llm_token, "responses": responses}).raise_for_status()


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_each_readme_has_runnable_examples_and_its_install_line(distribution: str) -> None:
    blocks = blocks_of(distribution)
    python = [b for b in blocks if b.lang == "python"]
    shell = [b for b in blocks if b.lang in ("bash", "sh", "console")]
    assert python and all(b.lang in ("python", "bash", "sh", "console", "toml") for b in blocks)
    assert any(re.search(rf"^pip install '?{re.escape(distribution)}\b", b.code, re.M) for b in shell)
    if distribution == "ailink-sdk":
        assert len(python) >= 8
        assert any("make demo" in b.code and "make test" in b.code for b in shell)
        for integration in [name for name in DISTRIBUTIONS if name != "ailink-sdk"]:  # an install line each
            assert any(re.search(rf"^pip install .*{integration}", b.code, re.M) for b in shell), integration


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block_runs(block: Block, gateway: RunningEmulator, tmp_path: Path) -> None:
    env = _env(gateway, tmp_path)
    if block.directive.startswith("script-llm"):
        _script_llm(gateway, block.directive)
    if block.directive == "pytest":
        (tmp_path / "conftest.py").write_text('pytest_plugins = ["ailink.testing"]\n')
        (tmp_path / "test_from_readme.py").write_text(block.code)
        command = [SNIPPET_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_from_readme.py"]
    else:
        (tmp_path / "snippet.py").write_text(block.code)
        command = [SNIPPET_PYTHON, "snippet.py"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.readme} README block at line {block.line} failed:\n{output[-3000:]}"
    assert not FULL_TOKEN.search(output)
    if block.directive == "pytest":
        assert re.search(r"\b2 passed\b", output), output
    else:
        assert result.stdout.strip(), "a README example should show something"


def _check_shell_line(line: str, gateway: RunningEmulator, tmp_path: Path) -> None:
    words = shlex.split(line, comments=True)
    if not words:
        return
    if words[0] == "make":
        makefile = (ROOT / "Makefile").read_text()
        assert re.search(rf"^{re.escape(words[1])}:", makefile, re.M), line
    elif words[:2] == ["pip", "install"]:
        for requirement in words[2:]:
            name, _, extras = requirement.partition("[")
            if name not in DISTRIBUTIONS:  # another project's package: one this suite has installed
                assert not extras and metadata.version(name), line
                continue
            project = tomllib.loads((DISTRIBUTIONS[name] / "pyproject.toml").read_text())["project"]
            for extra in filter(None, extras.rstrip("]").split(",")):
                assert extra in project.get("optional-dependencies", {}), line
    elif words[0] == "ailink" and words[1] == "dev":
        help_text = subprocess.run([SNIPPET_PYTHON, "-m", "ailink._cli", "dev", "--help"], capture_output=True,
                                   text=True, timeout=60).stdout
        assert all(flag in help_text for flag in words[2:] if flag.startswith("--")), line
    elif words[0] == "ailink":
        build_parser().parse_args(words[1:])  # exits (fails the test) on a wrong command
        if words[1:3] in (["approvals", "list"], ["sessions", "show"]):
            result = subprocess.run([SNIPPET_PYTHON, "-m", "ailink._cli", *words[1:]], capture_output=True,
                                    text=True, timeout=60, env=_env(gateway, tmp_path), cwd=tmp_path)
            assert result.returncode == 0, result.stdout + result.stderr
    else:
        raise AssertionError(f"unchecked shell line in README: {line}")


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_shell_block_is_valid(block: Block, gateway: RunningEmulator, tmp_path: Path) -> None:
    if "sessions show conv-abc123" in block.code:  # make sure the session shown exists
        assert gateway.seed is not None
        with ailink.AIlinkClient(gateway.seed.payments_token, gateway.url) as client, client.trace("conv-abc123"):
            client.get("/v1/customers")
    for line in block.code.splitlines():
        _check_shell_line(line, gateway, tmp_path)
