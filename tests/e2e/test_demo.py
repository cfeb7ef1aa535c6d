"""`ailink demo --auto-approve` for each framework, as a newcomer runs it (a child process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize("framework", ["langchain", "crewai", "llamaindex"])
def test_demo_runs_end_to_end(framework: str, tmp_path: object) -> None:
    env = {**os.environ, "CI": "true", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "ailink._cli", "demo", "--framework", framework, "--auto-approve",
         "--approval-delay", "0.3"],
        capture_output=True, text=True, timeout=240, env=env, cwd=str(tmp_path),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "one charge executed exactly once after approval" in output
    assert "denied block-refunds" in output
    assert re.search(r"charges executed upstream\s*│\s*1\s*│", output)
    assert "auto-approving" in output  # no TTY: decided automatically, never hangs
    assert "ailink_v1_" not in output  # tokens are never printed


def test_demo_reports_a_missing_framework_clearly(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ailink._cli", "demo", "--framework", "nope"],
        capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
