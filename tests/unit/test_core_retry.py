"""Protocol §5/§6: retry decisions, Retry-After, idempotency key reuse, connection failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import ailink
from ailink._config import ClientConfig
from ailink._flow import run_async, run_sync
from ailink._retry import failure_error, send_with_retries

from .helpers import (
    GATEWAY,
    SECRETS,
    TOKEN,
    Driver,
    FakeClock,
    Recorder,
    advertise,
    fast_retry,
    gateway_error,
    sent_keys,
)

READ_RETRIED = [
    (429, gateway_error(429, "rate_limit_exceeded")),
    (500, gateway_error(500, "internal_server_error")),
    (502, gateway_error(502, "upstream_failed")),
    (503, gateway_error(503, "all_upstreams_exhausted")),
    (504, httpx.Response(504, text="gateway timeout")),
    (409, gateway_error(409, "idempotency_in_progress", headers={"Retry-After": "0"})),
]
#: Answers that prove a write was not forwarded (or is deduplicated by key): re-sent on any gateway.
WRITE_RETRIED_ANYWHERE = [
    ("429", gateway_error(429, "rate_limit_exceeded")),
    ("409-in-flight", gateway_error(409, "idempotency_in_progress", headers={"Retry-After": "0"})),
    ("503-circuit-open", gateway_error(503, "all_upstreams_exhausted")),
    ("502-not-forwarded", gateway_error(502, "upstream_failed", details={"forwarded": False})),
]
#: Answers after which a write may have happened: re-sent only to a gateway that stores outcomes.
WRITE_MAYBE_DONE = [
    ("500", gateway_error(500, "internal_server_error")),
    ("502", gateway_error(502, "upstream_failed")),
    ("503-intermediary", httpx.Response(503, text="<html>service unavailable</html>")),
    ("504", httpx.Response(504, text="gateway timeout")),
    ("502-upstream-own", httpx.Response(502, json={"error": {"code": "bad_gateway"}},
                                        headers={"x-ailink-cb-state": "closed"})),
]
NOT_RETRIED = [
    (202, httpx.Response(202, json={"accepted": True})),
    (401, gateway_error(401, "token_not_found")),
    (402, gateway_error(402, "spend_cap_reached")),
    (403, gateway_error(403, "policy_denied")),
    (404, gateway_error(404, "not_found")),
    (408, gateway_error(408, "approval_timeout")),
    (409, gateway_error(409, "approval_pending")),
    (422, gateway_error(422, "idempotency_key_reused")),
]


@pytest.mark.parametrize("storing", [False, True], ids=["real-gateway", "storing-gateway"])
@pytest.mark.parametrize(("status", "answer"), READ_RETRIED, ids=[str(s) for s, _ in READ_RETRIED])
async def test_reads_are_retried(driver: Driver, status: int, answer: httpx.Response, storing: bool) -> None:
    if storing:
        advertise()
    recorder = Recorder(script=[answer, answer], default=httpx.Response(200, json={"ok": 1}))
    client = driver.client(recorder, retries=fast_retry(2))
    response = await driver.call(client, "GET", "/v1/charges")
    assert response.status_code == 200
    assert len(recorder.requests) == 3


@pytest.mark.parametrize("storing", [False, True], ids=["real-gateway", "storing-gateway"])
@pytest.mark.parametrize(("name", "answer"), WRITE_RETRIED_ANYWHERE, ids=[n for n, _ in WRITE_RETRIED_ANYWHERE])
async def test_writes_are_retried_when_the_answer_proves_nothing_happened(
    driver: Driver, name: str, answer: httpx.Response, storing: bool
) -> None:
    if storing:
        advertise()
    recorder = Recorder(script=[answer, answer], default=httpx.Response(201, json={"id": "ch_1"}))
    client = driver.client(recorder, retries=fast_retry(2))
    response = await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    assert response.status_code == 201
    assert len(recorder.requests) == 3
    assert len(set(sent_keys(recorder))) == 1


@pytest.mark.parametrize(("name", "answer"), WRITE_MAYBE_DONE, ids=[n for n, _ in WRITE_MAYBE_DONE])
async def test_a_write_that_may_have_happened_is_not_resent_to_the_real_gateway(
    driver: Driver, name: str, answer: httpx.Response
) -> None:
    """The real gateway stores nothing: a re-send would run the action again."""
    recorder = Recorder(default=answer)
    client = driver.client(recorder, retries=fast_retry(3))
    with pytest.raises(ailink.GatewayError) as info:
        await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    error = info.value
    assert len(recorder.requests) == 1
    assert error.ambiguous is True and error.resend_tells_outcome is False
    assert error.idempotency_key == sent_keys(recorder)[0]
    assert "Outcome unknown" in str(error) and error.idempotency_key in str(error)
    assert "check with the upstream" in str(error)


@pytest.mark.parametrize(("name", "answer"), WRITE_MAYBE_DONE, ids=[n for n, _ in WRITE_MAYBE_DONE])
async def test_a_write_that_may_have_happened_is_resent_to_a_storing_gateway(
    driver: Driver, name: str, answer: httpx.Response
) -> None:
    """A gateway that stores outcomes answers the re-send with what really happened."""
    advertise()
    stored = httpx.Response(201, json={"id": "ch_1"}, headers={"Idempotent-Replayed": "true"})
    recorder = Recorder(script=[answer], default=stored)
    client = driver.client(recorder, retries=fast_retry(2))
    response = await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    assert response.status_code == 201 and response.headers["idempotent-replayed"] == "true"
    assert len(recorder.requests) == 2 and len(set(sent_keys(recorder))) == 1


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(500, json={"error": {"code": "boom"}}, headers={"Idempotent-Replayed": "true",
                                                                     "x-ailink-cb-state": "closed"}),
     gateway_error(502, "upstream_failed", details={"ambiguous": True})],
    ids=["replayed-5xx", "ambiguous-502"],
)
async def test_a_storing_gateway_that_already_answered_for_good_is_not_asked_again(
    driver: Driver, answer: httpx.Response
) -> None:
    advertise()
    recorder = Recorder(default=answer)
    client = driver.client(recorder, retries=fast_retry(3))
    with pytest.raises(ailink.GatewayError) as info:
        await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    assert len(recorder.requests) == 1
    assert info.value.ambiguous is True and info.value.resend_tells_outcome is True
    assert "re-send it with the same key" in str(info.value)


async def test_outcome_unknown_answer_is_typed_and_says_not_to_resend(driver: Driver) -> None:
    advertise()
    key = "charge-order-77"
    recorder = Recorder(default=gateway_error(502, "outcome_unknown", details={"ambiguous": True,
                                                                               "idempotency_key": key}))
    client = driver.client(recorder, retries=fast_retry(3))
    with pytest.raises(ailink.OutcomeUnknownError) as info:
        await driver.call(client, "POST", "/v1/charges", json={}, idempotency_key=key)
    error = info.value
    assert isinstance(error, ailink.UpstreamError) and isinstance(error, ailink.GatewayError)
    assert len(recorder.requests) == 1
    assert error.ambiguous and error.idempotency_key == key and not error.resend_tells_outcome
    assert "check with the upstream" in str(error)


@pytest.mark.parametrize("storing", [False, True], ids=["real-gateway", "storing-gateway"])
@pytest.mark.parametrize(("name", "answer"), WRITE_RETRIED_ANYWHERE, ids=[n for n, _ in WRITE_RETRIED_ANYWHERE])
async def test_retries_exhausted_raise_the_last_error_with_its_key(
    driver: Driver, name: str, answer: httpx.Response, storing: bool
) -> None:
    if storing:
        advertise()
    recorder = Recorder(default=answer)
    client = driver.client(recorder, retries=fast_retry(2))
    with pytest.raises(ailink.AIlinkError) as info:
        await driver.call(client, "POST", "/v1/charges", json={})
    assert info.value.status_code == answer.status_code
    assert info.value.idempotency_key == sent_keys(recorder)[0]
    assert len(recorder.requests) == 3
    # still in flight under the key after every retry: nobody can say yet whether it happened
    assert info.value.ambiguous is (name == "409-in-flight")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("status", "answer"), NOT_RETRIED, ids=[f"{s}-{i}" for i, (s, _) in enumerate(NOT_RETRIED)])
async def test_never_retried_statuses(driver: Driver, method: str, status: int, answer: httpx.Response) -> None:
    advertise()
    recorder = Recorder(default=answer)
    client = driver.client(recorder, retries=fast_retry(3))
    try:
        response = await driver.call(client, method, "/v1/charges")
        assert response.status_code == status == 202
    except ailink.AIlinkError as error:
        assert error.status_code == status
        assert error.ambiguous is False
    assert len(recorder.requests) == 1


async def test_retries_zero_means_one_attempt(driver: Driver) -> None:
    recorder = Recorder(default=gateway_error(503, "all_upstreams_exhausted"))
    client = driver.client(recorder, retries=0)
    with pytest.raises(ailink.CircuitOpenError):
        await driver.call(client, "GET", "/v1/customers")
    assert len(recorder.requests) == 1


async def test_retry_after_is_honoured(driver: Driver, clock: FakeClock) -> None:
    recorder = Recorder(
        script=[gateway_error(429, "rate_limit_exceeded", headers={"Retry-After": "3"}),
                gateway_error(503, "all_upstreams_exhausted", headers={"Retry-After": "1.5"})],
    )
    client = driver.client(recorder, retries=ailink.RetryConfig(max_retries=2, backoff_base=100, backoff_cap=100))
    response = await driver.call(client, "POST", "/v1/charges", json={})
    assert response.status_code == 200
    assert clock.sleeps == [3.0, 1.5]


async def test_backoff_without_retry_after_is_full_jitter_within_cap(driver: Driver, clock: FakeClock) -> None:
    recorder = Recorder(script=[gateway_error(500, "internal_server_error")] * 3)
    client = driver.client(recorder, retries=ailink.RetryConfig(max_retries=3, backoff_base=0.5, backoff_cap=0.8))
    await driver.call(client, "GET", "/v1/customers")
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0 <= slept <= min(0.8, 0.5 * 2 ** (attempt - 1))


async def test_retry_after_longer_than_the_cap_is_not_waited(driver: Driver, clock: FakeClock) -> None:
    recorder = Recorder(default=gateway_error(429, "rate_limit_exceeded", headers={"Retry-After": "3600"}))
    client = driver.client(recorder, retries=ailink.RetryConfig(max_retries=2, max_retry_after=30))
    with pytest.raises(ailink.RateLimitError) as info:
        await driver.call(client, "GET", "/v1/customers")
    assert info.value.retry_after == 3600
    assert len(recorder.requests) == 1
    assert clock.sleeps == []


def test_backoff_is_bounded() -> None:
    config = ailink.RetryConfig(backoff_base=0.5, backoff_cap=8.0)
    for attempt in range(1, 12):
        assert 0 <= config.backoff(attempt) <= min(8.0, 0.5 * 2 ** (attempt - 1))
    with pytest.raises(ValueError):
        ailink.RetryConfig.coerce(-1)
    assert ailink.RetryConfig.coerce(5).max_retries == 5
    assert ailink.RetryConfig.coerce(None).max_retries == 2


# -- idempotency keys -----------------------------------------------------------------------


async def test_non_get_carries_one_key_reused_by_every_retry(driver: Driver) -> None:
    advertise()
    recorder = Recorder(script=[gateway_error(502, "upstream_failed"), httpx.ConnectError("reset")])
    client = driver.client(recorder, retries=fast_retry(2))
    await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    keys = sent_keys(recorder)
    assert len(keys) == 3 and keys[0] is not None
    assert set(keys) == {keys[0]}
    assert recorder.header("x-trueflow-idempotency-key") == keys
    # no plain Idempotency-Key: on the real gateway it switches on its own (duplicating) retries
    assert recorder.header("idempotency-key") == [None] * 3


async def test_each_logical_call_gets_its_own_key(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    first, second = sent_keys(recorder)
    assert first and second and first != second


async def test_explicit_key_wins_and_is_reused(driver: Driver) -> None:
    recorder = Recorder(script=[gateway_error(503, "all_upstreams_exhausted")])
    client = driver.client(recorder)
    await driver.call(client, "POST", "/v1/charges", json={}, idempotency_key="charge-order-12345")
    assert sent_keys(recorder) == ["charge-order-12345"] * 2
    assert recorder.header("x-trueflow-idempotency-key") == ["charge-order-12345"] * 2


async def test_get_has_no_key_unless_given(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    await driver.call(client, "GET", "/v1/customers")
    await driver.call(client, "GET", "/v1/customers", idempotency_key="get-key")
    assert sent_keys(recorder) == [None, "get-key"]


@pytest.mark.parametrize("bad", ["has space", "x" * 256, "naïve"])
async def test_invalid_explicit_key_is_refused(driver: Driver, bad: str) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    with pytest.raises(ValueError):
        await driver.call(client, "POST", "/v1/charges", idempotency_key=bad)
    assert recorder.requests == []


def _keyless_post(config: ClientConfig) -> httpx.Request:
    request = config.build_request("POST", "/v1/charges", json={"amount": 1})
    del request.headers["X-AIlink-Idempotency-Key"]
    del request.headers["X-TrueFlow-Idempotency-Key"]
    return request


@pytest.mark.parametrize("tracing", [False, True])
def test_non_get_without_key_is_not_retried_sync(tracing: bool) -> None:
    advertise()
    recorder = Recorder(default=gateway_error(503, "all_upstreams_exhausted"))
    config = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, retry=fast_retry(3))
    transport: httpx.BaseTransport = recorder.transport
    if tracing:
        transport = ailink.TracingTransport(sync_transport=transport)
    with httpx.Client(transport=transport) as http:
        response = run_sync(send_with_retries(_keyless_post(config), config.retry), http)
    assert response.status_code == 503
    assert len(recorder.requests) == 1


async def test_non_get_without_key_is_only_resent_when_never_sent() -> None:
    advertise()
    recorder = Recorder(script=[httpx.ConnectError("refused"), httpx.ReadError("reset")])
    config = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, retry=fast_retry(3))
    transport = ailink.TracingTransport(async_transport=recorder.transport, add_idempotency_keys=False)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ailink.APIConnectionError) as info:
            await run_async(send_with_retries(_keyless_post(config), config.retry), http)
    assert len(recorder.requests) == 2  # the refused connection sent nothing; the reset one may have
    assert info.value.ambiguous is True
    assert "do not repeat it blindly" in str(info.value)


def test_transport_adds_one_key_to_a_keyless_write_and_keeps_it_across_retries() -> None:
    advertise()
    recorder = Recorder(script=[gateway_error(503, "all_upstreams_exhausted")])
    config = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, retry=fast_retry(3))
    with httpx.Client(transport=ailink.TracingTransport(sync_transport=recorder.transport)) as http:
        foreign = httpx.Request("POST", GATEWAY + "/v1/charges", json={"amount": 1})  # e.g. built by an SDK
        response = run_sync(send_with_retries(foreign, config.retry), http)
    assert response.status_code == 200
    keys = sent_keys(recorder)
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert recorder.header("idempotency-key") == [None, None]


# -- connection failures --------------------------------------------------------------------

FAILURES = [
    (httpx.ConnectError("connection refused"), ailink.APIConnectionError, False),
    (httpx.ConnectTimeout("connect timed out"), ailink.APITimeoutError, False),
    (httpx.ReadTimeout("timed out"), ailink.APITimeoutError, True),
    (httpx.RemoteProtocolError("peer closed"), ailink.APIConnectionError, True),
    (httpx.ReadError("reset"), ailink.APIConnectionError, True),
]


@pytest.mark.parametrize("storing", [False, True], ids=["real-gateway", "storing-gateway"])
@pytest.mark.parametrize(("exc", "cls", "maybe_sent"), FAILURES,
                         ids=["connect", "connect-timeout", "read-timeout", "protocol", "read"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_connection_failures(
    driver: Driver, exc: Exception, cls: type[Exception], maybe_sent: bool, method: str, storing: bool
) -> None:
    """Reads and never-sent writes are re-sent; a write that may have reached the gateway only to
    one that stores outcomes. What is left is typed, without secrets, and says if it may have happened."""
    if storing:
        advertise()
    recorder = Recorder(default=lambda request: (_ for _ in ()).throw(exc))
    client = driver.client(recorder, retries=fast_retry(2))
    with pytest.raises(cls) as info:
        await driver.call(client, method, "/v1/charges", params={"q": "x"},
                          headers={"X-Real-Authorization": f"Bearer {TOKEN}"})
    error = info.value
    assert isinstance(error, ailink.APIConnectionError)
    resent = method == "GET" or not maybe_sent or storing
    assert len(recorder.requests) == (3 if resent else 1)
    assert isinstance(error.__cause__, httpx.TransportError)
    assert error.ambiguous is (method == "POST" and maybe_sent)
    if method == "POST":
        assert error.idempotency_key == sent_keys(recorder)[0]
    for secret in SECRETS:
        assert secret not in str(error) and secret not in repr(error)
    assert "q=x" not in str(error)


async def test_connection_error_then_success(driver: Driver) -> None:
    advertise()
    recorder = Recorder(script=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
    client = driver.client(recorder, retries=fast_retry(2))
    response = await driver.call(client, "POST", "/v1/charges", json={})
    assert response.status_code == 200
    assert len(recorder.requests) == 3


async def test_an_undecodable_answer_is_a_typed_error(driver: Driver) -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b"not gzip at all"), headers={"Content-Encoding": "gzip"})

    recorder = Recorder(default=garbage)
    client = driver.client(recorder, retries=fast_retry(2))
    with pytest.raises(ailink.MalformedResponseError) as info:
        await driver.call(client, "POST", "/v1/charges", json={})
    assert info.value.ambiguous is True  # the gateway answered: the action may well have happened
    assert len(recorder.requests) == 1


# -- bounds ---------------------------------------------------------------------------------


class _Trickle(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An answer body that arrives one byte per (fake) second, forever unless cut."""

    def __init__(self, clock: FakeClock, size: int = 10_000) -> None:
        self.clock = clock
        self.size = size
        self.sent = 0

    def _chunks(self) -> Any:
        while self.sent < self.size:
            self.clock.advance(1.0)
            self.sent += 1
            yield b"x"

    def __iter__(self) -> Any:
        return self._chunks()

    async def __aiter__(self) -> Any:
        for chunk in self._chunks():
            yield chunk


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_trickled_answer_ends_at_the_request_deadline(driver: Driver, clock: FakeClock, method: str) -> None:
    """Per-read timeouts never fire when a byte comes every second; the request's deadline does."""
    streams: list[_Trickle] = []

    def trickle(request: httpx.Request) -> httpx.Response:
        streams.append(_Trickle(clock))
        return httpx.Response(200, stream=streams[-1])

    recorder = Recorder(default=trickle)
    client = driver.client(recorder, timeout=3, retries=fast_retry(0))
    with pytest.raises(ailink.APITimeoutError) as info:
        await driver.call(client, method, "/v1/charges")
    assert streams[0].sent <= 4  # cut at the 3 s deadline, not after 10,000 s
    assert info.value.ambiguous is (method == "POST")


async def test_error_text_is_capped_and_the_body_kept(driver: Driver) -> None:
    huge = "x" * 10_000_000
    recorder = Recorder(default=gateway_error(403, "policy_denied", f"Request blocked by policy 'p': {huge}"))
    client = driver.client(recorder)
    with pytest.raises(ailink.PolicyDeniedError) as info:
        await driver.call(client, "POST", "/v1/charges", json={})
    assert len(str(info.value)) < 1_200 and len(info.value.reason) < 1_200
    assert info.value.response is not None and len(info.value.response.content) > 10_000_000


async def test_a_held_request_is_not_cut_by_the_body_deadline(driver: Driver, clock: FakeClock) -> None:
    """The real gateway holds an approval-gated call, then answers: waiting for the headers is the
    approval wait (bounded by the hold timeout), the body still has the plain timeout."""

    def held(request: httpx.Request) -> httpx.Response:
        assert request.extensions["timeout"]["read"] > 120  # the gateway is not known to answer 202
        clock.advance(100)  # a human decided after 100 s
        return httpx.Response(201, json={"id": "ch_1"})

    client = driver.client(Recorder(default=held), timeout=3, retries=fast_retry(0))
    response = await driver.call(client, "POST", "/v1/charges", json={}, wait_for_approval=True)
    assert response.json() == {"id": "ch_1"}


@pytest.mark.parametrize("header", ["X-AIlink-Idempotency-Key", "X-TrueFlow-Idempotency-Key", "Idempotency-Key"])
def test_the_key_of_a_request_in_any_spelling_is_named_when_the_outcome_is_unknown(header: str) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/charges", headers={header: "charge-42"})
    error = failure_error(httpx.ReadTimeout("cut", request=request), request)
    assert error.ambiguous and error.idempotency_key == "charge-42"
