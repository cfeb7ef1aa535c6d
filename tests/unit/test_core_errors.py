"""Protocol §3: every error row, upstream vs gateway errors, malformed bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import ailink
from ailink._errors import error_from_response, is_gateway_error

from .helpers import GATEWAY, SECRETS, TOKEN, UPSTREAM_KEY, Driver, Recorder, gateway_error

RID = "req_0123456789abcdef0123456789abcdef"

# (status, code, class, extra attribute checks)
ROWS: list[tuple[int, str, type[ailink.AIlinkError], dict[str, Any]]] = [
    (401, "token_not_found", ailink.AuthenticationError, {}),
    (401, "token_revoked", ailink.AuthenticationError, {}),
    (402, "spend_cap_reached", ailink.SpendCapExceededError, {}),
    (403, "policy_denied", ailink.PolicyDeniedError, {}),
    (403, "content_blocked", ailink.ContentBlockedError, {}),
    (403, "model_access_denied", ailink.PermissionDeniedError, {}),
    (403, "approval_rejected", ailink.ApprovalRejectedError, {}),
    (404, "approval_not_found", ailink.NotFoundError, {}),
    (404, "not_found", ailink.NotFoundError, {}),
    (408, "approval_timeout", ailink.ApprovalTimeoutError, {}),
    (409, "idempotency_in_progress", ailink.IdempotencyConflictError, {}),
    (409, "approval_pending", ailink.ApprovalPendingError, {}),
    (422, "idempotency_key_reused", ailink.IdempotencyKeyReusedError, {}),
    (422, "validation_error", ailink.ValidationError, {}),
    (429, "rate_limit_exceeded", ailink.RateLimitError, {}),
    (500, "internal_server_error", ailink.GatewayError, {}),
    (502, "upstream_failed", ailink.UpstreamError, {}),
    (503, "all_upstreams_exhausted", ailink.CircuitOpenError, {}),
]


@pytest.mark.parametrize(("status", "code", "cls", "extra"), ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_error_row(status: int, code: str, cls: type[ailink.AIlinkError], extra: dict[str, Any]) -> None:
    response = gateway_error(status, code, f"message for {code}", request_id=RID)
    error = error_from_response(response)
    assert type(error) is cls
    assert isinstance(error, ailink.AIlinkError)
    assert error.status_code == status
    assert error.code == code
    assert error.message == f"message for {code}"
    assert error.request_id == RID
    assert error.response is response
    assert code in str(error) and RID in str(error)


def test_aliases_and_hierarchy() -> None:
    assert ailink.BudgetExceededError is ailink.SpendCapExceededError
    assert issubclass(ailink.PolicyDeniedError, ailink.PermissionDeniedError)
    assert issubclass(ailink.ApprovalRejectedError, ailink.PermissionDeniedError)
    assert issubclass(ailink.IdempotencyKeyReusedError, ailink.ValidationError)
    assert issubclass(ailink.APITimeoutError, ailink.APIConnectionError)


def test_policy_name_parsed_from_message_when_details_absent() -> None:
    response = gateway_error(403, "policy_denied", "Request blocked by policy 'no-refunds': refunds are manual")
    error = error_from_response(response)
    assert isinstance(error, ailink.PolicyDeniedError)
    assert error.policy_name == "no-refunds"
    assert error.reason == "refunds are manual"


def test_policy_name_from_details_wins_over_message() -> None:
    response = gateway_error(
        403, "policy_denied", "Request blocked by policy 'other': x", details={"policy": "charges-cap", "reason": "r"}
    )
    error = error_from_response(response)
    assert isinstance(error, ailink.PolicyDeniedError)
    assert error.policy_name == "charges-cap"
    assert error.reason == "r"


def test_policy_denied_without_any_policy_name() -> None:
    error = error_from_response(gateway_error(403, "policy_denied", "Session is paused"))
    assert isinstance(error, ailink.PolicyDeniedError)
    assert error.policy_name is None
    assert error.reason == "Session is paused"


def test_rate_limit_retry_after_seconds() -> None:
    error = error_from_response(gateway_error(429, "rate_limit_exceeded", headers={"Retry-After": "7"}))
    assert isinstance(error, ailink.RateLimitError)
    assert error.retry_after == 7.0
    no_header = error_from_response(gateway_error(429, "rate_limit_exceeded"))
    assert isinstance(no_header, ailink.RateLimitError)
    assert no_header.retry_after is None


def test_rate_limit_retry_after_http_date_is_ignored() -> None:
    error = error_from_response(
        gateway_error(429, "rate_limit_exceeded", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    assert isinstance(error, ailink.RateLimitError)
    assert error.retry_after is None


def test_approval_ids_from_details_and_header() -> None:
    rejected = error_from_response(
        gateway_error(403, "approval_rejected", "Request was rejected by a reviewer.",
                      details={"approval_id": "apr_9", "reason": "too big"})
    )
    assert isinstance(rejected, ailink.ApprovalRejectedError)
    assert rejected.approval_id == "apr_9"
    assert rejected.reason == "too big"
    timed_out = error_from_response(
        gateway_error(408, "approval_timeout", "no decision", headers={"X-AIlink-Approval-Id": "apr_8"})
    )
    assert isinstance(timed_out, ailink.ApprovalTimeoutError)
    assert timed_out.approval_id == "apr_8"
    assert timed_out.status_code == 408


def test_content_blocked_keeps_details() -> None:
    details = {"policy": "pii", "matched_patterns": ["ssn"], "confidence": 0.9}
    error = error_from_response(gateway_error(403, "content_blocked", "blocked", details=details))
    assert isinstance(error, ailink.ContentBlockedError)
    assert error.details["matched_patterns"] == ["ssn"]


def test_request_id_falls_back_to_header() -> None:
    response = gateway_error(500, "internal_server_error", request_id=None, headers={"X-Request-Id": "req_hdr"})
    assert error_from_response(response).request_id == "req_hdr"


# -- upstream (non-gateway) errors ------------------------------------------------------------


def test_upstream_401_is_not_authentication_error() -> None:
    body = {"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY}", "type": "invalid_request_error",
                      "param": None, "code": "invalid_api_key"}}
    error = error_from_response(httpx.Response(401, json=body))
    assert type(error) is ailink.UpstreamError
    assert not isinstance(error, ailink.AuthenticationError)
    assert error.status_code == 401
    assert error.code == "invalid_api_key"
    assert error.details.get("upstream") is True
    assert UPSTREAM_KEY not in str(error) and UPSTREAM_KEY not in repr(error)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500, 503])
def test_upstream_errors_pass_through_as_upstream_error(status: int) -> None:
    error = error_from_response(httpx.Response(status, json={"detail": "nope"}))
    assert type(error) is ailink.UpstreamError
    assert error.status_code == status
    assert "nope" in error.message


def test_upstream_error_without_code_has_no_code() -> None:
    error = error_from_response(httpx.Response(404, json={"error": {"message": "x", "type": "t", "code": None}}))
    assert type(error) is ailink.UpstreamError
    assert error.code is None


def test_is_gateway_error_tells_bodies_apart() -> None:
    assert is_gateway_error(gateway_error(401, "token_not_found"))
    assert not is_gateway_error(httpx.Response(401, json={"error": {"code": "invalid_api_key"}}))
    assert not is_gateway_error(httpx.Response(401, text="Unauthorized"))


# -- malformed bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="<html>Internal Server Error</html>"),
        httpx.Response(502, content=b""),
        httpx.Response(401, content=b"\xff\xfe not utf-8"),
        httpx.Response(403, json=["a", "list"]),
        httpx.Response(403, json={"error": "a string, not an object"}),
        httpx.Response(413, text="Payload Too Large"),
    ],
    ids=["html-500", "empty-502", "binary-401", "list-403", "string-error-403", "plain-413"],
)
def test_malformed_error_bodies_become_upstream_errors(response: httpx.Response) -> None:
    error = error_from_response(response)
    assert type(error) is ailink.UpstreamError
    assert error.status_code == response.status_code


def test_error_details_not_a_dict_is_tolerated() -> None:
    response = httpx.Response(403, json={"error": {"code": "policy_denied", "message": "m", "details": "oops"}})
    error = error_from_response(response)
    assert isinstance(error, ailink.PolicyDeniedError)
    assert error.details == {}


# -- raised by the clients --------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code", "cls", "extra"), ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
async def test_clients_raise_the_typed_error(
    driver: Driver, status: int, code: str, cls: type[ailink.AIlinkError], extra: dict[str, Any]
) -> None:
    recorder = Recorder(default=gateway_error(status, code, f"Token {TOKEN} said no", request_id=RID))
    client = driver.client(recorder, retries=0)
    with pytest.raises(cls) as info:
        await driver.call(client, "POST", "/v1/charges", json={"amount": 1})
    error = info.value
    assert (error.status_code, error.code, error.request_id) == (status, code, RID)
    for secret in SECRETS:
        assert secret not in str(error) and secret not in repr(error) and secret not in error.message
    assert len(recorder.requests) == 1


def test_repr_of_error() -> None:
    error = error_from_response(gateway_error(402, "spend_cap_reached", "cap"))
    assert repr(error) == "SpendCapExceededError('cap', status_code=402, code='spend_cap_reached')"


def test_gateway_url_is_kept_in_config() -> None:
    assert ailink.AIlinkClient(TOKEN, GATEWAY + "/").gateway_url == GATEWAY
