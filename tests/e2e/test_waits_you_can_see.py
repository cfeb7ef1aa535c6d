"""AILINK_LOG=info against the emulator: a waiting agent says which approval it waits for and where to decide."""

from __future__ import annotations

import os
import subprocess
import sys

from ailink.testing import EmulatorGateway

NEEDS_APPROVAL = {
    "name": "charges-need-approval",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
               "then": {"action": "require_approval", "timeout": "5m"}}],
}
AGENT = """
import sys, ailink
with ailink.AIlinkClient(sys.argv[1], sys.argv[2], agent_name="logged-agent") as client:
    answer = client.post("/v1/charges", json={"amount": 5000, "currency": "usd", "customer": "cus_001"},
                         wait_for_approval=True, approval_timeout=60)
print(answer.status_code)
"""


def test_a_waiting_agent_logs_the_approval_the_command_and_the_inbox(ailink_gateway: EmulatorGateway,
                                                                     tmp_path: object) -> None:
    token = ailink_gateway.create_token(policies=[NEEDS_APPROVAL])
    approver = ailink_gateway.approve_when_pending(1, reason="ok")
    env = {**os.environ, "AILINK_LOG": "info"}
    result = subprocess.run([sys.executable, "-c", AGENT, token, ailink_gateway.url], capture_output=True,
                            text=True, timeout=120, env=env, cwd=str(tmp_path))
    (apr_id,) = approver.join()
    assert result.returncode == 0 and result.stdout.strip() == "200", result.stderr
    log = result.stderr
    assert f"POST /v1/charges is waiting for human approval {apr_id} (policy 'charges-need-approval')" in log
    assert f"ailink approvals approve {apr_id}" in log
    assert f"in the inbox: {ailink_gateway.url}/ui/approvals/{apr_id}" in log
    assert f"approval {apr_id} approved after" in log and ": ok" in log
    assert token not in log and token[:20] not in log

