"""The core client's scenarios against the real emulator over loopback, on both drivers and on both
emulator profiles.

Each test body is written once and runs with the sync ``AIlinkClient`` (in a worker thread,
which copies the context like any caller would) and with the ``AsyncClient``, against the default
``ailink`` profile (every protocol extension) and the ``real`` profile (the real gateway: approvals
held, nothing stored). Client settings are the defaults unless a test is about one of them. Where
the profiles promise different things (202, replays, agent approval endpoints) the assertion says
what each promises; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import ailink
from ailink import AIlinkClient, AsyncClient
from ailink.testing import EmulatorGateway

CHARGES_NEED_APPROVAL = {
    "name": "charges-need-approval",
    "rules": [
        {
            "when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                             {"field": "request.path", "op": "eq", "value": "/v1/charges"}]},
            "then": {"action": "require_approval", "timeout": "30s"},
        }
    ],
}
SHORT_APPROVAL = {
    "name": "short-approval",
    "rules": [{**CHARGES_NEED_APPROVAL["rules"][0], "then": {"action": "require_approval", "timeout": "1s"}}],
}
BLOCK_REFUNDS = {
    "name": "block-refunds",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
               "then": {"action": "deny", "message": "refunds are not allowed"}}],
}
ONE_PER_MINUTE = {
    "name": "one-per-minute",
    "rules": [{"when": {"always": True},
               "then": {"action": "rate_limit", "window": "60s", "max_requests": 1, "key": "per_token"}}],
}
CHARGE = {"amount": 5000, "currency": "usd", "customer": "cus_001"}

pytestmark = pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)


class Driver:
    """Calls a client method the same way for both drivers."""

    def __init__(self, client: AIlinkClient | AsyncClient) -> None:
        self.client = client
        self.kind = "async" if isinstance(client, AsyncClient) else "sync"

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.client, method)
        if self.kind == "async":
            return await fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture(params=["sync", "async"])
async def make_driver(
    request: pytest.FixtureRequest, ailink_gateway: EmulatorGateway
) -> AsyncIterator[Callable[..., Driver]]:
    made: list[Driver] = []

    def make(token: str, **options: Any) -> Driver:
        options.setdefault("agent_name", "e2e-agent")
        options.setdefault("retries", ailink.RetryConfig(max_retries=2, backoff_base=0.05, backoff_cap=0.2))
        cls = AsyncClient if request.param == "async" else AIlinkClient
        driver = Driver(cls(token, ailink_gateway.url, **options))
        made.append(driver)
        return driver

    yield make
    for driver in made:
        if isinstance(driver.client, AsyncClient):
            await driver.client.aclose()
        else:
            driver.client.close()


async def test_allowed_request_returns_the_upstream_answer(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token())
    response = await call("get", "/v1/customers/cus_001")
    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    ("setup", "method", "path", "body", "error", "status"),
    [
        ("bad-token", "GET", "/v1/customers", None, ailink.AuthenticationError, 401),
        ("deny", "POST", "/v1/refunds", {"charge": "ch_1"}, ailink.PolicyDeniedError, 403),
        ("plain", "GET", "/v1/customers/cus_missing", None, ailink.UpstreamError, 404),
        ("down", "GET", "/v1/anything", None, ailink.UpstreamError, 502),
    ],
)
async def test_gateway_errors_are_typed(
    ailink_gateway: EmulatorGateway, make_driver: Any, setup: str, method: str, path: str, body: Any,
    error: type[Exception], status: int,
) -> None:
    if setup == "bad-token":
        token = "ailink_v1_not_a_real_token_000000"
    elif setup == "deny":
        token = ailink_gateway.create_token(policies=[BLOCK_REFUNDS])
    elif setup == "down":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        token = ailink_gateway.create_token(upstream=f"http://127.0.0.1:{port}")
    else:
        token = ailink_gateway.create_token()
    call = make_driver(token, retries=0)
    with pytest.raises(error) as caught:
        await call("request", method, path, json=body)
    assert caught.value.status_code == status
    assert token not in str(caught.value) and token not in repr(caught.value)
    if setup == "deny":
        assert caught.value.policy_name == "block-refunds"
        assert "refunds are not allowed" in caught.value.reason


async def test_rate_limit_is_typed_with_retry_after(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[ONE_PER_MINUTE]), retries=0)
    await call("get", "/v1/customers")
    with pytest.raises(ailink.RateLimitError) as caught:
        await call("get", "/v1/customers")
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


async def test_same_key_different_body(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token())
    await call("post", "/v1/charges", json=CHARGE, idempotency_key="order-1")
    if ailink_gateway.serves_extensions:  # [ext] outcome-store: a reused key with another request is refused
        with pytest.raises(ailink.IdempotencyKeyReusedError):
            await call("post", "/v1/charges", json={**CHARGE, "amount": 1}, idempotency_key="order-1")
        assert ailink_gateway.payments_stats()["charges"] == 1
    else:  # the real gateway compares nothing: the second request is another charge
        second = await call("post", "/v1/charges", json={**CHARGE, "amount": 1}, idempotency_key="order-1")
        assert second.status_code == 200 and second.json()["amount"] == 1
        assert ailink_gateway.payments_stats()["charges"] == 2


async def test_resend_with_the_same_key(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token())
    first = await call("post", "/v1/charges", json=CHARGE, idempotency_key="charge-order-12345")
    second = await call("post", "/v1/charges", json=CHARGE, idempotency_key="charge-order-12345")
    if ailink_gateway.serves_extensions:  # [ext] the re-send replays instead of charging twice
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert ailink_gateway.payments_stats()["by_idempotency_key"]["charge-order-12345"] == 1
        # the gateway answered the re-send from its store, and says so in the audit
        [replayed] = ailink_gateway.audit(status="replayed")
        assert (replayed["path"], replayed["status_code"]) == ("/v1/charges", 200)
    else:  # the real gateway stores nothing: a deliberate re-send is a second execution, shown as one
        assert first.json()["id"] != second.json()["id"] and "idempotent-replayed" not in second.headers
        assert ailink_gateway.payments_stats()["charges"] == 2
        assert ailink_gateway.audit(status="replayed") == []


async def test_approval_with_default_settings(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    """The default client (``approval_mode="async"``) on a gateway that answers 202 and on one that holds
    the request: the approved call is executed exactly once and has exactly one approval row."""
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]))
    approver = ailink_gateway.approve_when_pending(count=1)
    answer = await call("post", "/v1/charges", json=CHARGE)
    if ailink_gateway.serves_extensions:  # [ext] 202 at once, then the client waits for the decision
        assert answer.status_code == 202
        approval_id = answer.json()["request_id"]
        result = await call("wait_for_approval", approval_id, timeout=20)
        assert result.approved and result.status is ailink.ApprovalStatus.APPROVED
        assert result.response is not None
        answer = result.response
    approver.join()
    assert answer.status_code == 200 and answer.json()["amount"] == CHARGE["amount"]
    assert ailink_gateway.payments_stats()["charges"] == 1
    assert [a["id"] for a in ailink_gateway.approvals()] == approver.decided


@pytest.mark.parametrize("mode", ["async", "blocking"])
async def test_wait_for_approval_true_returns_final_response(
    ailink_gateway: EmulatorGateway, make_driver: Any, mode: str
) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]), approval_mode=mode)
    seen: list[str] = []
    approver = ailink_gateway.approve_when_pending(count=1)
    kwargs: dict[str, Any] = {"json": CHARGE, "wait_for_approval": True, "approval_timeout": 20}
    if mode == "async":
        kwargs["on_pending"] = lambda pending: seen.append(pending.approval_id)
    response = await call("post", "/v1/charges", **kwargs)
    approver.join()
    assert response.status_code == 200
    assert ailink_gateway.payments_stats()["charges"] == 1
    assert len(ailink_gateway.approvals()) == 1
    if mode == "async":
        # the hook fires exactly once with the decided approval; a gateway that holds the request
        # never names its approval (no 202), so there is no pending approval to report
        assert seen == (approver.decided if ailink_gateway.serves_extensions else [])


@pytest.mark.parametrize("mode", ["async", "blocking"])
async def test_rejection_raises(ailink_gateway: EmulatorGateway, make_driver: Any, mode: str) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]), approval_mode=mode)
    approver = ailink_gateway.approve_when_pending(count=1, decision="rejected", reason="too large")
    with pytest.raises(ailink.ApprovalRejectedError) as caught:
        await call("post", "/v1/charges", json=CHARGE, wait_for_approval=True, approval_timeout=20)
    approver.join()
    # the real gateway never names the approval: the error says what happened without an id
    assert caught.value.approval_id == (approver.decided[0] if ailink_gateway.serves_extensions else None)
    assert "rejected" in str(caught.value).lower()
    assert ailink_gateway.payments_stats()["charges"] == 0


@pytest.mark.parametrize("mode", ["async", "blocking"])
async def test_expiry_fails_closed(ailink_gateway: EmulatorGateway, make_driver: Any, mode: str) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[SHORT_APPROVAL]), approval_mode=mode)
    with pytest.raises(ailink.ApprovalTimeoutError):
        await call("post", "/v1/charges", json=CHARGE, wait_for_approval=True, approval_timeout=20)
    assert ailink_gateway.payments_stats()["charges"] == 0


async def test_resend_reattaches_to_the_same_approval(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    token = ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL])
    call = make_driver(token)
    if not ailink_gateway.serves_extensions:
        await _resend_after_an_abandoned_hold(ailink_gateway, call, token)
        return
    first = await call("post", "/v1/charges", json=CHARGE, idempotency_key="k-1")
    again = await call("post", "/v1/charges", json=CHARGE, idempotency_key="k-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["approval_id"] == again.json()["approval_id"]
    ailink_gateway.decide(first.json()["approval_id"], "approved")
    after = await call("post", "/v1/charges", json=CHARGE, idempotency_key="k-1")
    for _ in range(50):
        if after.status_code == 200:
            break
        await asyncio.sleep(0.1)
        after = await call("post", "/v1/charges", json=CHARGE, idempotency_key="k-1")
    assert after.status_code == 200
    assert after.headers["idempotent-replayed"] == "true"
    assert ailink_gateway.payments_stats()["charges"] == 1


async def _resend_after_an_abandoned_hold(gateway: EmulatorGateway, call: Driver, token: str) -> None:
    """The real gateway: an agent that gave up on a held call (its process died, its connection
    closed) re-sends it with the same key; the re-send re-attaches to the same approval, and the
    action runs once, when approved."""
    abandoned = threading.Thread(target=_held_then_abandoned, args=(gateway.url, token, "k-1"))
    abandoned.start()
    _wait_until(lambda: len(gateway.pending_approvals()) == 1)
    abandoned.join(10)
    [approval] = gateway.pending_approvals()
    approver = gateway.approve_when_pending(count=1)
    again = await call("post", "/v1/charges", json=CHARGE, idempotency_key="k-1")
    assert approver.join() == [approval["id"]]  # the re-send waited on the first request's approval
    assert again.status_code == 200 and again.json()["amount"] == CHARGE["amount"]
    assert len(gateway.approvals()) == 1 and gateway.payments_stats()["charges"] == 1


def _held_then_abandoned(url: str, token: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-AIlink-Idempotency-Key": key}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/charges", json=CHARGE, headers=headers, timeout=httpx.Timeout(5, read=0.5))


def _wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting for the gateway"
        time.sleep(0.02)


async def test_withdrawn_approval_is_cancelled(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]))
    if not ailink_gateway.serves_extensions:  # no agent-side approval endpoints: nothing is sent upstream
        with pytest.raises(ailink.NotFoundError) as caught:
            await call("withdraw_approval", "apr_anything")
        assert caught.value.code == "approval_endpoints_unavailable"
        assert not [row for row in ailink_gateway.audit() if row["path"].startswith("/v1/approvals")]
        return
    pending = await call("post", "/v1/charges", json=CHARGE)
    approval_id = pending.json()["approval_id"]
    await call("withdraw_approval", approval_id)
    result = await call("wait_for_approval", approval_id, timeout=5)
    assert result.status is ailink.ApprovalStatus.CANCELLED and not result.approved
    assert ailink_gateway.payments_stats()["charges"] == 0


async def test_unknown_approval_id_is_not_found(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token())
    with pytest.raises(ailink.NotFoundError) as caught:
        await call("wait_for_approval", "apr_does_not_exist", timeout=5)
    expected = "approval_not_found" if ailink_gateway.serves_extensions else "approval_endpoints_unavailable"
    assert caught.value.code == expected
    assert not [row for row in ailink_gateway.audit() if row["path"].startswith("/v1/approvals")]


async def test_tracing_headers_are_stored_in_the_audit(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token())
    session = f"conv-{call.kind}"
    with call.client.trace(session_id=session, properties={"env": "test"}) as traced:
        assert traced is call.client
        outer = ailink.current_trace()
        assert outer is not None
        await call("get", "/v1/customers")
        with ailink.trace(properties={"step": "inner"}):
            await call("get", "/v1/customers/cus_002")
    rows = ailink_gateway.audit(session_id=session)
    assert len(rows) == 2
    by_path = {row["path"]: row for row in rows}
    assert by_path["/v1/customers"]["parent_span_id"] == outer.parent_span_id
    inner = by_path["/v1/customers/cus_002"]
    assert inner["parent_span_id"] != outer.parent_span_id and len(inner["parent_span_id"]) == 16
    assert inner["properties"].pop("span_path") == [[outer.parent_span_id, "trace"], [inner["parent_span_id"], "trace"]]
    assert inner["properties"] == {"env": "test", "step": "inner"}
    assert all(row["agent_name"] == "e2e-agent" for row in rows)
    assert len({row["span_id"] for row in rows}) == 2  # a new span per HTTP request
    assert len({row["trace_id"] for row in rows}) == 1  # one trace per session


async def test_openai_sdk_through_the_gateway_carries_the_session(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    ailink_gateway.script_llm(token, [{"content": "scripted hello"}])
    client = AsyncClient(token, ailink_gateway.url, agent_name="llm-agent")
    oai = client.openai()
    assert oai.max_retries == 0
    with ailink.trace(session_id="llm-session"):
        completion = await oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        chunks = [c async for c in client.chat_stream("gpt-4o-mini", "stream me", as_chunks=True)]
    assert completion.choices[0].message.content == "scripted hello"
    text = "".join(c.text for c in chunks)
    assert "stream me" in text
    assert chunks[-1].usage is not None
    rows = ailink_gateway.audit(session_id="llm-session")
    assert len(rows) == 2 and all(row["agent_name"] == "llm-agent" for row in rows)
    await client.aclose()


def test_sync_helpers_chat_embeddings_models_health(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(upstream="llm")
    with AIlinkClient(token, ailink_gateway.url) as client:
        assert client.is_healthy()
        reply = client.chat("gpt-4o-mini", "ping")
        assert "ping" in reply.choices[0].message.content
        vectors = client.embeddings("text-embedding-3-small", ["a", "b"])
        assert len(vectors.data) == 2 and vectors.data[0].embedding != vectors.data[1].embedding
        assert client.models()
    assert not AIlinkClient(token, "http://127.0.0.1:9").is_healthy()


def test_admin_resources_against_the_emulator(ailink_gateway: EmulatorGateway) -> None:
    admin = ailink_gateway.admin
    policy = admin.policies.create("deny-all", [{"when": {"always": True}, "then": {"action": "deny"}}])
    with pytest.raises(ailink.ValidationError):
        admin.policies.create("broken", [{"when": {"and": []}, "then": {"action": "deny"}}])
    created = admin.tokens.create("admin-test", "http://payments.mock", policy_ids=[policy.id])
    assert created.token_id.startswith("ailink_v1_")
    assert created.token_id not in repr(created)
    assert any(t.name == "admin-test" for t in admin.tokens.list())
    credential = admin.credentials.create("upstream", "custom", "sk-test-secret-value-123456")
    listed = json.dumps([c.model_dump() for c in admin.credentials.list()])
    assert credential.id in listed and "sk-test-secret-value-123456" not in listed
    assert any(p.name == "deny-all" for p in admin.policies.list())
    with AIlinkClient(created.token_id, ailink_gateway.url) as client, pytest.raises(ailink.PolicyDeniedError):
        client.get("/v1/customers")


def test_session_lifecycle_and_approval_management(ailink_gateway: EmulatorGateway) -> None:
    admin = ailink_gateway.admin
    token = ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL])
    with AIlinkClient(token, ailink_gateway.url) as client:
        answers: list[httpx.Response] = []

        def charge() -> None:
            with client.trace(session_id="lifecycle"):
                answers.append(client.post("/v1/charges", json=CHARGE))

        held = threading.Thread(target=charge)  # the real gateway holds the call until the decision
        held.start()
        _wait_until(lambda: bool(answers) or bool(admin.approvals.list(status="pending")))
        [approval] = admin.approvals.list(status="pending")
        approval_id = approval.id
        if ailink_gateway.serves_extensions:  # [ext] answered 202 at once, naming the approval
            held.join(10)
            assert answers[0].status_code == 202 and answers[0].json()["approval_id"] == approval_id
            assert admin.approvals.get(approval_id).summary_text == "POST /v1/charges"
        assert approval.summary_text == "POST /v1/charges"
        assert admin.approvals.approve(approval_id).updated is True
        assert admin.approvals.approve(approval_id).updated is False
        held.join(10)
        if not ailink_gateway.serves_extensions:  # the held call was answered with the upstream's result
            assert answers[0].status_code == 200 and answers[0].json()["amount"] == CHARGE["amount"]
        session = admin.sessions.get("lifecycle")
        assert session.requests and session.requests[0].approval_id == approval_id
        admin.sessions.set_status("lifecycle", "paused")
        with client.trace(session_id="lifecycle"), pytest.raises(ailink.PolicyDeniedError):
            client.get("/v1/customers")


def test_async_clients_serve_several_event_loops(ailink_gateway: EmulatorGateway) -> None:
    """Connections belong to the loop that opened them: an AsyncClient (and a tool's) may be
    used by several ``asyncio.run`` calls, as with a module-level client or tool."""
    token = ailink_gateway.create_token()
    client = AsyncClient(token, ailink_gateway.url)
    tool = ailink.gateway_tool(name="payments", description="d", token=token, gateway_url=ailink_gateway.url)

    async def once(i: int) -> tuple[int, ailink.ToolOutcome]:
        response = await client.get("/v1/customers/cus_001")
        result = await tool.arun({"method": "GET", "path": "/v1/customers/cus_002"})
        if i == 2:
            await client.aclose()
        return response.status_code, result.outcome

    assert [asyncio.run(once(i)) for i in range(3)] == [(200, ailink.ToolOutcome.OK)] * 3
