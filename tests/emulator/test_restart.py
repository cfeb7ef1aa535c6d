"""``kill -9`` of the emulator (file database) while requests are in flight, then a restart on the
same database: no key stays stuck (no 409 after the restart), nothing is executed twice, and an
approval pending across the restart is still executed exactly once after its decision.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .fault_upstream import FaultUpstream

ADMIN_KEY = "ailink_admin_restart-suite-key"
APPROVE_POSTS: dict[str, Any] = {
    "name": "approve-posts",
    "rules": [{"when": {"field": "request.method", "op": "eq", "value": "POST"},
               "then": {"action": "require_approval", "timeout": "10m"}}],
}
SERVE = ("import sys; from ailink.emulator import serve; "
         "serve(port=int(sys.argv[1]), db_path=sys.argv[2], admin_key=sys.argv[3])")


class EmulatorProcess:
    """The emulator in its own process, on a fixed port, so it can be killed and restarted."""

    def __init__(self, db: Path, log: Path) -> None:
        self.db = db
        self.log = log
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(self.port), str(self.db), ADMIN_KEY],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the emulator did not start:\n" + self.log.read_text())

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Admin-Key": ADMIN_KEY}, timeout=30)

    def token(self, upstream: str, policies: list[dict[str, Any]] | None = None) -> str:
        with self.admin() as a:
            ids = [a.post("/api/v1/policies", json=p).json()["id"] for p in policies or []]
            created = a.post("/api/v1/tokens", json={"name": "t", "upstream_url": upstream, "policy_ids": ids})
        return str(created.json()["token_id"])


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess(tmp_path / "emulator.db", tmp_path / "emulator.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _headers(token: str, key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-AIlink-Idempotency-Key": key, **extra}


def _send_in_background(url: str, path: str, headers: dict[str, str]) -> threading.Thread:
    def send() -> None:
        try:
            httpx.post(url + path, json={"amount": 1}, headers=headers, timeout=30)
        except httpx.HTTPError:
            pass  # the emulator dies under it

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_kill_during_in_flight_post_leaves_no_stuck_key_and_no_second_execution(
        emulator_process: EmulatorProcess, fault_upstream: FaultUpstream) -> None:
    token = emulator_process.token(fault_upstream.url)
    headers = _headers(token, "inflight-1")
    sender = _send_in_background(emulator_process.url, "/hang", headers)
    while fault_upstream.count("/hang") == 0:
        time.sleep(0.01)
    emulator_process.kill9()
    sender.join(10)
    emulator_process.start()
    with httpx.Client(base_url=emulator_process.url, timeout=30) as c:
        for _ in range(3):
            again = c.post("/hang", json={"amount": 1}, headers=headers)
            assert again.status_code == 502, again.text  # never 409 "in progress" for a dead request
            error = again.json()["error"]
            assert error["code"] == "outcome_unknown"
            assert error["details"] == {"ambiguous": True, "idempotency_key": "inflight-1"}
        # the key is settled; a new key for the same action is a new action
        fresh = c.post("/ok", json={"amount": 1}, headers=_headers(token, "inflight-2"))
        assert fresh.status_code == 200
    assert fault_upstream.count("/hang") == 1


def test_pending_approval_survives_kill_and_executes_once(
        emulator_process: EmulatorProcess, fault_upstream: FaultUpstream) -> None:
    token = emulator_process.token(fault_upstream.url, [APPROVE_POSTS])
    headers = _headers(token, "pending-1", Prefer="respond-async")
    with httpx.Client(base_url=emulator_process.url, timeout=30) as c:
        accepted = c.post("/ok", json={"amount": 7}, headers=headers)
    assert accepted.status_code == 202
    apr_id = accepted.json()["approval_id"]
    emulator_process.kill9()
    emulator_process.start()
    with httpx.Client(base_url=emulator_process.url, timeout=30) as c, emulator_process.admin() as a:
        status = c.get(f"/v1/approvals/{apr_id}", headers={"Authorization": f"Bearer {token}"}).json()
        assert status["status"] == "pending"
        assert fault_upstream.count() == 0
        assert a.post(f"/api/v1/approvals/{apr_id}/decision", json={"decision": "approved"}).json()["updated"]
        result = c.get(f"/v1/approvals/{apr_id}/result", headers={"Authorization": f"Bearer {token}"})
        resent = c.post("/ok", json={"amount": 7}, headers=headers)
    assert result.status_code == 200 and result.json()["body"] == '{"amount":7}'
    assert resent.status_code == 200 and resent.headers["idempotent-replayed"] == "true"
    assert resent.content == result.content
    assert fault_upstream.count("/ok", key="pending-1") == 1


def test_kill_during_approved_execution_is_outcome_unknown(
        emulator_process: EmulatorProcess, fault_upstream: FaultUpstream) -> None:
    token = emulator_process.token(fault_upstream.url, [APPROVE_POSTS])
    headers = _headers(token, "approved-1", Prefer="respond-async")
    with httpx.Client(base_url=emulator_process.url, timeout=30) as c, emulator_process.admin() as a:
        apr_id = c.post("/hang", json={"amount": 8}, headers=headers).json()["approval_id"]
        a.post(f"/api/v1/approvals/{apr_id}/decision", json={"decision": "approved"})
    while fault_upstream.count("/hang") == 0:  # the approved request is on its way upstream
        time.sleep(0.01)
    emulator_process.kill9()
    emulator_process.start()
    with httpx.Client(base_url=emulator_process.url, timeout=30) as c:
        result = c.get(f"/v1/approvals/{apr_id}/result", headers={"Authorization": f"Bearer {token}"})
        resent = c.post("/hang", json={"amount": 8}, headers=headers)
    for resp in (result, resent):
        assert resp.status_code == 502 and resp.json()["error"]["code"] == "outcome_unknown"
        assert resp.json()["error"]["details"]["approval_id"] == apr_id
    assert fault_upstream.count("/hang") == 1
