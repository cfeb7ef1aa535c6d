"""Hostile raw HTTP against the emulator: seeded, bounded. Two invariants over every request:

* no answer is a 500 (bad input gets a typed 4xx, never an internal error or a stall);
* no policy bypass: the upstream never receives a request a policy refused or holds for approval,
  and every path it receives is in normal form (what the policies saw is what it got).

Paths are dressed up around ``/v1/refunds`` (denied) and ``/v1/charges`` (approval required) with
dot segments, encoded dots, doubled slashes, encoded unreserved characters, and worse (encoded
slashes, backslashes, NUL, CR/LF, double encoding, climbing out of a service's base path).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ailink._cli import main as ailink_cli
from ailink.testing import EmulatorGateway

from .conftest import RawAnswer, admin, bearer, client, send_raw
from .fault_upstream import FaultUpstream

SEED = int(os.environ.get("AILINK_HOSTILE_SEED", "20261201"))
DRESSED_PATHS = 300
RANDOM_PATHS = 150
POLICIES: list[dict[str, Any]] = [
    {"name": "no-refunds", "rules": [{"when": {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                                                       {"field": "request.path", "op": "eq", "value": "/v1/refunds"}]},
                                      "then": {"action": "deny", "message": "no refunds"}}]},
    {"name": "approve-charges", "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
                                           "then": {"action": "require_approval", "timeout": "5m"}}]},
    {"name": "approve-big", "rules": [{"when": {"all": [{"field": "request.path", "op": "eq", "value": "/v1/big"},
                                                        {"field": "request.body.amount", "op": "gt", "value": 1000}]},
                                       "then": {"action": "require_approval", "timeout": "5m"}}]},
    {"name": "no-svc-secret", "rules": [{"when": {"field": "request.path", "op": "starts_with",
                                                  "value": "/v1/proxy/services/svc/admin"},
                                         "then": {"action": "deny"}}]},
]
GUARDED = {"/v1/refunds", "/v1/charges", "/base/admin"}
_ABNORMAL = re.compile(r"//|/\./|/\.\./|/\.\.?$|.+/$|%(?:2e|2f|5c|00)|%25(?:25)*(?:2e|2f|5c|00)|\\",
                       re.IGNORECASE)


@dataclass
class Target:
    gateway: EmulatorGateway
    upstream: FaultUpstream
    token: str

    def raw(self, method: str, target: bytes, *, body: bytes = b"", headers: bytes = b"",
            auth: bool = True) -> RawAnswer:
        """Send one request byte for byte (nothing normalised on the way) and read the answer."""
        extra = b"Prefer: respond-async\r\n" + headers
        if auth:
            extra = f"Authorization: Bearer {self.token}\r\n".encode() + extra
        return send_raw(self.gateway.url, method, target, headers=extra, body=body)


@pytest.fixture
def target(ailink_gateway: EmulatorGateway, fault_upstream: FaultUpstream) -> Iterator[Target]:
    ailink_gateway.create_service("svc", fault_upstream.url + "/base")
    yield Target(ailink_gateway, fault_upstream, ailink_gateway.create_token(upstream=fault_upstream.url,
                                                                              policies=POLICIES))


def _encode_char(rng: random.Random, ch: str) -> str:
    hexed = f"{ord(ch):02x}"
    return "%" + (hexed.upper() if rng.random() < 0.5 else hexed)


def dress(rng: random.Random, path: str) -> str:
    """The same path in a different dress: every result normalises back to ``path``."""
    segments = path.strip("/").split("/")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(segments) + 1)
        trick = rng.choice(["dot", "dotdot", "empty", "encode"])
        if trick == "dot":
            segments.insert(i, rng.choice([".", "%2e", "%2E"]))
        elif trick == "dotdot":
            segments[i:i] = [rng.choice(["x", "a.b", "%7e"]), rng.choice(["..", "%2e%2e", ".%2E", "%2E."])]
        elif trick == "empty":
            segments.insert(i, "")
        else:
            j = rng.randrange(len(segments))
            plain = [k for k, ch in enumerate(segments[j]) if ch.isalnum()]
            if plain:
                k = rng.choice(plain)
                segments[j] = segments[j][:k] + _encode_char(rng, segments[j][k]) + segments[j][k + 1:]
    dressed = "/" + "/".join(segments)
    return dressed + rng.choice(["", "", "/", "/.", "/%2e"])


EVIL_PATHS = [
    "/v1/refunds%00", "/v1/%00/../refunds", "/v1/x%2f..%2frefunds", "/v1%2frefunds", "/v1%2Frefunds",
    "/v1/x%5c..%5crefunds", "/v1\\refunds", "/v1/%252e%252e/v1/refunds", "/v1/x/%252E%252E/refunds",
    "/v1/%25252e/refunds", "/v1/%2500/refunds", "/v1/%0d%0aX-Injected:%20yes/refunds", "/v1/%0arefunds",
    "/../v1/refunds", "/v1/../../v1/refunds", "/%2e%2e/v1/refunds", "/v1/proxy/services/svc/../../../refunds",
    "/v1/proxy/services/svc/%2e%2e/%2e%2e/%2e%2e/v1/refunds", "/v1/proxy/services/svc/x/../../admin",
    "/v1/proxy/services/svc/./admin", "/v1/proxy/services/svc//admin", "/v1/proxy/services/svc/%61dmin",
    "/v1/proxy/services/svc/admin/", "/v1/proxy/services//svc/admin", "/v1/proxy/services/../services/svc/admin",
    "/v1/%zz/refunds", "/v1/%/refunds", "/v1/%2", "/v1/refunds%", "/v1/%c3%a9/../refunds",
]


def _check(answers: list[tuple[str, RawAnswer]], upstream: FaultUpstream) -> None:
    server_errors = [(what, a.status, a.body[:200]) for what, a in answers if a.status >= 500 and a.status != 502]
    assert server_errors == [], server_errors
    reached = [(h.method, h.target) for h in upstream.hits]
    bypasses = [r for r in reached if r[1].split("?")[0] in GUARDED]
    assert bypasses == [], f"policy bypass: {bypasses}"
    abnormal = [r for r in reached if _ABNORMAL.search(r[1].split("?")[0])]
    assert abnormal == [], f"the upstream received paths that are not in normal form: {abnormal}"


def test_dressed_up_paths_never_get_past_a_policy(target: Target) -> None:
    rng = random.Random(SEED)
    answers: list[tuple[str, RawAnswer]] = []
    for _ in range(DRESSED_PATHS):
        guarded = rng.choice(["/v1/refunds", "/v1/charges", "/v1/proxy/services/svc/admin"])
        path = dress(rng, guarded)
        answer = target.raw("POST", path.encode(), body=b'{"amount": 5}')
        answers.append((path, answer))
        if answer.status not in (400, 404):  # a normalising path is judged by the policy it names
            expected = 202 if guarded == "/v1/charges" else 403
            assert answer.status == expected, (path, answer.status, answer.body[:300])
    _check(answers, target.upstream)
    assert target.upstream.hits == []


def test_evil_paths_are_refused_before_forwarding(target: Target) -> None:
    answers = [(path, target.raw("POST", path.encode(), body=b'{"amount": 5}')) for path in EVIL_PATHS]
    for path, answer in answers:
        assert answer.status in (400, 403, 404), (path, answer.status, answer.body[:300])
        if answer.status == 400 and answer.body.startswith(b"{"):
            error = json.loads(answer.body)["error"]
            assert error["code"] in ("invalid_path", "invalid_json"), (path, error)
            assert error["details"]["forwarded"] is False
    _check(answers, target.upstream)
    assert target.upstream.hits == []


def test_random_paths_never_500_and_reach_the_upstream_only_normalised(target: Target) -> None:
    rng = random.Random(SEED + 1)
    alphabet = "abc./%25eEfF0123456789\\;:@!$&'()*+,=-_~?#[]"
    answers = []
    for _ in range(RANDOM_PATHS):
        path = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        answers.append((path, target.raw(rng.choice(["GET", "POST", "PUT", "DELETE"]), path.encode())))
    _check(answers, target.upstream)


def test_policies_see_the_body_the_upstream_gets(target: Target) -> None:
    cases = [
        (b'{"amount": 5000}', 202),  # plainly gated
        (b'{"amount": "5000"}', 202),  # numeric strings compare as numbers
        (b'{"amount": 5, "amount": 5000}', 400),  # duplicate keys: which one would the upstream take?
        (b'{"amount": 5000, "pad": ' + b"[" * 70 + b"]" * 70 + b"}", 400),  # deeper than the bound
        (b"amount=5000", 400),  # not JSON while the policies read the body
        (b'{"amount": 50}', 200),
    ]
    answers = []
    for body, expected in cases:
        answer = target.raw("POST", b"/v1/big", body=body)
        answers.append((body.decode()[:40], answer))
        assert answer.status == expected, (body[:60], answer.status, answer.body[:300])
    _check(answers, target.upstream)
    assert [h.body for h in target.upstream.hits] == [b'{"amount": 50}']


def test_hostile_bodies_and_headers(target: Target) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    at_bound = b"[" * 64 + b"]" * 64
    answers = {
        "deep body, data plane": target.raw("POST", b"/ok", body=deep),
        "deep body, management": target.raw("POST", b"/api/v1/policies", body=deep, auth=False,
                                            headers=f"X-Admin-Key: {target.gateway.admin_key}\r\n".encode()),
        "deep X-Properties": target.raw("GET", b"/ok", headers=b"X-Properties: " + b"[" * 8000 + b"\r\n"),
        "non-ASCII key": target.raw("POST", b"/ok", body=b"{}", headers="Idempotency-Key: clé-ü\r\n".encode()),
        "control char in key": target.raw("POST", b"/ok", body=b"{}", headers=b"Idempotency-Key: a\x01b\r\n"),
        "space in key": target.raw("POST", b"/ok", body=b"{}", headers=b"Idempotency-Key: a b\r\n"),
        "empty key": target.raw("POST", b"/ok", body=b"{}", headers=b"Idempotency-Key: \r\n"),
        "over-long key": target.raw("POST", b"/ok", body=b"{}", headers=b"Idempotency-Key: " + b"k" * 256 + b"\r\n"),
        "two keys": target.raw("POST", b"/ok", body=b"{}",
                               headers=b"Idempotency-Key: one\r\nX-AIlink-Idempotency-Key: two\r\n"),
        "huge header": target.raw("GET", b"/ok", headers=b"X-Big: " + b"a" * 200_000 + b"\r\n"),
        "CRLF in a header value": target.raw("GET", b"/ok", headers=b"X-Session-Id: a\rb\r\n"),
        "unknown method": target.raw("FOO", b"/ok"),
        "TRACE": target.raw("TRACE", b"/ok"),
        "absolute-form target": target.raw("POST", b"http://evil.example/v1/refunds", body=b"{}"),
        "asterisk target": target.raw("OPTIONS", b"*"),
        "query with encoded CR/LF and NUL": target.raw("GET", b"/ok?x=%0d%0aSet-Cookie:%20a&y=%00"),
        "wait=nan": target.raw("GET", b"/v1/approvals/apr_x?wait=nan"),
        "limit=1e999": target.raw("GET", b"/api/v1/audit?limit=1e999", auth=False,
                                  headers=f"X-Admin-Key: {target.gateway.admin_key}\r\n".encode()),
    }
    assert answers["deep body, data plane"].status == 400
    assert answers["deep body, management"].status == 400
    assert answers["deep X-Properties"].status == 200  # an unreadable X-Properties is dropped, as the real one
    for name in ("non-ASCII key", "space in key", "empty key", "over-long key", "two keys"):
        assert answers[name].status == 422, (name, answers[name])
        assert json.loads(answers[name].body)["error"]["code"] == "validation_error"
    assert answers["absolute-form target"].status == 403  # judged by the path it names
    assert answers["limit=1e999"].status == 422
    ok = target.raw("POST", b"/ok", body=at_bound)
    assert ok.status == 200  # the bound itself is allowed
    _check(list(answers.items()), target.upstream)


ODD_DURATIONS: list[Any] = ["99999999999d", "31d", "-1s", "0s", 0, -5, "nan", "1e400", "10x", "", True, None,
                            [], "9" * 400, 10**30]


@pytest.mark.parametrize("duration", ODD_DURATIONS)
def test_odd_durations_are_refused_at_create_time(ailink_gateway: EmulatorGateway, duration: Any) -> None:
    approval = {"name": "p", "rules": [{"then": {"action": "require_approval", "timeout": duration}}]}
    window = {"name": "p", "rules": [{"then": {"action": "rate_limit", "window": duration, "max_requests": 1}}]}
    with admin(ailink_gateway) as a:
        for doc in (approval, window):
            resp = a.post("/api/v1/policies", json=doc)
            assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
        assert a.get("/api/v1/policies").json() == []


def test_rows_stored_before_the_bounds_do_not_break_anything(ailink_gateway: EmulatorGateway,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = ailink_gateway.running.app.state.emulator.store
    # as an older emulator (no duration bound) would have stored them
    policy = store.create_policy({"name": "old", "rules": [
        {"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
         "then": {"action": "require_approval", "timeout": "99999999999d"}},
        {"when": {"field": "request.path", "op": "eq", "value": "/v1/customers"},
         "then": {"action": "rate_limit", "window": "99999999999d", "max_requests": 5}}]})
    with admin(ailink_gateway) as a:
        token = a.post("/api/v1/tokens", json={"name": "old", "upstream_url": "http://payments.mock",
                                               "policy_ids": [policy["id"]]}).json()["token_id"]
    with client(ailink_gateway) as c:
        held = c.post("/v1/charges", json={"amount": 5}, headers=bearer(token, Prefer="respond-async"))
        assert held.status_code == 202 and held.json()["expires_at"].endswith("Z")
        assert c.get("/v1/customers", headers=bearer(token)).status_code == 200
    store.create_approval({"token_ref": "tok_x", "idempotency_key": None, "policy_name": "old",
                           "summary": {"method": "POST", "path": "/v1/x"}, "expires_at": 1e20, "req_method": "POST",
                           "req_url": "http://payments.mock/v1/x", "req_headers": {}, "req_body": b""})
    with admin(ailink_gateway) as a:
        listed = a.get("/api/v1/approvals")
        assert listed.status_code == 200 and len(listed.json()) == 2
        assert all(row["expires_at"].endswith("Z") for row in listed.json())
    code = ailink_cli(["approvals", "list", "--status", "all", "--gateway-url", ailink_gateway.url,
                       "--admin-key", ailink_gateway.admin_key])
    assert code == 0 and "No approvals." not in capsys.readouterr().out


HOSTILE_PATTERNS = ["^(a+)+$", "(a|a)*b", "(a*)*b", "^(([a-z])+.)+[A-Z]([a-z])+$", "(.*a){20}x"]


@pytest.mark.parametrize("pattern", HOSTILE_PATTERNS)
def test_hostile_regexes_run_in_linear_time(ailink_gateway: EmulatorGateway, pattern: str) -> None:
    policy = {"name": "re", "rules": [{"when": {"field": "request.body.text", "op": "regex", "value": pattern},
                                       "then": {"action": "deny"}}]}
    token = ailink_gateway.create_token(policies=[policy])
    text = "a" * 50_000 + "!"  # exponential for a backtracking engine: it would never answer
    with client(ailink_gateway) as c:
        resp = c.post("/v1/echo", json={"text": text}, headers=bearer(token))
        assert resp.status_code == 200  # no match, answered
        glob = ailink_gateway.create_token(policies=[{"name": "g", "rules": [
            {"when": {"field": "request.body.text", "op": "glob", "value": "*a*a*a*a*a*a*a*a*a*a*b"},
             "then": {"action": "deny"}}]}])
        assert c.post("/v1/echo", json={"text": text}, headers=bearer(glob)).status_code == 200


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)b", "(?<!a)b", "x{1001}", "(", "a" * 5000])
def test_unsupported_regexes_are_refused(ailink_gateway: EmulatorGateway, pattern: str) -> None:
    policy = {"name": "re", "rules": [{"when": {"field": "request.path", "op": "regex", "value": pattern},
                                       "then": {"action": "deny"}}]}
    with admin(ailink_gateway) as a:
        resp = a.post("/api/v1/policies", json=policy)
    assert resp.status_code == 422
    assert len(resp.json()["error"]["message"]) <= 1000


def test_hostile_management_input(ailink_gateway: EmulatorGateway) -> None:
    key = f"X-Admin-Key: {ailink_gateway.admin_key}\r\n".encode()
    big_rules = [{"when": {"field": "request.path", "op": "eq", "value": "x" * 70_000}, "then": {"action": "deny"}}]
    requests: list[tuple[str, bytes, bytes]] = [
        ("POST", b"/api/v1/tokens", b'{"name": "x", "upstream_url": "http://[::1"}'),
        ("POST", b"/api/v1/tokens", b'{"name": "x", "upstream_url": "http://"}'),
        ("POST", b"/api/v1/tokens", b'{"name": "x", "upstream_url": "http://payments.mock", "log_level": NaN}'),
        ("POST", b"/api/v1/services", b'{"name": "s", "base_url": "javascript:alert(1)"}'),
        ("POST", b"/api/v1/policies", json.dumps({"name": "big", "rules": big_rules}).encode()),
        ("POST", b"/api/v1/policies", b'{"name": "p", "name": "q", "rules": []}'),
        ("POST", b"/api/v1/policies", b"[" * 5000),
        ("POST", b"/api/v1/approvals/apr_x/decision", b'{"decision": ["approved"]}'),
        ("POST", b"/api/v1/approvals/%00/decision", b'{"decision": "approved"}'),
        ("PATCH", b"/api/v1/sessions/s%00/status", b'{"status": {"a": 1}}'),
        ("POST", b"/api/v1/emulator/llm/script", b'{"token_id": {"$ne": 1}, "responses": "x"}'),
        ("GET", b"/api/v1/audit?status=" + b"9" * 5000, b""),
        ("GET", b"/api/v1/audit?limit=-1&offset=99999999999999999999999", b""),
        ("GET", b"/api/v1/tokens/%c0%ae%c0%ae", b""),
        ("DELETE", b"/api/v1/policies/" + b"a" * 5000, b""),
        ("PUT", b"/api/v1/tokens", b"{}"),
    ]
    for method, target, body in requests:
        answer = send_raw(ailink_gateway.url, method, target, headers=key, body=body)
        if target.startswith(b"/api/v1/audit?"):  # odd list parameters are clamped, not errors
            assert answer.status == 200, (target[:60], answer.body[:200])
            continue
        assert 400 <= answer.status < 500, (method, target[:60], answer.status, answer.body[:200])
        error = json.loads(answer.body)["error"]  # a typed JSON error, its message capped
        assert isinstance(error["code"], str) and len(error["message"]) <= 1000
    with admin(ailink_gateway) as a:
        assert a.get("/api/v1/policies").json() == [] and a.get("/api/v1/tokens").json() == []
