"""Hostile gateway answers (protocol §10.4): seeded, bounded generation of malformed answers,
run on ``AIlinkClient`` and ``AsyncClient`` (and through ``GatewayTool``).

Whatever the gateway answers, only typed ``AIlinkError`` subclasses escape a client (never
``TypeError``, ``ValueError``, ``KeyError`` or ``httpx.DecodingError``), error text stays within
~1,100 characters with the whole body kept on ``exc.response``, a tool call returns a
``ToolResult``, and nothing waits past the caller's deadline. MockTransport cases use the fake
clock (no real waiting); the trickle cases use a loopback stub gateway and real time, with a
generous bound (3 x the deadline): the assertion is about not hanging, not speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import ailink

from .helpers import TOKEN, Driver, FakeClock, Recorder, fast_retry, pending_answer

SEED = int(os.environ.get("AILINK_HOSTILE_SEED", "20240611"))
MAX_ERROR_TEXT = 1100
MAX_REQUESTS = 60  # a client that keeps asking a hostile gateway forever would hang
TEN_MB = 10 * 1024 * 1024
ERROR_STATUSES = (400, 401, 402, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504)
CODES_BY_STATUS = {401: "token_not_found", 402: "spend_cap_reached", 403: "policy_denied", 404: "not_found",
                   408: "approval_timeout", 409: "idempotency_in_progress", 422: "validation_error",
                   429: "rate_limit_exceeded", 500: "internal_server_error", 502: "upstream_failed",
                   503: "all_upstreams_exhausted"}
ACTION = ailink.ToolAction(name="payments", description="Payments API", methods=("GET", "POST"),
                           max_response_chars=2000)

Respond = Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class Case:
    """One hostile gateway: ``respond`` answers the call, ``poll`` the approval endpoints."""

    name: str
    respond: Respond
    poll: Respond | None = None
    method: str = "POST"
    wait: bool = False


def _json(status: int, doc: Any, headers: dict[str, str] | None = None) -> Respond:
    def respond(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=doc, headers=headers)

    return respond


def _body(status: int, error: Any) -> Respond:
    return _json(status, {"error": error})


def _raw(status: int, content: bytes, headers: dict[str, str] | None = None) -> Respond:
    def respond(_: httpx.Request) -> httpx.Response:
        # a stream (not content=) so that httpx decodes, and may fail to decode, while the client reads
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))

    return respond


def _pending_then(poll: Respond, **pending: Any) -> tuple[Respond, Respond]:
    def respond(_: httpx.Request) -> httpx.Response:
        answer = pending_answer(**pending)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return respond, poll


def _cases() -> list[Case]:
    """Every hostile answer, drawn from one seed (stable ids, bounded count)."""
    rng = random.Random(SEED)
    cases: list[Case] = []

    def status() -> int:
        return rng.choice(ERROR_STATUSES)

    # error.code of every JSON type but a string
    for i, code in enumerate([["policy_denied"], {"code": "policy_denied"}, 403, 4.5, None, True, ""]):
        s = status()
        cases.append(Case(f"code-{type(code).__name__}-{i}-{s}",
                          _body(s, {"code": code, "message": "m", "type": "t"}), method=rng.choice(["GET", "POST"])))
    # details that are not an object, for the codes that read details
    for i, details in enumerate([[1, 2], "details", 7, True, None]):
        s = rng.choice([403, 408, 429, 409])
        code = {403: rng.choice(["policy_denied", "approval_rejected"]), 408: "approval_timeout",
                429: "rate_limit_exceeded", 409: "idempotency_in_progress"}[s]
        cases.append(Case(f"details-{type(details).__name__}-{i}-{code}",
                          _body(s, {"code": code, "message": "m", "type": "t", "details": details})))
    # details.retry_after of the wrong kind or size
    for i, value in enumerate(["soon", -5, 1e308, "NaN", [], {"s": 1}, "1e400", True]):
        cases.append(Case(f"details-retry-after-{i}", _body(429, {
            "code": "rate_limit_exceeded", "message": "slow down", "type": "rate_limit_error",
            "details": {"retry_after": value, "policy": ["not", "a", "name"]}})))
    # Retry-After headers that are not delta-seconds
    for i, value in enumerate(["soon", "-1", "1e309", "Wed, 21 Oct 2015 07:28:00 GMT", "nan", "inf", "",
                               "9" * 400, "0x10", "1_000"]):
        s = rng.choice([429, 503, 409])
        code = CODES_BY_STATUS[s]
        cases.append(Case(f"retry-after-header-{i}-{s}", _raw(s, json.dumps(
            {"error": {"code": code, "message": "m", "type": "t"}}).encode(),
            {"content-type": "application/json", "retry-after": value}), method=rng.choice(["GET", "POST"])))
    # bodies that are not JSON, or JSON of the wrong shape
    garbage = [b"<html><body>oops</body></html>", b"\x00\xff\xfe\xfd", bytes(rng.getrandbits(8) for _ in range(64)),
               b"", b"null", b"[]", b'"string"', b"1e999999", b'{"error": "flat string"}', b'{"error": null}']
    for i, content in enumerate(garbage):
        s = rng.choice([*ERROR_STATUSES, 200, 201])
        cases.append(Case(f"not-json-{i}-{s}", _raw(s, content, {"content-type": "application/json"}),
                          method=rng.choice(["GET", "POST"])))
    # truncated JSON
    whole = json.dumps({"error": {"code": "policy_denied", "message": "Request blocked by policy 'p': no",
                                  "type": "permission_error", "details": {"policy": "p"}}}).encode()
    for i in range(6):
        cut = rng.randrange(1, len(whole) - 1)
        cases.append(Case(f"truncated-json-{i}-at-{cut}", _raw(rng.choice([403, 502, 200]), whole[:cut],
                                                               {"content-type": "application/json"})))
    # Content-Encoding that does not match the bytes
    for i, (s, encoding) in enumerate([(500, "gzip"), (200, "gzip"), (403, "gzip"), (502, "deflate"),
                                       (201, "br"), (429, "gzip")]):
        cases.append(Case(f"bad-{encoding}-{i}-{s}", _raw(s, b"definitely not compressed " * 4,
                                                          {"content-encoding": encoding,
                                                           "content-type": "application/json"}),
                          method=rng.choice(["GET", "POST"])))
    # a 10 MB error message (gateway-shaped and passed through from upstream)
    cases.append(Case("huge-gateway-message", _body(502, {"code": "upstream_failed", "message": "x" * TEN_MB,
                                                          "type": "upstream_error"})))
    cases.append(Case("huge-policy-message", _body(403, {"code": "policy_denied",
                                                         "message": "Request blocked by policy 'p': " + "y" * TEN_MB,
                                                         "type": "permission_error"})))
    cases.append(Case("huge-upstream-body", _raw(500, b"z" * TEN_MB, {"content-type": "text/plain",
                                                                      "x-ailink-cb-state": "closed"})))
    # a 202 without a usable approval id
    for i, body in enumerate([{"status": "pending_approval"}, {"status": "pending_approval", "approval_id": 123},
                              {"status": "pending_approval", "approval_id": ""},
                              {"status": "pending_approval", "approval_id": ["apr_1"]},
                              {"status": "pending_approval", "approval_id": "apr_1", "expires_at": "yesterday",
                               "summary": "not a dict", "policy": 5}]):
        cases.append(Case(f"accepted-without-id-{i}", _json(202, body, {"retry-after": "garbage"}),
                          poll=_body(404, {"code": "approval_not_found", "message": "m", "type": "t"}), wait=True))
    # approval polls answering statuses nobody defined
    statuses: list[dict[str, Any]] = [{"status": "maybe"}, {"status": 5}, {}, {"status": "APPROVED"},
                                      {"status": None}, {"status": ["approved"]}]
    for i, status_doc in enumerate(statuses):
        respond, poll_fn = _pending_then(_json(200, {"approval_id": "apr_1", **status_doc}))
        cases.append(Case(f"approval-status-{i}", respond, poll=poll_fn, wait=True))
    # approval polls with broken bodies
    for i, respond_poll in enumerate([_raw(200, b"<html>", {"content-type": "text/html"}),
                                      _raw(200, b"[1, 2]", {"content-type": "application/json"}),
                                      _raw(200, b"\x1f\x8b garbage", {"content-encoding": "gzip"}),
                                      _raw(500, b"<html>proxy error</html>", {"content-type": "text/html"})]):
        respond, poll_fn = _pending_then(respond_poll)
        cases.append(Case(f"approval-poll-broken-{i}", respond, poll=poll_fn, wait=True))
    return cases


CASES = _cases()


def _gateway(case: Case) -> Respond:
    def handle(request: httpx.Request) -> httpx.Response:
        if case.poll is not None and request.url.path.startswith("/v1/approvals/"):
            return case.poll(request)
        return case.respond(request)

    return handle


def _check_error(exc: BaseException) -> None:
    """Typed, and short (the failure message never carries a huge text itself)."""
    if not isinstance(exc, ailink.AIlinkError):
        pytest.fail(f"an untyped {type(exc).__module__}.{type(exc).__name__} escaped: {str(exc)[:300]!r}")
    text_length, repr_length = len(str(exc)), len(repr(exc))
    assert text_length <= MAX_ERROR_TEXT, f"error text of {text_length} characters: {str(exc)[:200]!r}..."
    assert repr_length <= MAX_ERROR_TEXT + 200, f"repr of {repr_length} characters: {repr(exc)[:200]}..."


async def _outcome(call: Any) -> tuple[Any, BaseException | None]:
    """Await ``call``; the exception is returned (checked outside the handler, so a failure does
    not print a chained 10 MB message)."""
    try:
        return await call, None
    except BaseException as exc:
        return None, exc


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_client_raises_only_typed_errors(driver: Driver, clock: FakeClock, case: Case) -> None:
    recorder = Recorder(default=_gateway(case))
    client = driver.client(recorder, approval_timeout=30)
    kwargs: dict[str, Any] = {"json": {"amount": 5}} if case.method == "POST" else {}
    response, error = await _outcome(
        driver.call(client, case.method, "/v1/charges", wait_for_approval=case.wait, **kwargs))
    if error is None:
        assert isinstance(response, httpx.Response)
    else:
        _check_error(error)
        assert isinstance(error, ailink.AIlinkError)
        if error.response is not None and case.poll is None:
            expected = case.respond(recorder.requests[-1])
            if "content-encoding" not in expected.headers:
                same = error.response.content == expected.read()
                assert same, "the error's response does not hold the whole body"
    assert len(recorder.requests) <= MAX_REQUESTS


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_tool_returns_a_result_for_every_answer(driver: Driver, clock: FakeClock, case: Case) -> None:
    recorder = Recorder(default=_gateway(case))
    tool = driver.tool(recorder, ACTION, approval_timeout=30)
    args: dict[str, Any] = {"method": case.method, "path": "/v1/charges"}
    if case.method == "POST":
        args["body"] = {"amount": 5}
    result, error = await _outcome(driver.run_tool(tool, args))
    if error is not None:
        pytest.fail(f"GatewayTool raised {type(error).__name__} instead of returning a ToolResult: "
                    f"{str(error)[:300]!r}")
    assert isinstance(result, ailink.ToolResult)
    content_length = len(result.content)
    assert content_length <= ACTION.max_response_chars + 200
    assert len(recorder.requests) <= MAX_REQUESTS


async def test_upstream_401_with_a_gateway_looking_body_is_not_an_authentication_error(driver: Driver) -> None:
    body = {"error": {"code": "token_not_found", "message": "Invalid API key provided", "type": "authentication_error"}}
    recorder = Recorder(default=httpx.Response(401, json=body, headers={"x-ailink-cb-state": "closed"}))
    client = driver.client(recorder)
    with pytest.raises(ailink.AIlinkError) as info:
        await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    assert not isinstance(info.value, ailink.AuthenticationError)
    assert isinstance(info.value, ailink.UpstreamError)
    assert info.value.status_code == 401
    result = await driver.run_tool(driver.tool(recorder, ACTION), {"method": "POST", "path": "/v1/charges",
                                                                  "body": {"amount": 5}})
    assert result.is_error and result.status_code == 401


# -- real time: a loopback stub gateway that trickles ---------------------------------------------

DEADLINE = 3.0
HANG_BOUND = 3 * DEADLINE
TRICKLE_INTERVAL = 0.5


class _TrickleGateway(BaseHTTPRequestHandler):
    """POST /v1/charges trickles a 201; ``/v1/approvals/...`` trickles a poll answer; a POST to
    /v1/gated answers a valid 202 at once."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _trickle(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(TRICKLE_INTERVAL)
        except OSError:  # the client gave up: stop
            return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.startswith("/v1/gated"):
            answer = pending_answer("apr_trickle", retry_after="1")
            self.send_response(202)
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length",):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)
            return
        self._trickle(201, b'{"id": "ch_1", "p": "pp"}')  # 25 bytes: 12.5 s at full length

    def do_GET(self) -> None:
        self._trickle(200, b'{"status": "approved"}')  # 22 bytes: 11 s at full length

    def do_DELETE(self) -> None:
        self._trickle(200, b'{"status": "cancelled"}')


@pytest.fixture
def trickle_gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrickleGateway)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def _timed(driver: Driver, url: str, call: Callable[[Any], Any]) -> tuple[float, BaseException | None]:
    options: dict[str, Any] = {"timeout": DEADLINE, "retries": fast_retry(0), "approval_timeout": DEADLINE}
    if driver.kind == "sync":
        sync_client = ailink.AIlinkClient(TOKEN, url, **options)
        started = time.monotonic()
        try:
            await asyncio.to_thread(call, sync_client)
        except BaseException as exc:
            return time.monotonic() - started, exc
        finally:
            sync_client.close()
        return time.monotonic() - started, None
    async_client = ailink.AsyncClient(TOKEN, url, **options)
    started = time.monotonic()
    try:
        await call(async_client)
    except BaseException as exc:
        return time.monotonic() - started, exc
    finally:
        await async_client.aclose()
    return time.monotonic() - started, None


async def test_a_trickled_answer_ends_by_the_deadline(driver: Driver, trickle_gateway: str) -> None:
    elapsed, error = await _timed(driver, trickle_gateway,
                                  lambda client: client.post("/v1/charges", json={"amount": 5}))
    assert elapsed < HANG_BOUND, f"a 1-byte-per-{TRICKLE_INTERVAL}s answer held the call for {elapsed:.1f} s"
    assert error is not None
    _check_error(error)


async def test_a_trickled_approval_poll_ends_by_the_deadline(driver: Driver, trickle_gateway: str) -> None:
    elapsed, error = await _timed(driver, trickle_gateway, lambda client: client.post(
        "/v1/gated", json={"amount": 5000}, wait_for_approval=True, approval_timeout=DEADLINE))
    assert elapsed < HANG_BOUND, f"a trickled approval poll held the call for {elapsed:.1f} s"
    assert error is not None
    _check_error(error)
