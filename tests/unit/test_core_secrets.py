"""A planted token, admin key and provider key never show up in reprs, errors, logs or tool content."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import ailink
from ailink import CallContext, ToolAction
from ailink._secrets import mask, redact, scrub

from .helpers import ADMIN_KEY, GATEWAY, SECRETS, TOKEN, UPSTREAM_KEY, Driver, Recorder, fast_retry, gateway_error


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret leaked: {text!r}"


def test_reprs_mask_secrets() -> None:
    client = ailink.AIlinkClient(TOKEN, GATEWAY, admin_key=ADMIN_KEY)
    aclient = ailink.AsyncClient(TOKEN, GATEWAY)
    admin = ailink.AIlinkClient.admin(admin_key=ADMIN_KEY, gateway_url=GATEWAY)
    aadmin = ailink.AsyncClient.admin(admin_key=ADMIN_KEY, gateway_url=GATEWAY)
    byok = client.with_upstream_key(UPSTREAM_KEY)
    tool = ailink.gateway_tool(name="t", description="d", token=TOKEN, gateway_url=GATEWAY)
    for obj in (client, aclient, admin, aadmin, byok, tool, client.settings, byok.settings, admin.settings):
        text = repr(obj)
        assert_clean(text)
        assert_clean(str(obj))
    assert "ailink_v1_PLAN…" in repr(client)
    assert "admin_key='ailink_admin_PLAN…'" in repr(admin)  # like tokens: prefix + 4 characters


def test_mask_and_scrub() -> None:
    assert mask(TOKEN) == "ailink_v1_PLAN…"
    assert mask(UPSTREAM_KEY) == "sk-plan…"
    assert mask(None) == "<none>"
    assert mask("short") == "…"
    assert_clean(scrub(f"a {TOKEN} b {UPSTREAM_KEY} c {ADMIN_KEY}"))
    assert redact(f"a {TOKEN} b {UPSTREAM_KEY} c {ADMIN_KEY}") == (
        "a ailink_v1_REDACTED b sk-REDACTED c ailink_admin_REDACTED"
    )


ERROR_ANSWERS = [
    lambda: gateway_error(401, "token_revoked", f"Token {TOKEN} was revoked"),
    lambda: gateway_error(403, "policy_denied", f"Request blocked by policy 'p': token {TOKEN} not allowed"),
    lambda: gateway_error(422, "validation_error", f"bad header X-Real-Authorization: Bearer {UPSTREAM_KEY}"),
    lambda: httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY}",
                                                "code": "invalid_api_key"}}),
    lambda: httpx.Response(500, text=f"debug dump: authorization=Bearer {TOKEN}"),
    lambda: httpx.ConnectError(f"failed to connect with {TOKEN}"),
    lambda: httpx.ReadTimeout(f"timeout for {TOKEN}"),
]


@pytest.mark.parametrize("answer", ERROR_ANSWERS, ids=[str(i) for i in range(len(ERROR_ANSWERS))])
async def test_errors_never_contain_secrets(driver: Driver, answer: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        item = answer()
        if isinstance(item, Exception):
            raise item
        return item  # type: ignore[no-any-return]

    recorder = Recorder(default=handler)
    client = driver.client(recorder, retries=fast_retry(1)).with_upstream_key(UPSTREAM_KEY)
    with pytest.raises(ailink.AIlinkError) as info:
        await driver.call(client, "POST", "/v1/charges", json={"token": TOKEN})
    error = info.value
    assert_clean(str(error))
    assert_clean(repr(error))
    assert_clean(error.message)
    assert_clean(json.dumps(error.details, default=str))


@pytest.mark.parametrize("answer", ERROR_ANSWERS[1:5], ids=[str(i) for i in range(1, 5)])
async def test_tool_content_never_contains_secrets(driver: Driver, answer: Any) -> None:
    recorder = Recorder(default=lambda request: answer())
    tool = driver.tool(recorder, ToolAction(name="t", description="d", methods=("POST",)))
    result = await driver.run_tool(tool, {"path": "/v1/charges", "body": {"a": 1}}, CallContext(session_id="s"))
    assert result.is_error
    assert_clean(result.content)
    assert_clean(result.reason or "")


async def test_ok_tool_content_echoing_a_secret_is_scrubbed(driver: Driver) -> None:
    echo = {"received_headers": {"authorization": f"Bearer {TOKEN}", "x-real-authorization": f"Bearer {UPSTREAM_KEY}"}}
    recorder = Recorder(default=httpx.Response(200, json=echo))
    tool = driver.tool(recorder, ToolAction(name="t", description="d"))
    result = await driver.run_tool(tool, {"path": "/v1/echo"}, CallContext(session_id="s"))
    assert result.ok
    assert_clean(result.content)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/v1/approvals/"):
            body = json.dumps({"status": "approved"}).encode() if "result" not in self.path else b'{"ok":1}'
        elif self.path.startswith("/v1/charges"):
            body = json.dumps({"status": "pending_approval", "approval_id": "apr_1"}).encode()
            self.send_response(202)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        else:
            body = json.dumps({"error": {"code": "token_revoked", "message": f"{TOKEN} revoked"}}).encode()
            self.send_response(401)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def loopback() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_debug_logs_never_contain_secrets(caplog: pytest.LogCaptureFixture, loopback: str) -> None:
    caplog.set_level(logging.DEBUG)
    with ailink.AIlinkClient(TOKEN, loopback, retries=0) as client:
        byok = client.with_upstream_key(UPSTREAM_KEY)
        response = byok.post("/v1/charges", json={"a": 1}, wait_for_approval=True, approval_timeout=5)
        assert response.json() == {"ok": 1}
        with pytest.raises(ailink.AuthenticationError):
            byok.get("/v1/other")
        tool = ailink.gateway_tool(name="t", description="d", client=byok, methods=("POST",))
        tool.run({"path": "/v1/charges", "body": {}}, CallContext(session_id="s"))
    admin = ailink.AIlinkClient.admin(admin_key=ADMIN_KEY, gateway_url=loopback, retries=0)
    with pytest.raises(ailink.AIlinkError):
        admin.tokens.list()
    admin.close()
    assert caplog.records, "expected httpx/httpcore debug records"
    for record in caplog.records:
        assert_clean(record.getMessage())
        assert_clean(repr(record.args))


def test_ordinary_words_that_contain_sk_dash_are_not_keys() -> None:
    # a reviewer must see "/v1/task-lists" as it will be sent, while real keys stay masked
    for text in ("/v1/task-lists", "mask-rules", "desk-booking-2026"):
        assert scrub(text) == text and redact(text) == text
    assert scrub(f"Bearer {UPSTREAM_KEY}") == "Bearer " + mask(UPSTREAM_KEY)
    assert scrub(f'{{"key": "{UPSTREAM_KEY}"}}') == f'{{"key": "{mask(UPSTREAM_KEY)}"}}'
    assert scrub("x" + TOKEN).endswith("…")  # the long prefixes stay masked anywhere
