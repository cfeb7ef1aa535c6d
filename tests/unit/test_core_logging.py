"""Waits you can see: the ``ailink`` logger (silent by default; ``AILINK_LOG`` turns it on), and
showing agent-controlled text to people."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

from ailink import _logs
from ailink._display import until, visible

from .helpers import SECRETS, TOKEN, Driver, FakeClock, Recorder, gateway_error, pending_answer


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Turn the logger on at ``info`` (as ``AILINK_LOG=info`` does); yields a reader of what it printed."""
    _logs.configure("info")
    try:
        yield lambda: capsys.readouterr().err
    finally:
        _logs.configure("")


def _approved(approval_id: str = "apr_1") -> list[httpx.Response]:
    return [httpx.Response(200, json={"approval_id": approval_id, "status": "approved", "reason": "fine"}),
            httpx.Response(200, json={"id": "ch_1", "status": "succeeded"})]


async def test_silent_by_default(driver: Driver, clock: FakeClock, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILINK_LOG", raising=False)
    _logs.configure()
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("ailink").handlers)
    recorder = Recorder(script=[gateway_error(503, "all_upstreams_exhausted"), pending_answer(), *_approved()])
    client = driver.client(recorder)
    response = await driver.call(client, "POST", "/v1/charges", json={"amount": 5000}, wait_for_approval=True)
    assert response.status_code == 200
    assert capsys.readouterr().err == ""


async def test_a_parked_call_says_its_approval_id_and_how_to_decide(driver: Driver, clock: FakeClock,
                                                                    logs: Callable[[], str]) -> None:
    read = logs
    parked = pending_answer("apr_7f3a")
    body = {**parked.json(), "review_url": "http://127.0.0.1:8443/ui/approvals/apr_7f3a"}
    recorder = Recorder(script=[httpx.Response(202, headers=parked.headers, json=body), *_approved("apr_7f3a")])
    client = driver.client(recorder)
    await driver.call(client, "POST", "/v1/charges", json={"amount": 5000}, wait_for_approval=True)
    text = read()
    assert "[ailink INFO] POST /v1/charges is waiting for human approval apr_7f3a (policy 'charges-need-approval')" \
        in text
    assert "ailink approvals approve apr_7f3a" in text and "ailink approvals reject apr_7f3a" in text
    assert "in the inbox: http://127.0.0.1:8443/ui/approvals/apr_7f3a" in text
    assert "approval apr_7f3a approved after" in text and ": fine" in text
    assert not any(secret in text for secret in SECRETS)


async def test_rejections_retries_and_parked_calls_not_waited_for(driver: Driver, clock: FakeClock,
                                                                 logs: Callable[[], str]) -> None:
    read = logs
    recorder = Recorder(script=[
        gateway_error(429, "rate_limit_exceeded", headers={"Retry-After": "0"}), pending_answer("apr_2"),
        httpx.Response(200, json={"approval_id": "apr_2", "status": "rejected", "reason": "too much"}),
    ])
    client = driver.client(recorder)
    with pytest.raises(Exception, match="rejected"):
        await driver.call(client, "POST", "/v1/charges", json={"amount": 5000}, wait_for_approval=True)
    text = read()
    assert "retry 1 of 2 for POST http://gateway.test/v1/charges in 0.00 s (HTTP 429 rate_limit_exceeded)" in text
    assert "[ailink WARNING] approval apr_2 rejected after" in text and "too much" in text

    recorder.script = [pending_answer("apr_3")]
    answer = await driver.call(client, "POST", "/v1/charges", json={"amount": 5000})
    assert answer.status_code == 202
    assert "parked for human approval apr_3 (not waiting). Decide with: ailink approvals approve apr_3" in read()
    assert TOKEN not in read()


def test_messages_are_scrubbed_whatever_logs_them(logs: Callable[[], str]) -> None:
    read = logs
    _logs.logger.warning("calling http://user:hunter2@gw.test/v1?api_key=abc with %s", TOKEN)
    text = read()
    assert "hunter2" not in text and "api_key=abc" not in text and TOKEN not in text
    assert "ailink_v1_PLAN…" in text
    _logs.configure("")
    _logs.logger.warning("quiet again")
    assert read() == ""


def test_visible_shows_control_and_direction_characters() -> None:
    assert visible("plain text") == "plain text"
    assert visible(None) == ""
    assert visible("a\x1b[2Jb") == "a⟨U+001B⟩[2Jb"
    assert visible("invoice\u202egpj.exe") == "invoice⟨U+202E⟩gpj.exe"
    assert visible("zero\u200bwidth") == "zero⟨U+200B⟩width"
    assert visible("two\nlines\tand tab", keep_newlines=True) == "two\nlines\tand tab"
    assert visible("two\nlines") == "two⟨U+000A⟩lines"
    assert visible("naïve café ✓") == "naïve café ✓"  # ordinary non-ASCII text is untouched
    assert until("not a time") == "" and until("2000-01-01T00:00:00Z") == "passed"
    assert until("2999-01-01T00:00:00Z").startswith("in ")
