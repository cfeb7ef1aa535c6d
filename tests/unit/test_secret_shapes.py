"""What counts as a secret beyond known prefixes: URL passwords, secret-named URL parameters and
fields, and how ``scrub``/``redact``/``redact_fields`` and ``vcr_config`` hide them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from vcr.request import Request

from ailink._secrets import is_secret_name, redact, redact_fields, scrub
from ailink.testing import vcr_config

PASSWORD = "hunter2-Pl4nted"


@pytest.mark.parametrize(("text", "scrubbed"), [
    (f"GET http://alice:{PASSWORD}@127.0.0.1:9/v1/x (ConnectError)",
     "GET http://alice:***@127.0.0.1:9/v1/x (ConnectError)"),
    (f"https://bob:{PASSWORD}@gw.example", "https://bob:***@gw.example"),
    (f"postgres://svc:{PASSWORD}@db:5432/app", "postgres://svc:***@db:5432/app"),
    (f"http://u:p@{PASSWORD}@host/x", "http://u:***@host/x"),  # a raw '@' inside the password
    ("https://ghp_PlantedTokenAsUser@github.example/x", "https://***@github.example/x"),  # a lone credential
    ("see https://example.com and mail a@b.example", "see https://example.com and mail a@b.example"),
    (f"GET http://h/v1/x?api_key={PASSWORD}&limit=5&access_token={PASSWORD}#f",
     "GET http://h/v1/x?api_key=***&limit=5&access_token=***#f"),
    (f'{{"next":"https://h/x?page_token=c1&token={PASSWORD}","n":1}}', '{"next":"https://h/x?page_token=c1&token=***","n":1}'),
])
def test_scrub_hides_url_passwords_and_secret_parameters(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed
    assert redact(text) == scrubbed.replace("***", "REDACTED")


@pytest.mark.parametrize("name", ["secret", "api_key", "apikey", "X-Api-Key", "token", "access_token",
                                  "refreshToken", "password", "passwd", "Authorization",
                                  "X-Upstream-Authorization", "client_secret", "clientSecret", "private_key",
                                  "aws_secret_access_key", "Cookie", "Set-Cookie", "key", "credentials"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["max_tokens", "prompt_tokens", "token_count", "tokenizer", "session_id",
                                  "X-Session-Id", "idempotency_key", "X-AIlink-Idempotency-Key", "page_token",
                                  "nextPageToken", "credential_id", "monkey", "keys", "amount", "X-Request-Id"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_redact_fields_walks_every_level() -> None:
    value = {"user": "bob", "password": PASSWORD, "max_tokens": 5, "empty_secret": "", "none_token": None,
             "nested": [{"apiKey": PASSWORD, "ok": "ailink_v1_PLANTEDabcdef"}, {"deeper": {"client_secret": 7}}],
             "credentials": {"user": "bob", "pin": 1234}}
    cleaned, changed = redact_fields(value)
    assert changed and PASSWORD not in json.dumps(cleaned)
    assert cleaned["password"] == "REDACTED" and cleaned["nested"][1]["deeper"]["client_secret"] == "REDACTED"
    assert cleaned["nested"][0] == {"apiKey": "REDACTED", "ok": "ailink_v1_REDACTED"}
    assert cleaned["credentials"] == "REDACTED"  # a secret-named object is hidden whole
    kept = (cleaned["user"], cleaned["max_tokens"], cleaned["empty_secret"], cleaned["none_token"])
    assert kept == ("bob", 5, "", None)
    assert redact_fields({"amount": 1, "items": ["a"]}) == ({"amount": 1, "items": ["a"]}, False)


def _record_request(method: str, uri: str, body: bytes | None, headers: dict[str, str]) -> Any:
    return vcr_config()["before_record_request"](Request(method, uri, body, headers))


def test_vcr_request_fields_query_form_and_headers() -> None:
    body = json.dumps({"model": "m", "max_tokens": 5, "provider": {"api_key": PASSWORD},
                       "messages": [{"role": "user", "content": "hi", "secret": PASSWORD}]}).encode()
    request = _record_request("POST", f"http://u:{PASSWORD}@gw.test/v1/chat?api_key={PASSWORD}&stream=true", body,
                              {"Content-Type": "application/json", "X-Auth-Token": PASSWORD,
                               "X-AIlink-Idempotency-Key": "idk_volatile", "Cookie": f"sid={PASSWORD}"})
    assert PASSWORD not in request.uri and "stream=true" in request.uri
    sent = json.loads(request.body)
    assert sent["provider"] == {"api_key": "REDACTED"} and sent["messages"][0]["secret"] == "REDACTED"
    assert (sent["max_tokens"], sent["messages"][0]["content"]) == (5, "hi")
    assert request.headers["X-Auth-Token"] == "REDACTED" and request.headers["Cookie"] == "REDACTED"
    assert request.headers["X-AIlink-Idempotency-Key"] == "idk_volatile"

    form = _record_request("POST", "http://gw.test/oauth/token",
                           f"grant_type=client_credentials&client_id=app&client_secret={PASSWORD}".encode(),
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert form.body == b"grant_type=client_credentials&client_id=app&client_secret=REDACTED"


def test_vcr_bodies_without_secrets_are_kept_byte_for_byte() -> None:
    body = b'{ "amount": 42,\n  "currency": "usd" }'
    assert _record_request("POST", "http://gw.test/v1/charges", body, {"Content-Type": "application/json"}).body == body


def test_vcr_response_fields_and_headers() -> None:
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": ["application/json"], "Set-Cookie": [f"session={PASSWORD}"],
                    "X-Request-Id": ["req_1"]},
        "body": {"string": json.dumps({"access_token": PASSWORD, "token_type": "bearer", "expires_in": 3600,
                                       "account": {"private_key": PASSWORD, "id": "acc_1"},
                                       "next_page_token": "cursor-1"}).encode()},
    }
    recorded = vcr_config()["before_record_response"](response)
    assert PASSWORD in json.dumps(response["body"]["string"].decode())  # the live response is untouched
    body = json.loads(recorded["body"]["string"])
    assert body == {"access_token": "REDACTED", "token_type": "bearer", "expires_in": 3600,
                    "account": {"private_key": "REDACTED", "id": "acc_1"}, "next_page_token": "cursor-1"}
    assert recorded["headers"]["Set-Cookie"] == ["REDACTED"] and recorded["headers"]["X-Request-Id"] == ["req_1"]
