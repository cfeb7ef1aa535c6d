"""Protocol §5/§6: retry decisions, Retry-After, idempotency key reuse, connection failures."""

from __future__ import annotations

import httpx
import pytest

import ailink
from ailink._config import ClientConfig
from ailink._flow import run_async, run_sync
from ailink._retry import send_with_retries

from .helpers import GATEWAY, SECRETS, TOKEN, Driver, FakeClock, Recorder, fast_retry, gateway_error

RETRIED = [
    (429, gateway_error(429, "rate_limit_exceeded")),
    (500, gateway_error(500, "internal_server_error")),
    (502, gateway_error(502, "upstream_failed")),
    (503, gateway_error(503, "all_upstreams_exhausted")),
    (504, httpx.Response(504, text="gateway timeout")),
    (409, gateway_error(409, "idempotency_in_progress", headers={"Retry-After": "0"})),
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


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("status", "answer"), RETRIED, ids=[str(s) for s, _ in RETRIED])
async def test_retried_statuses(driver: Driver, method: str, status: int, answer: httpx.Response) -> None:
    recorder = Recorder(script=[answer, answer], default=httpx.Response(200, json={"ok": 1}))
    client = driver.client(recorder, retries=fast_retry(2))
    response = await driver.call(client, method, "/v1/charges")
    assert response.status_code == 200
    assert len(recorder.requests) == 3


@pytest.mark.parametrize(("status", "answer"), RETRIED, ids=[str(s) for s, _ in RETRIED])
async def test_retries_exhausted_raise_last_error(driver: Driver, status: int, answer: httpx.Response) -> None:
    recorder = Recorder(default=answer)
    client = driver.client(recorder, retries=fast_retry(2))
    with pytest.raises(ailink.AIlinkError) as info:
        await driver.call(client, "POST", "/v1/charges", json={})
    assert info.value.status_code == status
    assert len(recorder.requests) == 3


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("status", "answer"), NOT_RETRIED, ids=[f"{s}-{i}" for i, (s, _) in enumerate(NOT_RETRIED)])
async def test_never_retried_statuses(driver: Driver, method: str, status: int, answer: httpx.Response) -> None:
    recorder = Recorder(default=answer)
    client = driver.client(recorder, retries=fast_retry(3))
    try:
        response = await driver.call(client, method, "/v1/charges")
        assert response.status_code == status == 202
    except ailink.AIlinkError as error:
        assert error.status_code == status
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
    recorder = Recorder(script=[gateway_error(502, "upstream_failed"), httpx.ConnectError("reset")])
    client = driver.client(recorder, retries=fast_retry(2))
    await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    keys = recorder.header("idempotency-key")
    assert len(keys) == 3 and keys[0] is not None
    assert set(keys) == {keys[0]}
    assert recorder.header("x-ailink-idempotency-key") == keys


async def test_each_logical_call_gets_its_own_key(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    await driver.call(client, "POST", "/v1/charges", json={"amount": 5})
    first, second = recorder.header("idempotency-key")
    assert first and second and first != second


async def test_explicit_key_wins_and_is_reused(driver: Driver) -> None:
    recorder = Recorder(script=[gateway_error(503, "all_upstreams_exhausted")])
    client = driver.client(recorder)
    await driver.call(client, "POST", "/v1/charges", json={}, idempotency_key="charge-order-12345")
    assert recorder.header("idempotency-key") == ["charge-order-12345"] * 2
    assert recorder.header("x-ailink-idempotency-key") == ["charge-order-12345"] * 2


async def test_get_has_no_key_unless_given(driver: Driver) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    await driver.call(client, "GET", "/v1/customers")
    await driver.call(client, "GET", "/v1/customers", idempotency_key="get-key")
    assert recorder.header("idempotency-key") == [None, "get-key"]


@pytest.mark.parametrize("bad", ["has space", "x" * 256, "naïve"])
async def test_invalid_explicit_key_is_refused(driver: Driver, bad: str) -> None:
    recorder = Recorder()
    client = driver.client(recorder)
    with pytest.raises(ValueError):
        await driver.call(client, "POST", "/v1/charges", idempotency_key=bad)
    assert recorder.requests == []


def _keyless_post(config: ClientConfig) -> httpx.Request:
    request = config.build_request("POST", "/v1/charges", json={"amount": 1})
    del request.headers["Idempotency-Key"]
    del request.headers["X-AIlink-Idempotency-Key"]
    return request


@pytest.mark.parametrize("tracing", [False, True])
def test_non_get_without_key_is_not_retried_sync(tracing: bool) -> None:
    recorder = Recorder(default=gateway_error(503, "all_upstreams_exhausted"))
    config = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, retry=fast_retry(3))
    transport: httpx.BaseTransport = recorder.transport
    if tracing:
        transport = ailink.TracingTransport(sync_transport=transport)
    with httpx.Client(transport=transport) as http:
        response = run_sync(send_with_retries(_keyless_post(config), config.retry), http)
    assert response.status_code == 503
    assert len(recorder.requests) == 1


async def test_non_get_without_key_is_not_retried_async() -> None:
    recorder = Recorder(script=[httpx.ConnectError("refused")])
    config = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, retry=fast_retry(3))
    transport = ailink.TracingTransport(async_transport=recorder.transport, add_idempotency_keys=False)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ailink.APIConnectionError) as info:
            await run_async(send_with_retries(_keyless_post(config), config.retry), http)
    assert len(recorder.requests) == 1
    assert info.value.details["ambiguous"] is True
    assert "do not repeat it blindly" in str(info.value)


def test_transport_adds_one_key_to_a_keyless_write_and_keeps_it_across_retries() -> None:
    recorder = Recorder(script=[gateway_error(503, "all_upstreams_exhausted")])
    config = ClientConfig(api_key=TOKEN, gateway_url=GATEWAY, retry=fast_retry(3))
    with httpx.Client(transport=ailink.TracingTransport(sync_transport=recorder.transport)) as http:
        foreign = httpx.Request("POST", GATEWAY + "/v1/charges", json={"amount": 1})  # e.g. built by an SDK
        response = run_sync(send_with_retries(foreign, config.retry), http)
    assert response.status_code == 200
    keys = recorder.header("idempotency-key")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]


# -- connection failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls"),
    [(httpx.ConnectError("connection refused"), ailink.APIConnectionError),
     (httpx.ReadTimeout("timed out"), ailink.APITimeoutError),
     (httpx.RemoteProtocolError("peer closed"), ailink.APIConnectionError)],
    ids=["connect", "timeout", "protocol"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_connection_errors_retried_then_typed(
    driver: Driver, exc: Exception, cls: type[Exception], method: str
) -> None:
    recorder = Recorder(default=lambda request: (_ for _ in ()).throw(exc))
    client = driver.client(recorder, retries=fast_retry(2))
    with pytest.raises(cls) as info:
        await driver.call(client, method, "/v1/charges", params={"q": "x"},
                          headers={"X-Real-Authorization": f"Bearer {TOKEN}"})
    error = info.value
    assert isinstance(error, ailink.APIConnectionError)
    if cls is ailink.APIConnectionError:
        assert type(error) is ailink.APIConnectionError
    assert len(recorder.requests) == 3
    assert isinstance(error.__cause__, httpx.TransportError)
    assert error.details["ambiguous"] is (method == "POST")
    for secret in SECRETS:
        assert secret not in str(error) and secret not in repr(error)
    assert "q=x" not in str(error)


async def test_connection_error_then_success(driver: Driver) -> None:
    recorder = Recorder(script=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
    client = driver.client(recorder, retries=fast_retry(2))
    response = await driver.call(client, "POST", "/v1/charges", json={})
    assert response.status_code == 200
    assert len(recorder.requests) == 3
