"""The core client's scenarios against the real emulator over loopback, on both drivers.

Each test body is written once and runs with the sync ``AIlinkClient`` (in a worker thread,
which copies the context like any caller would) and with the ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

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


async def test_same_key_different_body_is_refused(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token())
    await call("post", "/v1/charges", json=CHARGE, idempotency_key="order-1")
    with pytest.raises(ailink.IdempotencyKeyReusedError):
        await call("post", "/v1/charges", json={**CHARGE, "amount": 1}, idempotency_key="order-1")
    assert ailink_gateway.payments_stats()["charges"] == 1


async def test_resend_with_the_same_key_replays_instead_of_charging_twice(
    ailink_gateway: EmulatorGateway, make_driver: Any
) -> None:
    call = make_driver(ailink_gateway.create_token())
    first = await call("post", "/v1/charges", json=CHARGE, idempotency_key="charge-order-12345")
    second = await call("post", "/v1/charges", json=CHARGE, idempotency_key="charge-order-12345")
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert ailink_gateway.payments_stats()["by_idempotency_key"]["charge-order-12345"] == 1
    # the gateway answered the re-send from its store, and says so in the audit
    [replayed] = ailink_gateway.audit(status="replayed")
    assert (replayed["path"], replayed["status_code"]) == ("/v1/charges", 200)


async def test_202_then_wait_for_approval_approved(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]))
    pending = await call("post", "/v1/charges", json=CHARGE)
    assert pending.status_code == 202
    approval_id = pending.json()["request_id"]
    approver = ailink_gateway.approve_when_pending(count=1)
    result = await call("wait_for_approval", approval_id, timeout=20)
    approver.join()
    assert result.approved and result.status is ailink.ApprovalStatus.APPROVED
    assert result.response is not None and result.response.json()["amount"] == CHARGE["amount"]
    assert ailink_gateway.payments_stats()["charges"] == 1


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
    if mode == "async":
        assert seen == approver.decided  # the hook fired exactly once, with the decided approval


@pytest.mark.parametrize("mode", ["async", "blocking"])
async def test_rejection_raises(ailink_gateway: EmulatorGateway, make_driver: Any, mode: str) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]), approval_mode=mode)
    approver = ailink_gateway.approve_when_pending(count=1, decision="rejected", reason="too large")
    with pytest.raises(ailink.ApprovalRejectedError) as caught:
        await call("post", "/v1/charges", json=CHARGE, wait_for_approval=True, approval_timeout=20)
    approver.join()
    assert caught.value.approval_id == approver.decided[0]
    assert ailink_gateway.payments_stats()["charges"] == 0


@pytest.mark.parametrize("mode", ["async", "blocking"])
async def test_expiry_fails_closed(ailink_gateway: EmulatorGateway, make_driver: Any, mode: str) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[SHORT_APPROVAL]), approval_mode=mode)
    with pytest.raises(ailink.ApprovalTimeoutError):
        await call("post", "/v1/charges", json=CHARGE, wait_for_approval=True, approval_timeout=20)
    assert ailink_gateway.payments_stats()["charges"] == 0


async def test_resend_reattaches_to_the_same_approval(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]))
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


async def test_withdrawn_approval_is_cancelled(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token(policies=[CHARGES_NEED_APPROVAL]))
    pending = await call("post", "/v1/charges", json=CHARGE)
    approval_id = pending.json()["approval_id"]
    await call("withdraw_approval", approval_id)
    result = await call("wait_for_approval", approval_id, timeout=5)
    assert result.status is ailink.ApprovalStatus.CANCELLED and not result.approved
    assert ailink_gateway.payments_stats()["charges"] == 0


async def test_unknown_approval_id_is_not_found(ailink_gateway: EmulatorGateway, make_driver: Any) -> None:
    call = make_driver(ailink_gateway.create_token())
    with pytest.raises(ailink.NotFoundError):
        await call("wait_for_approval", "apr_does_not_exist", timeout=5)


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
        with client.trace(session_id="lifecycle"):
            pending = client.post("/v1/charges", json=CHARGE)
        approval_id = pending.json()["approval_id"]
        listed = admin.approvals.list(status="pending")
        assert [a.id for a in listed] == [approval_id]
        assert admin.approvals.get(approval_id).summary_text == "POST /v1/charges"
        assert admin.approvals.approve(approval_id).updated is True
        assert admin.approvals.approve(approval_id).updated is False
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
