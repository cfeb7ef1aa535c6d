"""A gateway URL with a password, and recordings of APIs whose secrets have no known prefix.

The password never shows in reprs, connection-failure errors or CLI output; ``vcr_config()``
keeps secret-named fields, form fields, URL parameters and cookies out of a cassette recorded
over loopback, and the cassette still replays.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import vcr

import ailink
from ailink._cli import main
from ailink.testing import vcr_config

PASSWORD = "Pl4nted-gateway-password"
SECRETS = [f"Pl4nted-secret-{n}" for n in range(9)]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def password_url() -> str:
    """A gateway URL with user and password, on a loopback port nothing listens on."""
    return f"http://reviewer:{PASSWORD}@127.0.0.1:{closed_port()}"


def test_reprs_hide_the_url_password(password_url: str) -> None:
    from langchain_ailink import langchain_tool

    client = ailink.AIlinkClient("ailink_v1_PLANTEDurlTOKEN1234", password_url)
    admin = ailink.AIlinkClient.admin(admin_key="ailink_admin_PLANTEDurlKEY1234", gateway_url=password_url)
    tool = ailink.gateway_tool(name="t", description="d", client=client)
    adapter = langchain_tool(name="t", description="d", client=client)
    for obj in (client, client.settings, admin, tool, adapter, ailink.AsyncClient("ailink_v1_x1234", password_url)):
        assert PASSWORD not in repr(obj) and PASSWORD not in str(obj)
        assert "reviewer:***@127.0.0.1" in repr(obj)


@pytest.mark.parametrize("use_async", [False, True])
async def test_connection_failures_hide_the_url_password(password_url: str, use_async: bool) -> None:
    with pytest.raises(ailink.APIConnectionError) as info:
        if use_async:
            async with ailink.AsyncClient("ailink_v1_PLANTEDurlTOKEN1234", password_url, retries=0) as client:
                await client.post("/v1/charges", json={"amount": 1}, params={"api_key": PASSWORD})
        else:
            with ailink.AIlinkClient("ailink_v1_PLANTEDurlTOKEN1234", password_url, retries=0) as client:
                client.post("/v1/charges", json={"amount": 1}, params={"api_key": PASSWORD})
    error = info.value
    for text in (str(error), repr(error), error.message):
        assert PASSWORD not in text
    assert "127.0.0.1" in str(error)  # still says where it failed


@pytest.mark.parametrize("args", [["sessions", "show", "sess-1"], ["approvals", "list"],
                                  ["approvals", "approve", "apr_1"]])
def test_cli_errors_hide_the_url_password(password_url: str, args: list[str], monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("AILINK_ADMIN_KEY", "ailink_admin_PLANTEDcliKEY1234")
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--gateway-url", password_url]) == 1
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err and "PLANTEDcliKEY" not in out.out + out.err
    assert "Connection to the gateway failed" in out.out + out.err


def test_cli_refuses_a_malformed_url_without_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("AILINK_ADMIN_KEY", "ailink_admin_PLANTEDcliKEY1234")
    monkeypatch.chdir(tmp_path)
    assert main(["sessions", "show", "s", "--gateway-url", f"http://reviewer:{PASSWORD}@127.0.0.1:port"]) == 2
    out = capsys.readouterr()
    assert "Invalid port" in out.err and PASSWORD not in out.out + out.err and "Traceback" not in out.err


class _ProviderApi(BaseHTTPRequestHandler):
    """An API whose credentials have no recognisable prefix: an OAuth token endpoint and an echo."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, payload: object, cookie: str | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self._answer({"items": [{"id": "it_1"}], "next_page_token": "cursor-2", "limit": query["limit"][0]})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/oauth/token":
            self._answer({"access_token": SECRETS[1], "refresh_token": SECRETS[2], "token_type": "bearer",
                          "expires_in": 3600}, cookie=f"session={SECRETS[3]}; HttpOnly")
        else:
            self._answer({"echo": json.loads(raw), "account": {"id": "acc_1", "private_key": SECRETS[4]}})


@pytest.fixture
def provider_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProviderApi)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _exchange(base_url: str) -> list[httpx.Response]:
    with httpx.Client(base_url=base_url) as http:
        return [
            http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "app",
                                            "client_secret": SECRETS[0]}),
            http.get("/v1/items", params={"api_key": SECRETS[5], "limit": "2"}),
            http.post("/v1/config", json={"name": "prod", "max_tokens": 5,
                                          "credentials": {"user": "bob", "password": SECRETS[6]},
                                          "webhooks": [{"url": "https://hooks.example/x", "signingSecret": SECRETS[7]}],
                                          "upstream": f"https://svc:{SECRETS[8]}@api.example/v1"}),
        ]


def test_a_cassette_keeps_no_unprefixed_secret_and_replays(provider_api: str, tmp_path: Path) -> None:
    cassette = tmp_path / "provider.yaml"
    recorder = vcr.VCR(**vcr_config(), record_mode="once")
    with recorder.use_cassette(str(cassette)):
        live = _exchange(provider_api)
    assert live[0].json()["access_token"] == SECRETS[1]  # the program itself saw the real answers

    text = cassette.read_text()
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == []
    for kept in ("cursor-2", "client_credentials", "bearer", "acc_1", "hooks.example", "max_tokens"):
        assert kept in text

    with recorder.use_cassette(str(cassette), record_mode="none") as replay:  # matching still works
        replayed = _exchange(provider_api)
        assert replay.play_count == 3
    assert replayed[0].json() == {"access_token": "REDACTED", "refresh_token": "REDACTED", "token_type": "bearer",
                                  "expires_in": 3600}
    assert replayed[1].json()["next_page_token"] == "cursor-2"
    echo = replayed[2].json()["echo"]
    assert echo["credentials"] == "REDACTED" and echo["max_tokens"] == 5
    assert echo["upstream"] == "https://svc:REDACTED@api.example/v1"
