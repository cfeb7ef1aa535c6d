"""What a user who installed too little sees: one line naming the command that installs the rest.

A missing package is simulated in a child process by ``sys.modules[name] = None`` (importing it
then fails exactly as when it is not installed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _demo_without(module: str, framework: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None\n"
        "from ailink._cli import main\n"
        f"sys.exit(main(['demo', '--framework', {framework!r}, '--auto-approve']))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={"CI": "true", "COLUMNS": "80", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("module", "framework", "install"), [
    ("langchain_openai", "langchain", "pip install 'langchain-ailink[agents]'"),  # langchain-ailink without [agents]
    ("langchain", "langchain", "pip install 'langchain-ailink[agents]'"),
    ("crewai_ailink", "crewai", "pip install 'crewai-ailink'"),  # the integration itself
    ("starlette", "langchain", "pip install 'ailink-sdk[emulator]'"),  # ailink-sdk without the emulator
])
def test_ailink_demo_names_what_to_install_in_one_line(module: str, framework: str, install: str,
                                                       tmp_path: Path) -> None:
    result = _demo_without(module, framework, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines  # no traceback, no banner: one line, however narrow the terminal
    assert lines[0].endswith(install) and module.split("_")[0] in lines[0]


def test_the_cli_runs_without_the_emulator(tmp_path: Path) -> None:
    """``pip install langchain-ailink`` then ``ailink approvals list``: the CLI needs only the base install."""
    code = (
        "import sys\n"
        "for name in ('starlette', 'uvicorn', 'jinja2', 'yaml'):\n"
        "    sys.modules[name] = None\n"
        "from ailink._cli import main\n"
        "sys.exit(main(['approvals', 'list', '--gateway-url', 'http://127.0.0.1:9']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={"AILINK_ADMIN_KEY": "ailink_admin_test", "PATH": "/usr/bin:/bin"})
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "pip install" not in output
    assert result.returncode != 0 and "127.0.0.1:9" in output  # it ran, and says the gateway is unreachable


def test_the_emulator_serves_without_uvloop(tmp_path: Path) -> None:
    """``pip install 'ailink-sdk[testing]'`` brings uvicorn without uvloop: the emulator runs on asyncio's loop."""
    code = (
        "import sys\n"
        "sys.modules['uvloop'] = None\n"
        "import httpx\n"
        "from ailink.emulator import run_in_thread\n"
        "emulator = run_in_thread()\n"
        "for _ in range(3):\n"
        "    print(httpx.get(emulator.url + '/healthz').status_code)\n"
        "emulator.stop()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "200", "200"]
