"""The ``ailink.testing`` plugin: fixtures, helpers and the secret-scrubbing vcr config."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from ailink.emulator import EmulatorHost, HostedEmulator, create_app, run_in_thread
from ailink.testing import EmulatorGateway, scrub_text, start_gateway, vcr_config

from .conftest import bearer, client


def test_fixture_gives_a_fresh_gateway(ailink_gateway: EmulatorGateway, ailink_gateway_url: str) -> None:
    assert ailink_gateway_url == ailink_gateway.url and ailink_gateway.url.startswith("http://127.0.0.1:")
    assert ailink_gateway.pending_approvals() == []
    assert ailink_gateway.payments_stats()["total_executions"] == 0
    assert "admin_key" not in repr(ailink_gateway) and ailink_gateway.admin_key not in repr(ailink_gateway)


def test_admin_property_is_the_core_admin_client(ailink_gateway: EmulatorGateway) -> None:
    admin = ailink_gateway.admin
    assert admin is ailink_gateway.admin
    assert ailink_gateway.admin_key not in repr(admin)


def test_approve_when_pending_reports_failures(ailink_gateway: EmulatorGateway) -> None:
    handle = ailink_gateway.approve_when_pending(1, timeout=0.2)
    with pytest.raises(TimeoutError):
        handle.join()


def test_reset_stats(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token()
    with client(ailink_gateway) as c:
        c.post("/v1/charges", json={"amount": 5}, headers=bearer(token, **{"Idempotency-Key": "x"}))
    assert ailink_gateway.payments_stats()["charges"] == 1
    ailink_gateway.reset_stats()
    assert ailink_gateway.payments_stats() == {"total_executions": 0, "charges": 0, "refunds": 0,
                                               "by_idempotency_key": {}}


def test_demo_seed_is_created_once_per_database(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    with run_in_thread(db_path=db, seed="demo") as emu:
        seed = emu.seed
        assert seed is not None and seed.payments_token not in repr(seed)
        with httpx.Client(base_url=emu.url) as c:
            pay = bearer(seed.payments_token)
            assert c.get("/v1/customers", headers=pay).status_code == 200
            refund = c.post("/v1/refunds", json={"charge": "ch_1"}, headers=pay)
            assert refund.status_code == 403 and refund.json()["error"]["details"]["policy"] == "block-refunds"
            big = c.post("/v1/charges", json={"amount": 1500}, headers={**pay, "Prefer": "respond-async"})
            assert big.status_code == 202 and big.json()["policy"] == "charges-over-1000"
            assert c.post("/v1/charges", json={"amount": 999}, headers=pay).status_code == 200
            llm = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hey"}]},
                         headers=bearer(seed.llm_token))
            assert llm.json()["choices"][0]["message"]["content"] == "Echo: hey"
    again = create_app(db, seed="demo").state.demo_seed
    assert again.payments_token == seed.payments_token and again.llm_token == seed.llm_token


def test_scrub_text() -> None:
    text = ('{"token_id": "ailink_v1_ab12cd34_tok_0123456789abcdef", "key": "sk-proj-AbC123xyz789",'
            ' "admin": "ailink_admin_Zx9-_yy"}')
    scrubbed = scrub_text(text)
    assert "0123456789abcdef" not in scrubbed and "AbC123xyz789" not in scrubbed and "Zx9" not in scrubbed
    assert "ailink_v1_REDACTED" in scrubbed and "sk-REDACTED" in scrubbed


def test_vcr_cassette_has_no_secret_and_replays(ailink_gateway: EmulatorGateway, tmp_path: Path) -> None:
    vcr = pytest.importorskip("vcr")
    token = ailink_gateway.create_token(credential_secret="sk-cassette-secret-abcdef")
    cassette = tmp_path / "exchange.yaml"
    recorder = vcr.VCR(**vcr_config(), record_mode="once")

    def exchange() -> list[httpx.Response]:
        with httpx.Client(base_url=ailink_gateway.url) as c:
            return [
                c.post("/v1/charges", json={"amount": 42, "note": "sk-in-body-secret-123456"},
                       headers=bearer(token, **{"Idempotency-Key": str(uuid.uuid4()),
                                                "traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
                                                "X-Real-Authorization": "Bearer sk-byok-secret-999999"})),
                c.post("/api/v1/tokens", json={"name": "t", "upstream_url": "http://payments.mock"},
                       headers={"X-Admin-Key": ailink_gateway.admin_key}),
            ]

    with recorder.use_cassette(str(cassette)):
        recorded = exchange()
    text = cassette.read_text()
    new_token = recorded[1].json()["token_id"]
    for secret in (token, new_token, ailink_gateway.admin_key, "sk-cassette-secret-abcdef",
                   "sk-in-body-secret-123456", "sk-byok-secret-999999"):
        assert secret not in text
    assert "REDACTED" in text
    # replay: new idempotency key and traceparent values still match the recorded requests
    stats_before = ailink_gateway.payments_stats()["total_executions"]
    with recorder.use_cassette(str(cassette), record_mode="none") as cass:
        replayed = exchange()
        assert cass.play_count == 2
    assert replayed[0].json()["amount"] == 42
    assert ailink_gateway.payments_stats()["total_executions"] == stats_before  # nothing reached the gateway


@pytest.mark.parametrize("generation", ["ailink", "trueflow"])
def test_ailink_dev_command(tmp_path: Path, generation: str) -> None:
    import socket

    env, prefix = ("AILINK_", "ailink_v1_") if generation == "ailink" else ("TRUEFLOW_", "tf_v1_")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code = "import sys; from ailink.emulator import main_dev; sys.exit(main_dev(sys.argv[1:]))"
    slack = "http://127.0.0.1:9/services/T000/B000/SLACKSECRETPATH"  # loopback, closed: nothing is sent anywhere
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", str(port), "--seed", "demo", "--profile", "real",
                             "--generation", generation,
                             "--webhook", "http://127.0.0.1:9/hooks", "--slack-webhook", slack],
                            cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "AILINK_ADMIN_KEY": ""})
    try:
        deadline = time.monotonic() + 20
        ok = False
        while time.monotonic() < deadline and not ok:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.1)
        assert ok, "ailink dev did not start"
        key_file = tmp_path / ".ailink" / "admin_key"
        assert (key_file.stat().st_mode & 0o777) == 0o600
        key = key_file.read_text().strip()
        assert (tmp_path / ".ailink" / "emulator.db").exists()
        resp = httpx.get(f"http://127.0.0.1:{port}/api/v1/approvals", headers={"X-Admin-Key": key})
        assert resp.status_code == 200
        # --profile real: bare management errors, no extension header on the data plane
        unauthorised = httpx.get(f"http://127.0.0.1:{port}/api/v1/approvals")
        assert unauthorised.status_code == 401 and unauthorised.content == b""
        assert "x-ailink-extensions" not in httpx.get(f"http://127.0.0.1:{port}/v1/customers").headers
        exported = dict(line[len("export "):].split("=", 1) for line in
                        (tmp_path / ".ailink" / "dev.env").read_text().splitlines() if line.startswith("export "))
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/customers/cus_001",
                           headers={"Authorization": f"Bearer {exported[env + 'API_KEY']}"})
        assert answer.status_code == 200 and answer.headers[f"x-{generation}-cb-state"] == "closed"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}" in out and f"profile real, generation {generation}" in out
    assert f"inbox:     http://127.0.0.1:{port}/ui" in out
    assert "webhook:   http://127.0.0.1:9/hooks (json)" in out and "webhook:   http://127.0.0.1/… (slack)" in out
    assert "SLACKSECRETPATH" not in out  # a Slack webhook URL is a secret
    assert str(Path(".ailink") / "admin_key") in out
    assert key not in out
    env_file = tmp_path / ".ailink" / "dev.env"
    assert (env_file.stat().st_mode & 0o777) == 0o600
    exported = dict(line[len("export "):].split("=", 1) for line in env_file.read_text().splitlines()
                    if line.startswith("export "))
    # the variable names that generation's SDK reads (this client reads either)
    assert exported[env + "ADMIN_KEY"] == key
    assert exported[env + "GATEWAY_URL"] == f"http://127.0.0.1:{port}"
    for name in (env + "API_KEY", env + "LLM_TOKEN"):  # the demo tokens: in the file, never printed
        assert exported[name].startswith(prefix) and exported[name] not in out
    token_line = next(line for line in out.splitlines() if "demo payments token" in line)
    assert prefix in token_line and "…" in token_line  # masked
    assert f"source {Path('.ailink') / 'dev.env'}" in out
    db_files = [p for p in (tmp_path / ".ailink").iterdir() if p.name.startswith("emulator.db")]
    assert db_files and all((p.stat().st_mode & 0o777) == 0o600 for p in db_files)


# ---------------------------------------------------------------------- the emulator host


def test_emulators_on_one_host_share_nothing(ailink_emulator_host: EmulatorHost) -> None:
    (first, stop_first), (second, stop_second) = (start_gateway(host=ailink_emulator_host) for _ in range(2))
    try:
        assert first.url != second.url and first.admin_key != second.admin_key
        assert isinstance(first.running, HostedEmulator)
        policy = {"name": "big", "rules": [{"when": {"field": "request.body.amount", "op": "gt", "value": 1000},
                                            "then": {"action": "require_approval"}}]}
        token = first.create_token(policies=[policy])
        with client(first) as c:
            assert c.post("/v1/charges", json={"amount": 5}, headers=bearer(token)).status_code == 200
            parked = c.post("/v1/charges", json={"amount": 5000}, headers=bearer(token, Prefer="respond-async"))
            assert parked.status_code == 202
        with client(second) as c:
            assert c.post("/v1/charges", json={"amount": 5}, headers=bearer(token)).status_code == 401
            refused = c.get("/api/v1/tokens", headers={"X-Admin-Key": first.admin_key})
            assert refused.status_code == 401  # one emulator's admin key is nothing to another
        assert len(first.pending_approvals()) == 1 and second.pending_approvals() == []
        assert first.payments_stats()["charges"] == 1 and second.payments_stats()["charges"] == 0
        assert second.audit() == [] and len(first.audit()) == 2
    finally:
        stop_first()
        stop_second()
    names = [t.name for t in threading.enumerate()]
    assert "ailink-emulator-host" in names
    assert not any(name.startswith("ailink-emulator-") and name != "ailink-emulator-host" for name in names)


def test_a_host_never_hands_out_a_port_twice() -> None:
    with EmulatorHost() as host:
        urls = []
        for _ in range(25):
            emulator = host.start()
            urls.append(emulator.url)
            emulator.stop()  # its port is free again for the OS, not for this host
        assert len(set(urls)) == 25
        assert not any(e.running for e in host._served)
    with pytest.raises(RuntimeError):
        host.start()


def test_a_hosted_emulator_restarts_on_its_database(ailink_emulator_host: EmulatorHost, tmp_path: Path) -> None:
    db = str(tmp_path / "hosted.db")
    gateway, stop = start_gateway(host=ailink_emulator_host, db_path=db, admin_key="hosted-admin-key")
    policy = {"name": "all", "rules": [{"when": {"always": True}, "then": {"action": "require_approval"}}]}
    token = gateway.create_token(policies=[policy])
    with client(gateway) as c:
        parked = c.post("/v1/charges", json={"amount": 5}, headers=bearer(token, Prefer="respond-async"))
    stop()  # a file database: waits until the server is gone
    assert not gateway.running.running
    again, stop_again = start_gateway(host=ailink_emulator_host, db_path=db, admin_key="hosted-admin-key")
    try:
        assert [p["id"] for p in again.pending_approvals()] == [parked.json()["approval_id"]]
        again.decide(parked.json()["approval_id"], "approved")
        with client(again) as c:
            result = c.get(f"/v1/approvals/{parked.json()['approval_id']}/result", headers=bearer(token))
        assert result.status_code == 200 and result.json()["amount"] == 5
    finally:
        stop_again()


def test_fresh_fixture_has_a_thread_of_its_own(ailink_gateway_fresh: EmulatorGateway) -> None:
    running = ailink_gateway_fresh.running
    assert not isinstance(running, HostedEmulator) and running.running
    assert f"ailink-emulator-{ailink_gateway_fresh.url.rsplit(':', 1)[1]}" in [t.name for t in threading.enumerate()]
    token = ailink_gateway_fresh.create_token()
    with client(ailink_gateway_fresh) as c:
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200


PLUGIN_TESTS = '''
import os
from ailink.emulator import HostedEmulator

SEEN = {}


def test_first(ailink_gateway, ailink_gateway_real):
    assert isinstance(ailink_gateway.running, HostedEmulator) == (os.environ["EXPECT"] == "hosted")
    SEEN["url"], SEEN["token"] = ailink_gateway.url, ailink_gateway.create_token()
    assert ailink_gateway_real.url != ailink_gateway.url


def test_second_sees_nothing_of_the_first(ailink_gateway):
    import httpx
    assert ailink_gateway.url != SEEN["url"]
    answer = httpx.get(ailink_gateway.url + "/v1/customers", headers={"Authorization": "Bearer " + SEEN["token"]})
    assert answer.status_code == 401
    assert ailink_gateway.payments_stats()["total_executions"] == 0
'''


@pytest.mark.parametrize(("option", "expect"), [(None, "hosted"), ("--ailink-fresh-gateway", "fresh")])
def test_the_plugin_hosts_by_default_and_fresh_on_request(tmp_path: Path, option: str | None, expect: str) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["ailink.testing"]\n')
    (tmp_path / "test_plugin_use.py").write_text(PLUGIN_TESTS)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path),
                           *([option] if option else [])], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "EXPECT": expect}, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
