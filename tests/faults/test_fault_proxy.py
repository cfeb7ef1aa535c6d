"""``ailink.faults``: the seeded schedule, every fault as the client sees it, HTTP framing, both hops."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import ailink
from ailink.faults import (
    DEFAULT_WEIGHTS,
    FAULTS,
    FORWARDING_FAULTS,
    CountingUpstream,
    FaultProxy,
    FaultSchedule,
)
from ailink.testing import EmulatorGateway

pytestmark = pytest.mark.faults


@pytest.fixture
def upstream() -> Iterator[CountingUpstream]:
    with CountingUpstream() as server:
        yield server


def _raw_exchange(url: str, request: bytes) -> tuple[bytes, str]:
    """Send raw bytes, read until the peer closes or resets; returns (bytes, how it ended)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                return data, "reset"
            if not piece:
                return data, "eof"
            data += piece


def _post_bytes(ref: str, *, close: bool = True) -> bytes:
    body = json.dumps({"ref": ref, "amount": 5}).encode()
    connection = b"Connection: close\r\n" if close else b""
    return (b"POST /v1/charges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + connection
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _split(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


# -- the schedule -------------------------------------------------------------------------------


def test_schedule_is_reproducible_from_the_seed() -> None:
    first = FaultSchedule(42)
    second = FaultSchedule(42)
    other = FaultSchedule(43)
    sequence = [first.next() for _ in range(300)]
    assert sequence == [second.next() for _ in range(300)]
    assert sequence != [other.next() for _ in range(300)]
    assert {f.name for f in sequence} == set(FAULTS)
    assert all(0 <= f.delay <= 0.2 for f in sequence)
    assert all(f.delay == 0 for f in sequence if f.name != "delay")


def test_schedule_draws_only_weighted_faults_and_refuses_bad_weights() -> None:
    schedule = FaultSchedule(1, {"refuse": 1, "pass": 0})
    assert {schedule.next().name for _ in range(50)} == {"refuse"}
    with pytest.raises(ValueError, match="unknown faults"):
        FaultSchedule(1, {"explode": 1})
    with pytest.raises(ValueError, match="not all zero"):
        FaultSchedule(1, {"pass": 0})
    with pytest.raises(ValueError):
        FaultSchedule(1, {"pass": -1})
    assert set(DEFAULT_WEIGHTS) == set(FAULTS)
    assert set(FAULTS) - {"refuse"} == FORWARDING_FAULTS


def test_proxy_applies_the_schedule_in_request_order(upstream: CountingUpstream) -> None:
    expected = FaultSchedule(7)
    names = [expected.next().name for _ in range(40)]
    with FaultProxy(upstream.url, seed=7) as proxy, httpx.Client(timeout=10) as client:
        for i in range(40):
            try:
                client.post(proxy.url + "/v1/charges", json={"ref": f"c{i}"})
            except httpx.TransportError:
                pass
        records = proxy.records
    assert [r.fault for r in records] == names
    for i, record in enumerate(records):
        assert (record.index, record.method, record.path) == (i, "POST", "/v1/charges")
        assert record.forwarded is (record.fault != "refuse")
        assert record.upstream_status == (None if record.fault == "refuse" else 201)
        assert upstream.executions(f"c{i}") == (0 if record.fault == "refuse" else 1)


def test_reseed_restarts_the_schedule_and_the_records(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, seed=1, weights={"pass": 1, "bad_gateway": 1}) as proxy:
        for i in range(5):
            httpx.post(proxy.url + "/v1/charges", json={"ref": f"a{i}"})
        proxy.reseed(99)
        statuses = [httpx.post(proxy.url + "/v1/charges", json={"ref": f"b{i}"}).status_code for i in range(12)]
        records = proxy.records
    schedule = FaultSchedule(99, {"pass": 1, "bad_gateway": 1})
    names = [schedule.next().name for _ in range(12)]
    assert [r.index for r in records] == list(range(12))
    assert [r.fault for r in records] == names
    assert statuses == [201 if name == "pass" else 502 for name in names]


def test_applies_to_limits_faults_without_spending_draws(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, seed=3, weights={"bad_gateway": 1},
                    applies_to=lambda method, path: method == "POST") as proxy:
        got = httpx.get(proxy.url + "/v1/charges?ref=g1")
        posted = httpx.post(proxy.url + "/v1/charges", json={"ref": "p1"})
        records = proxy.records
    assert got.status_code == 200 and got.json()["ref"] == "g1"
    assert posted.status_code == 502
    assert [(r.method, r.fault, r.scheduled) for r in records] == [("GET", "pass", False),
                                                                  ("POST", "bad_gateway", True)]
    assert proxy.fault_counts() == {"bad_gateway": 1}


# -- every fault, as a client sees it ----------------------------------------------------------


@pytest.mark.parametrize("fault", ["pass", "delay", "trickle"])
def test_answering_faults_deliver_the_whole_answer(upstream: CountingUpstream, fault: str) -> None:
    with FaultProxy(upstream.url, weights={fault: 1}, max_delay=0.05) as proxy:
        answer, ended = _raw_exchange(proxy.url, _post_bytes("ok-1"))
        record = proxy.records[0]
    status, headers, body = _split(answer)
    assert status == "HTTP/1.1 201 Created"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body)["ref"] == "ok-1"
    assert headers["connection"] == "close" and ended == "eof"
    assert (record.fault, record.forwarded, record.upstream_status) == (fault, True, 201)
    assert upstream.executions("ok-1") == 1


def test_trickle_sends_the_answer_a_few_bytes_at_a_time(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, weights={"trickle": 1}, trickle_bytes=32, trickle_interval=0.05) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(_post_bytes("slow-1"))
            first = sock.recv(65536)
            rest = b""
            while piece := sock.recv(65536):
                rest += piece
    assert 0 < len(first) <= 32 < len(first + rest)
    status, _, body = _split(first + rest)
    assert status.startswith("HTTP/1.1 201") and json.loads(body)["ref"] == "slow-1"


def test_refuse_closes_before_forwarding(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, weights={"refuse": 1}) as proxy:
        answer, _ = _raw_exchange(proxy.url, _post_bytes("refused-1"))
        with pytest.raises(httpx.TransportError):
            httpx.post(proxy.url + "/v1/charges", json={"ref": "refused-2"})
        records = proxy.records
    assert answer == b""
    assert [(r.fault, r.forwarded) for r in records] == [("refuse", False), ("refuse", False)]
    assert upstream.executions("refused-1") == upstream.executions("refused-2") == 0


def test_drop_response_forwards_then_closes_without_answering(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, weights={"drop_response": 1}) as proxy:
        answer, ended = _raw_exchange(proxy.url, _post_bytes("dropped-1"))
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(proxy.url + "/v1/charges", json={"ref": "dropped-2"})
        records = proxy.records
    assert (answer, ended) == (b"", "eof")
    assert [(r.fault, r.forwarded, r.upstream_status) for r in records] == [("drop_response", True, 201)] * 2
    assert upstream.executions("dropped-1") == upstream.executions("dropped-2") == 1


def test_reset_mid_response_sends_a_status_line_and_part_of_the_body(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, seed=5, weights={"reset_mid_response": 1}) as proxy:
        answers = [_raw_exchange(proxy.url, _post_bytes(f"cut-{i}")) for i in range(6)]
        with pytest.raises(httpx.TransportError):
            httpx.post(proxy.url + "/v1/charges", json={"ref": "cut-x"})
    for i, (answer, ended) in enumerate(answers):
        status, headers, body = _split(answer)
        assert status == "HTTP/1.1 201 Created"
        assert len(body) < int(headers["content-length"])
        assert ended == "reset"
        assert upstream.executions(f"cut-{i}") == 1


@pytest.mark.parametrize(("fault", "status"), [("bad_gateway", 502), ("unavailable", 503)])
def test_intermediary_errors_replace_the_forwarded_answer(upstream: CountingUpstream, fault: str,
                                                          status: int) -> None:
    with FaultProxy(upstream.url, weights={fault: 1}) as proxy, httpx.Client() as client:
        first = client.post(proxy.url + "/v1/charges", json={"ref": "gw-1"})
        second = client.post(proxy.url + "/v1/charges", json={"ref": "gw-2"})  # same keep-alive connection
    for response in (first, second):
        assert response.status_code == status
        assert response.headers["content-type"] == "text/html"
        assert response.text.startswith("<html>") and "fault-proxy" in response.text
    assert upstream.executions("gw-1") == upstream.executions("gw-2") == 1


# -- HTTP framing -----------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, weights={"pass": 1}) as proxy:
        request = _post_bytes("ka-1", close=False) + _post_bytes("ka-2", close=False) + _post_bytes("ka-3")
        answer, ended = _raw_exchange(proxy.url, request)
    assert answer.count(b"HTTP/1.1 201 Created") == 3
    assert [upstream.executions(f"ka-{i}") for i in (1, 2, 3)] == [1, 1, 1]
    assert ended == "eof"


def test_chunked_request_bodies_are_forwarded(upstream: CountingUpstream) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"ref": "chun'
        yield b'ked-1", "amount": 3}'

    with FaultProxy(upstream.url, weights={"pass": 1}) as proxy:
        response = httpx.post(proxy.url + "/v1/charges", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 201 and response.json()["amount"] == 3
    assert upstream.executions("chunked-1") == 1


def test_streaming_answers_pass_through_chunk_by_chunk(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, weights={"pass": 1}) as proxy, httpx.Client() as client:
        with client.stream("GET", proxy.url + "/v1/stream?ref=sse-1") as response:
            assert response.headers["content-type"] == "text/event-stream"
            assert response.headers["transfer-encoding"] == "chunked"
            events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line]
        after = client.get(proxy.url + "/v1/items?ref=after-stream")  # the connection is still usable
    assert [e["event"] for e in events] == [0, 1, 2]
    assert after.status_code == 200 and upstream.executions("after-stream") == 1


class _CloseDelimited(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"no length, ends at close")

    def log_message(self, *args: Any) -> None:
        pass


def test_close_delimited_answers_are_relayed_and_end_the_connection() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CloseDelimited)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = f"http://127.0.0.1:{server.server_address[1]}"
        with FaultProxy(target, weights={"pass": 1}) as proxy:
            response = httpx.get(proxy.url + "/anything")
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200 and response.text == "no length, ends at close"
    assert response.headers["connection"] == "close"


def test_malformed_requests_get_400_and_unreachable_targets_502(upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url) as proxy:
        answer, _ = _raw_exchange(proxy.url, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with FaultProxy(closed, weights={"pass": 1}) as proxy:
        response = httpx.post(proxy.url + "/v1/charges", json={"ref": "nowhere"})
        record = proxy.records[0]
    assert response.status_code == 502 and response.headers["content-type"] == "text/html"
    assert (record.fault, record.forwarded) == ("pass", False)


def test_lifecycle() -> None:
    proxy = FaultProxy("http://127.0.0.1:9")
    with pytest.raises(RuntimeError, match="not running"):
        _ = proxy.url
    with proxy:
        url = proxy.url
        assert proxy.running and repr(proxy).startswith("FaultProxy(url='http://127.0.0.1:")
    assert not proxy.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/x")
    with pytest.raises(ValueError, match="http://"):
        FaultProxy("ftp://example")


# -- the counting upstream --------------------------------------------------------------------


def test_counting_upstream_executes_every_request_and_never_deduplicates(upstream: CountingUpstream) -> None:
    with httpx.Client(base_url=upstream.url) as client:
        first = client.post("/v1/charges", json={"ref": "dup", "amount": 7}, headers={"Idempotency-Key": "k1"})
        second = client.post("/v1/charges", json={"ref": "dup", "amount": 7}, headers={"Idempotency-Key": "k1"})
        read = client.get("/v1/charges?ref=read-1")
        odd = client.post("/v1/charges", content=b"not json")
    assert (first.status_code, second.status_code, read.status_code, odd.status_code) == (201, 201, 200, 201)
    assert (first.json()["execution"], second.json()["execution"]) == (1, 2)
    assert first.json()["id"] != second.json()["id"]
    assert upstream.executions("dup") == 2 and upstream.duplicates() == {"dup": 2}
    assert upstream.keys_for("dup") == ["k1", "k1"]
    assert upstream.counts() == {"dup": 2, "read-1": 1}
    assert [e.ref for e in upstream.log] == ["dup", "dup", "read-1", None]
    upstream.reset()
    assert upstream.counts() == {} and upstream.log == []


# -- on hop 2: gateway → proxy → upstream -----------------------------------------------------


def test_proxy_on_the_gateway_upstream_hop(ailink_gateway: EmulatorGateway, upstream: CountingUpstream) -> None:
    with FaultProxy(upstream.url, seed=11, weights={"pass": 1}) as proxy:
        token = ailink_gateway.create_token(upstream=proxy.url)
        with ailink.AIlinkClient(token, ailink_gateway.url) as client:
            response = client.post("/v1/charges", json={"ref": "hop2-1", "amount": 9}, idempotency_key="hop2-key")
        records = proxy.records
    assert response.status_code == 201 and response.json()["ref"] == "hop2-1"
    assert [(r.method, r.path, r.fault, r.forwarded) for r in records] == [("POST", "/v1/charges", "pass", True)]
    assert upstream.keys_for("hop2-1") == ["hop2-key"]
