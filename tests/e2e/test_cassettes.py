"""Recorded gateway exchanges (cassettes/) replayed offline, and proof that none holds a secret.

Replay is the default: no server runs and vcrpy answers every request from the cassette.
To re-record against a fresh emulator (run as a separate process so only the client's own
traffic is captured): ``AILINK_RECORD_CASSETTES=1 pytest tests/e2e/test_cassettes.py``.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr

import ailink
from ailink.testing import vcr_config

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
RECORDING = os.environ.get("AILINK_RECORD_CASSETTES") == "1"
REPLAY_URL = "http://127.0.0.1:9"  # nothing listens there: every answer must come from the cassette
SECRET_PATTERNS = [
    re.compile(r"ailink_v1_(?!REDACTED)[A-Za-z0-9_\-]{4,}"),
    re.compile(r"sk-(?!REDACTED)[A-Za-z0-9_\-]{6,}"),
    re.compile(r"ailink_admin_(?!REDACTED)[A-Za-z0-9_\-]{4,}"),
    re.compile(r"Bearer (?!REDACTED)\S{8,}"),
]


class RecordingGateway:
    """An emulator in a child process, with the tokens the scenarios need."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_key = f"ailink_admin_{secrets.token_hex(12)}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ailink._cli", "dev", "--port", str(self.port), "--db", ":memory:",
             "--admin-key", self.admin_key],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.admin = httpx.Client(base_url=self.url, headers={"X-Admin-Key": self.admin_key}, timeout=10)
        for _ in range(100):
            try:
                if self.admin.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)

    def token(self, upstream: str, policies: list[dict[str, Any]]) -> str:
        ids = [self.admin.post("/api/v1/policies", json=p).json()["id"] for p in policies]
        return str(self.admin.post("/api/v1/tokens", json={"name": "rec", "upstream_url": upstream,
                                                         "policy_ids": ids}).json()["token_id"])

    def approve_next(self) -> threading.Thread:
        def run() -> None:
            for _ in range(100):
                rows = self.admin.get("/api/v1/approvals", params={"status": "pending"}).json()
                if rows:
                    self.admin.post(f"/api/v1/approvals/{rows[0]['id']}/decision", json={"decision": "approved"})
                    return
                time.sleep(0.1)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.admin.close()
        self.process.terminate()
        self.process.wait(timeout=10)


APPROVAL = {"name": "charges-need-approval", "rules": [{
    "when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
    "then": {"action": "require_approval", "timeout": "36500d"}}]}  # expires_at stays in the future for replays
DENY_REFUNDS = {"name": "block-refunds", "rules": [{
    "when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
    "then": {"action": "deny", "message": "refunds are not allowed"}}]}


def _cassette(name: str) -> Any:
    config = vcr_config()
    scrub = config.pop("before_record_request")

    def only_client_traffic(request: Any) -> Any:
        # The recorder's own management calls (creating tokens, approving) are set-up, not client traffic.
        return None if "/api/v1/" in request.path else scrub(request)

    recorder = vcr.VCR(record_mode="all" if RECORDING else "none", before_record_request=only_client_traffic, **config)
    return recorder.use_cassette(str(CASSETTES / f"{name}.yaml"))


@pytest.fixture(scope="module")
def gateway() -> Iterator[RecordingGateway | None]:
    if not RECORDING:
        yield None
        return
    recording = RecordingGateway()
    try:
        yield recording
    finally:
        recording.close()


def _client(gateway: RecordingGateway | None, upstream: str, policies: list[dict[str, Any]]) -> ailink.AIlinkClient:
    if gateway is None:
        return ailink.AIlinkClient("ailink_v1_REDACTED", REPLAY_URL, agent_name="cassette-agent", retries=0)
    return ailink.AIlinkClient(gateway.token(upstream, policies), gateway.url, agent_name="cassette-agent", retries=0)


Scenario = Callable[[ailink.AIlinkClient, "RecordingGateway | None"], None]


def customer_lookup(client: ailink.AIlinkClient, gateway: RecordingGateway | None) -> None:
    response = client.get("/v1/customers/cus_001")
    assert response.status_code == 200 and response.json()["name"] == "Ada Lovelace"


def charge_after_approval(client: ailink.AIlinkClient, gateway: RecordingGateway | None) -> None:
    approver = gateway.approve_next() if gateway else None
    response = client.post("/v1/charges", json={"amount": 5000, "currency": "usd", "customer": "cus_001"},
                           idempotency_key="cassette-charge-1", wait_for_approval=True, approval_timeout=300)
    if approver:
        approver.join()
    assert response.status_code == 200
    assert response.headers["idempotent-replayed"] == "true"
    assert response.json()["amount"] == 5000


def refund_denied(client: ailink.AIlinkClient, gateway: RecordingGateway | None) -> None:
    with pytest.raises(ailink.PolicyDeniedError) as caught:
        client.post("/v1/refunds", json={"charge": "ch_1"}, idempotency_key="cassette-refund-1")
    assert caught.value.policy_name == "block-refunds"


def chat_completion(client: ailink.AIlinkClient, gateway: RecordingGateway | None) -> None:
    reply = client.openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello cassette"}]
    )
    assert "hello cassette" in (reply.choices[0].message.content or "")


SCENARIOS: dict[str, tuple[Scenario, str, list[dict[str, Any]]]] = {
    "customer_lookup": (customer_lookup, "http://payments.mock", []),
    "charge_after_approval": (charge_after_approval, "http://payments.mock", [APPROVAL]),
    "refund_denied": (refund_denied, "http://payments.mock", [DENY_REFUNDS]),
    "chat_completion": (chat_completion, "http://llm.mock", []),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replay(name: str, gateway: RecordingGateway | None) -> None:
    scenario, upstream, policies = SCENARIOS[name]
    with _client(gateway, upstream, policies) as client, _cassette(name) as cassette:
        scenario(client, gateway)
    if not RECORDING:
        assert cassette.play_count >= 1 and cassette.all_played


def test_no_secret_in_any_cassette() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.stem for f in files} >= set(SCENARIOS)
    for path in files:
        text = path.read_text()
        assert "REDACTED" in text, path.name  # the scrubbing ran
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path.name}: {pattern.pattern}"
