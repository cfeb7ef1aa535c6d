"""The framework-neutral tool action: validation, path safety, outcomes, artifacts, idempotency."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import ailink
from ailink import CallContext, ToolAction, ToolOutcome

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
    pending_answer,
)

ACTION = ToolAction(
    name="payments_api",
    description="Payments API",
    methods=("GET", "POST"),
    base_path="/v1/proxy/services/payments",
)
CTX = CallContext(session_id="sess-1", parent_span_id="aaaaaaaaaaaaaaaa", call_id="call_1",
                  properties={"framework": "test"})


# -- path safety ----------------------------------------------------------------------------

ESCAPES = [
    "/v1/../admin",
    "/..",
    "/v1/./x",
    "/v1/%2e%2e/admin",
    "/v1/%2E%2E/admin",
    "/v1/.%2e/admin",
    "/v1%2Fadmin",
    "/v1%2fadmin",
    "/v1/%252e%252e/admin",
    "/v1/%25252e%25252e/admin",
    "/v1/%255c..%255cadmin",
    "//evil.example/v1",
    "http://evil.example/v1",
    "/http://evil.example",
    "https:/x",
    "v1/customers",
    "",
    "/v1\\..\\admin",
    "/v1/%5c..%5cadmin",
    "/v1/customers?limit=1",
    "/v1/customers#frag",
    "/v1/cust omers",
    "/v1/customers\n",
    "/v1/%00",
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_path_escapes_are_refused_and_nothing_is_sent(driver: Driver, path: str) -> None:
    recorder = Recorder()
    tool = driver.tool(recorder, ACTION)
    result = await driver.run_tool(tool, {"method": "GET", "path": path}, CTX)
    assert result.outcome is ToolOutcome.INVALID_ARGUMENTS
    assert result.is_error and result.error_code == "invalid_arguments"
    assert "Nothing was sent" in result.content
    assert recorder.requests == []


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/customers/cus_1", "/v1/a.b/..c", "/v1/%41bc", "/v1/x:y"])
async def test_safe_paths_are_sent_under_the_base_path(driver: Driver, path: str) -> None:
    recorder = Recorder()
    tool = driver.tool(recorder, ACTION)
    result = await driver.run_tool(tool, {"method": "GET", "path": path, "query": {"limit": 3}}, CTX)
    assert result.outcome is ToolOutcome.OK
    sent = recorder.requests[0]
    assert sent.url.raw_path.decode().startswith("/v1/proxy/services/payments/v1/")
    assert sent.url.host == "gateway.test"
    assert sent.url.params["limit"] == "3"


ALLOWED = ToolAction(
    name="payments_api", description="d", methods=("GET", "POST"), base_path="/",
    allowed_paths=("/v1/customers*", "POST /v1/charges"),
)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/v1/customers", True), ("GET", "/v1/customers/cus_1", True), ("POST", "/v1/customers", True),
     ("POST", "/v1/charges", True), ("GET", "/v1/charges", False), ("POST", "/v1/refunds", False),
     ("GET", "/v2/customers", False)],
)
async def test_allowed_paths(driver: Driver, method: str, path: str, allowed: bool) -> None:
    recorder = Recorder()
    tool = driver.tool(recorder, ALLOWED)
    body = {"amount": 1} if method == "POST" else None
    result = await driver.run_tool(tool, {"method": method, "path": path, "body": body}, CTX)
    assert (result.outcome is ToolOutcome.OK) is allowed
    assert len(recorder.requests) == (1 if allowed else 0)
    if not allowed:
        assert "allowed paths" in result.content


# -- invalid arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        {"method": "DELETE", "path": "/v1/customers"},
        {"method": "get; DROP", "path": "/v1/customers"},
        {"method": "GET"},
        {"method": "GET", "path": "/v1/x", "extra": 1},
        {"method": "GET", "path": 5},
        {"method": "GET", "path": "/v1/x", "query": "limit=1"},
        {"method": "POST", "path": "/v1/x", "body": "not an object"},
        {"method": "GET", "path": "/v1/x", "body": {"a": 1}},
        "{not json",
        "[1, 2]",
        ["GET", "/v1/x"],
        42,
        {"method": "GET", "path": "/v1/" + "a" * 70_000},
        {"method": "GET", "path": "/v1/x", "query": {"q": "é" * 5_000}},
    ],
    ids=["wrong-method", "junk-method", "missing-path", "extra-field", "path-not-str", "query-str",
         "body-str", "get-with-body", "non-json", "json-list", "list", "int", "huge-path", "huge-query"],
)
async def test_invalid_arguments(driver: Driver, args: Any) -> None:
    recorder = Recorder()
    tool = driver.tool(recorder, ACTION)
    result = await driver.run_tool(tool, args, CTX)
    assert result.outcome is ToolOutcome.INVALID_ARGUMENTS
    assert result.reason and "payments_api" in result.content
    assert recorder.requests == []


async def test_json_string_arguments_and_single_method_default(driver: Driver) -> None:
    recorder = Recorder()
    read_only = ToolAction(name="reader", description="d")
    tool = driver.tool(recorder, read_only)
    result = await driver.run_tool(tool, json.dumps({"path": "/v1/customers"}), CTX)
    assert result.ok
    assert recorder.requests[0].method == "GET"
    assert recorder.requests[0].url.path == "/v1/customers"


def test_args_schema() -> None:
    schema = ACTION.args_schema()
    assert set(schema["properties"]) == {"method", "path", "query", "body", "idempotency_key"}
    assert schema["required"] == ["method", "path"]
    assert schema["additionalProperties"] is False
    method = json.dumps(schema["properties"]["method"])
    assert "GET" in method and "POST" in method and "DELETE" not in method


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "bad name"}, {"name": "x" * 65}, {"methods": ("TRACE",)}, {"methods": ()}, {"base_path": "v1"}],
)
def test_invalid_action_definitions(kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"name": "ok", "description": "d", **kwargs}
    with pytest.raises(ValueError):
        ToolAction(**options)


# -- outcomes -------------------------------------------------------------------------------


async def test_ok_result_and_headers(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(201, json={"id": "ch_1", "amount": 5}))
    tool = driver.tool(recorder, ACTION, agent_name="billing-agent")
    with ailink.trace("outer-session", properties={"env": "test"}):
        result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}, CTX)
    assert result.outcome is ToolOutcome.OK and result.ok and not result.is_error
    assert result.status_code == 201 and result.body == {"id": "ch_1", "amount": 5}
    assert result.content.startswith("HTTP 201 from POST /v1/charges")
    assert '"id":"ch_1"' in result.content
    sent = recorder.requests[0]
    assert sent.headers["x-ailink-tool-name"] == "payments_api"
    assert sent.headers["x-session-id"] == "sess-1"
    assert sent.headers["x-parent-span-id"] == "aaaaaaaaaaaaaaaa"
    assert json.loads(sent.headers["x-properties"]) == {"env": "test", "framework": "test"}
    assert sent.headers["x-ailink-agent-name"] == "billing-agent"
    assert sent.headers["prefer"] == "respond-async"
    key = sent.headers["x-ailink-idempotency-key"]
    assert result.idempotency_key == key == sent.headers["x-trueflow-idempotency-key"]
    assert "idempotency-key" not in sent.headers
    assert result.request_id == sent.headers["x-request-id"]
    artifact = result.artifact
    assert artifact["status"] == "ok" and artifact["status_code"] == 201
    assert artifact["idempotency_key"] == result.idempotency_key and artifact["replayed"] is False
    json.dumps(artifact)  # JSON-ready


async def test_replayed_result_says_it_was_not_repeated(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(200, json={"id": "ch_1"}, headers={"Idempotent-Replayed": "true"}))
    tool = driver.tool(recorder, ACTION)
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.ok and result.replayed
    assert "not repeated" in result.content
    assert result.approval_id is None and result.artifact["replayed"] is True


async def test_approved_result_says_it_was_approved_and_performed_once(driver: Driver) -> None:
    # The approved request's response is replayed by the gateway, but for the model it is news.
    recorder = Recorder(default=httpx.Response(200, json={"id": "ch_1"}, headers={"Idempotent-Replayed": "true",
                                                                                  "X-AIlink-Approval-Id": "apr_1"}))
    tool = driver.tool(recorder, ACTION)
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.ok and result.replayed
    assert "approved by a human reviewer, approval apr_1; performed once" in result.content
    assert "already performed" not in result.content
    assert result.approval_id == "apr_1" and result.artifact["approval_id"] == "apr_1"


async def test_pending_without_waiting_then_reattaching(driver: Driver) -> None:
    recorder = Recorder(script=[pending_answer("apr_1")],
                        default=httpx.Response(200, json={"id": "ch_1"}, headers={"Idempotent-Replayed": "true"}))
    tool = driver.tool(recorder, ACTION)
    args = {"method": "POST", "path": "/v1/charges", "body": {"amount": 1200}}
    seen: list[Any] = []
    first = await driver.run_tool(tool, args, CTX, wait=False, on_pending=seen.append)
    assert first.outcome is ToolOutcome.PENDING and not first.is_error
    assert first.error_code == "approval_pending"
    assert first.approval_id == "apr_1" and first.status_code == 202 and first.policy == "charges-need-approval"
    assert first.pending is not None and first.artifact["pending"]["approval_id"] == "apr_1"
    assert "has not been performed" in first.content
    assert seen == []  # no wait started, no hook
    second = await driver.run_tool(tool, dict(reversed(list(args.items()))), CTX, wait=False)
    assert second.ok and second.replayed
    keys = recorder.header("x-ailink-idempotency-key")
    assert keys[0] == keys[1] == first.idempotency_key
    assert len(recorder.requests) == 2


async def test_pending_waited_and_approved(driver: Driver, clock: FakeClock) -> None:
    stored = httpx.Response(200, json={"id": "ch_9"}, headers={"Idempotent-Replayed": "true",
                                                              "X-AIlink-Approval-Id": "apr_1"})
    recorder = Recorder(script=[pending_answer("apr_1"), httpx.Response(200, json={"status": "approved"}), stored])
    tool = driver.tool(recorder, ACTION)
    seen: list[Any] = []
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX,
                                   on_pending=seen.append)
    assert result.ok and result.body == {"id": "ch_9"} and result.approval_id == "apr_1"
    assert [p.approval_id for p in seen] == ["apr_1"]
    assert recorder.paths() == ["POST /v1/proxy/services/payments/v1/charges", "GET /v1/approvals/apr_1",
                                "GET /v1/approvals/apr_1/result"]


@pytest.mark.parametrize(
    ("answers", "outcome", "checks"),
    [
        ([pending_answer("apr_1"), httpx.Response(200, json={"status": "rejected", "reason": "no"})],
         ToolOutcome.REJECTED, {"approval_id": "apr_1", "reason": "no", "error_code": "approval_rejected"}),
        ([pending_answer("apr_1"), httpx.Response(200, json={"status": "expired"})],
         ToolOutcome.TIMED_OUT, {"approval_id": "apr_1", "error_code": "approval_timeout"}),
        ([gateway_error(403, "approval_rejected", "Request was rejected by a reviewer.",
                        details={"approval_id": "apr_2"})],
         ToolOutcome.REJECTED, {"approval_id": "apr_2", "status_code": 403}),
        ([gateway_error(408, "approval_timeout", "timed out", headers={"X-AIlink-Approval-Id": "apr_3"})],
         ToolOutcome.TIMED_OUT, {"approval_id": "apr_3", "status_code": 408}),
        ([gateway_error(403, "policy_denied", "Request blocked by policy 'no-big-charges': amount too high")],
         ToolOutcome.DENIED, {"policy": "no-big-charges", "reason": "amount too high", "error_code": "policy_denied"}),
        ([gateway_error(403, "content_blocked", "pii")], ToolOutcome.DENIED, {"status_code": 403}),
        ([gateway_error(402, "spend_cap_reached", "cap")], ToolOutcome.DENIED, {"status_code": 402}),
        ([httpx.Response(400, json={"error": {"message": "amount must be positive", "type": "invalid_request"}})],
         ToolOutcome.ERROR, {"status_code": 400, "error_code": "request_failed"}),
        ([gateway_error(404, "not_found", "no such customer")], ToolOutcome.ERROR, {"status_code": 404}),
        ([gateway_error(429, "rate_limit_exceeded", headers={"Retry-After": "3600"})],
         ToolOutcome.ERROR, {"status_code": 429}),
    ],
    ids=["rejected", "expired", "blocking-403", "blocking-408", "denied", "content-blocked", "spend-cap",
         "upstream-400", "not-found", "rate-limited"],
)
async def test_outcome_mapping(
    driver: Driver, clock: FakeClock, answers: list[httpx.Response], outcome: ToolOutcome, checks: dict[str, Any]
) -> None:
    recorder = Recorder(script=list(answers))
    tool = driver.tool(recorder, ACTION, retries=fast_retry(1))
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.outcome is outcome
    assert result.is_error
    for name, value in checks.items():
        assert getattr(result, name) == value, name
    assert result.idempotency_key is not None
    assert result.artifact["status"] == outcome.value
    if outcome is not ToolOutcome.ERROR:
        assert "not performed" in result.content or "NOT performed" in result.content
    if checks.get("policy"):
        assert "no-big-charges" in result.content
    if checks.get("status_code") == 429:
        assert "rate limited" in result.content and "3600" in result.content


async def test_upstream_error_body_is_shown(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(400, json={"error": {"message": "amount must be positive"}}))
    tool = driver.tool(recorder, ACTION)
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": -1}}, CTX)
    assert result.outcome is ToolOutcome.ERROR
    assert "HTTP 400" in result.content and "amount must be positive" in result.content
    assert result.body == {"error": {"message": "amount must be positive"}}


def _approval_gateway(withdraw: httpx.Response) -> Recorder:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return withdraw
        return httpx.Response(200, json={"status": "pending"})

    return Recorder(script=[pending_answer("apr_1")], default=answer)


async def test_approval_wait_deadline_withdraws_and_is_timed_out(driver: Driver, clock: FakeClock) -> None:
    recorder = _approval_gateway(httpx.Response(200, json={"status": "cancelled", "updated": True}))
    tool = driver.tool(recorder, ACTION, approval_timeout=5)
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.outcome is ToolOutcome.TIMED_OUT
    assert result.approval_id == "apr_1"
    assert "NOT performed" in result.content
    assert [r.method for r in recorder.requests][-1] == "DELETE"  # withdrawn: it cannot run later
    assert not any(r.url.path.endswith("/result") for r in recorder.requests)


async def test_approval_that_cannot_be_withdrawn_is_outcome_unknown(driver: Driver, clock: FakeClock) -> None:
    recorder = _approval_gateway(httpx.Response(503, text="unavailable"))
    tool = driver.tool(recorder, ACTION, approval_timeout=5, retries=fast_retry(0))
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.outcome is ToolOutcome.UNKNOWN and result.is_error
    assert result.error_code == "outcome_unknown"
    assert "may or may not have been performed" in result.content and "apr_1" in result.content
    assert "NOT performed" not in result.content


async def test_approval_approved_while_withdrawing_returns_its_result(driver: Driver, clock: FakeClock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(200, json={"status": "approved", "updated": False})
        if request.url.path.endswith("/result"):
            return httpx.Response(201, json={"id": "ch_9"}, headers={"X-AIlink-Approval-Id": "apr_1"})
        return httpx.Response(200, json={"status": "pending"})

    recorder = Recorder(script=[pending_answer("apr_1")], default=answer)
    tool = driver.tool(recorder, ACTION, approval_timeout=5)
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.outcome is ToolOutcome.OK and result.body == {"id": "ch_9"}


@pytest.mark.parametrize(
    ("answer", "outcome", "text"),
    [(lambda: gateway_error(401, "token_not_found"), ToolOutcome.ERROR, "did not accept this tool's credentials"),
     (lambda: httpx.ConnectError("refused"), ToolOutcome.ERROR, "could not be reached"),
     (lambda: httpx.ReadTimeout("slow"), ToolOutcome.UNKNOWN, "may or may not have been performed"),
     (lambda: httpx.Response(502, text="bad gateway"), ToolOutcome.UNKNOWN, "may or may not have been performed"),
     (lambda: httpx.Response(202, json={"status": "pending_approval"}), ToolOutcome.UNKNOWN, "OUTCOME UNKNOWN"),
     (lambda: httpx.Response(200, stream=httpx.ByteStream(b"\x00garbage"), headers={"Content-Encoding": "gzip"}),
      ToolOutcome.UNKNOWN, "OUTCOME UNKNOWN")],
    ids=["auth", "connect", "timeout", "intermediary-502", "malformed-202", "undecodable"],
)
async def test_network_and_gateway_failures_become_results(
    driver: Driver, answer: Any, outcome: ToolOutcome, text: str
) -> None:
    """A tool never raises for what the network or the gateway does: the model reads the outcome,
    and an action that may have happened says so and names the key to learn its outcome with."""
    recorder = Recorder(default=lambda request: _answer_or_raise(answer()))
    tool = driver.tool(recorder, ACTION, retries=fast_retry(1))
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.outcome is outcome and result.is_error
    assert text in result.content
    assert result.idempotency_key == recorder.header("x-ailink-idempotency-key")[0]
    if outcome is ToolOutcome.UNKNOWN:
        assert "Do not repeat it blindly" in result.content
        assert "Check whether it happened" in result.content  # the real gateway stores no outcome
    for secret in SECRETS:
        assert secret not in result.content and secret not in str(result.artifact)


async def test_outcome_unknown_on_a_storing_gateway_names_the_key_to_resend(driver: Driver) -> None:
    advertise()
    recorder = Recorder(default=gateway_error(502, "upstream_failed", details={"ambiguous": True}))
    tool = driver.tool(recorder, ACTION, retries=fast_retry(2))
    result = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1}}, CTX)
    assert result.outcome is ToolOutcome.UNKNOWN
    key = recorder.header("x-ailink-idempotency-key")[0]
    assert f'idempotency_key "{key}"' in result.content
    # following that advice: the same call with that key is the same request (the gateway replays)
    again = await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {"a": 1},
                                         "idempotency_key": key}, CTX)
    assert recorder.header("x-ailink-idempotency-key")[-1] == key
    assert again.idempotency_key == key


def _answer_or_raise(item: Any) -> httpx.Response:
    if isinstance(item, Exception):
        raise item
    return item  # type: ignore[no-any-return]


async def test_upstream_401_is_an_error_result_not_a_raise(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(401, json={"error": {"message": "bad provider key",
                                                                    "code": "invalid_api_key"}}))
    tool = driver.tool(recorder, ACTION)
    result = await driver.run_tool(tool, {"method": "GET", "path": "/v1/customers"}, CTX)
    assert result.outcome is ToolOutcome.ERROR and result.status_code == 401


# -- truncation -----------------------------------------------------------------------------


async def test_truncation_with_note(driver: Driver) -> None:
    big = {"items": ["x" * 100] * 100}
    recorder = Recorder(default=httpx.Response(200, json=big))
    action = ToolAction(name="reader", description="d", max_response_chars=300)
    tool = driver.tool(recorder, action)
    result = await driver.run_tool(tool, {"path": "/v1/items"}, CTX)
    assert result.ok
    body, _, note = result.content.rpartition("\n")
    assert len(body) == 300
    assert note.startswith("[truncated: showing 300 of ") and note.endswith(" characters]")
    assert result.body == big  # the artifact keeps everything


async def test_short_content_is_not_truncated(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(200, json={"a": 1}))
    tool = driver.tool(recorder, ToolAction(name="reader", description="d", max_response_chars=300))
    result = await driver.run_tool(tool, {"path": "/v1/items"}, CTX)
    assert "truncated" not in result.content


async def test_error_content_is_truncated_too(driver: Driver) -> None:
    recorder = Recorder(default=httpx.Response(400, text="e" * 5000))
    tool = driver.tool(recorder, ToolAction(name="reader", description="d", max_response_chars=200))
    result = await driver.run_tool(tool, {"path": "/v1/items"}, CTX)
    assert result.outcome is ToolOutcome.ERROR
    assert "[truncated: showing 200 of" in result.content
    assert len(result.content) < 300


# -- idempotency keys -----------------------------------------------------------------------


def _key(args: dict[str, Any], context: CallContext, action: ToolAction = ACTION) -> str | None:
    call = action.parse(args)
    return action.idempotency_key(call, context)


def test_key_is_stable_regardless_of_dict_order() -> None:
    body = {"amount": 5, "currency": "eur", "meta": {"x": 1, "y": 2}}
    reordered = {"meta": {"y": 2, "x": 1}, "currency": "eur", "amount": 5}
    a = _key({"method": "POST", "path": "/v1/charges", "body": body}, CTX)
    b = _key({"body": reordered, "path": "/v1/charges", "method": "POST"}, CTX)
    assert a is not None and a == b
    assert len(a) <= 255


@pytest.mark.parametrize(
    "change",
    [{"body": {"amount": 6}}, {"path": "/v1/refunds"}, {"query": {"x": "1"}}],
)
def test_key_differs_for_different_args(change: dict[str, Any]) -> None:
    base = {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}
    assert _key(base, CTX) != _key({**base, **change}, CTX)


@pytest.mark.parametrize(
    "context",
    [CallContext(session_id="sess-2", call_id="call_1"), CallContext(session_id="sess-1", call_id="call_2")],
)
def test_key_differs_for_different_session_or_call(context: CallContext) -> None:
    args = {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}
    assert _key(args, CTX) != _key(args, context)


def test_key_differs_per_tool_and_ignores_span_and_properties() -> None:
    args = {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}
    other = ToolAction(name="other_api", description="d", methods=("POST",), base_path=ACTION.base_path)
    assert _key(args, CTX) != _key(args, CTX, other)
    rerun = CallContext(session_id="sess-1", call_id="call_1", parent_span_id="bbbbbbbbbbbbbbbb", properties={"r": 2})
    assert _key(args, CTX) == _key(args, rerun)


def test_explicit_keys_win() -> None:
    args = {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}
    assert _key({**args, "idempotency_key": "from-args"}, CallContext(idempotency_key="from-ctx")) == "from-args"
    assert _key(args, CallContext(session_id="s", call_id="c", idempotency_key="from-ctx")) == "from-ctx"


async def test_derived_key_is_sent_and_reused_by_retries(driver: Driver) -> None:
    recorder = Recorder(script=[gateway_error(503, "all_upstreams_exhausted"), httpx.ConnectError("x")])
    tool = driver.tool(recorder, ACTION, retries=fast_retry(2))
    args = {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}
    result = await driver.run_tool(tool, args, CTX)
    expected = _key(args, CTX)
    assert result.ok and result.idempotency_key == expected
    assert recorder.header("x-ailink-idempotency-key") == [expected] * 3
    assert recorder.header("x-trueflow-idempotency-key") == [expected] * 3


async def test_get_tool_calls_carry_the_derived_key(driver: Driver) -> None:
    recorder = Recorder()
    tool = driver.tool(recorder, ACTION)
    await driver.run_tool(tool, {"method": "GET", "path": "/v1/customers"}, CTX)
    assert recorder.header("x-ailink-idempotency-key") == [_key({"method": "GET", "path": "/v1/customers"}, CTX)]


async def test_without_session_or_call_id_each_write_gets_a_fresh_key(driver: Driver) -> None:
    recorder = Recorder()
    tool = driver.tool(recorder, ACTION)
    args = {"method": "POST", "path": "/v1/charges", "body": {"amount": 5}}
    await driver.run_tool(tool, args, CallContext())
    await driver.run_tool(tool, args)
    first, second = recorder.header("x-ailink-idempotency-key")
    assert first and second and first != second


# -- the gateway_tool factory -----------------------------------------------------------------


def test_gateway_tool_factory() -> None:
    tool = ailink.gateway_tool(
        name="payments_api", description="Payments", token=TOKEN, methods=("get", "post"), gateway_url=GATEWAY,
        agent_name="agent", base_path="/v1/proxy/services/payments", allowed_paths=["/v1/*"],
        approval_timeout=12, approval_mode="blocking", max_response_chars=100,
    )
    assert tool.action.methods == ("GET", "POST")
    assert tool.action.allowed_paths == ("/v1/*",)
    assert tool.approval_timeout == 12
    assert tool.config.approval_mode == "blocking" and tool.config.agent_name == "agent"
    assert tool.config.approval_timeout == 12
    assert TOKEN not in repr(tool)


async def test_gateway_tool_blocking_mode_request(driver: Driver) -> None:
    recorder = Recorder()
    tool = driver.tool(recorder, ACTION, approval_mode="blocking", approval_timeout=100)
    await driver.run_tool(tool, {"method": "POST", "path": "/v1/charges", "body": {}}, CTX)
    sent = recorder.requests[0]
    assert "prefer" not in sent.headers
    assert sent.extensions["timeout"]["read"] > 100


def test_gateway_tool_with_async_client() -> None:
    client = ailink.AsyncClient(TOKEN, GATEWAY)
    tool = ailink.gateway_tool(name="t", description="d", client=client)
    assert tool.async_client is client
    assert tool.config is client.settings
