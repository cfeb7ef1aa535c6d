"""The reviewers' inbox over HTTP: sign-in, CSRF, what a page shows (and never shows), who decided.

The same flows in a real browser, with live updates: tests/e2e/test_inbox_browser.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from ailink.testing import EmulatorGateway

from .conftest import admin, approval_policy, bearer, client

HOSTILE = {
    "amount": 5000, "currency": "usd", "customer": "cus_001",
    "note": "</code></pre><script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">",
    "flip": "safe\u202etxt.exe", "api_key": "sk-live-should-never-show-0123456789",
}


def _browser(gw: EmulatorGateway) -> httpx.Client:
    return httpx.Client(base_url=gw.url, follow_redirects=False, timeout=30)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def _sign_in(b: httpx.Client, gw: EmulatorGateway, reviewer: str = "alice") -> str:
    page = b.get("/ui/login")
    signed = b.post("/ui/login", data={"csrf": _csrf(page.text), "admin_key": gw.admin_key, "reviewer": reviewer,
                                       "next": "/ui/approvals"})
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/approvals"
    return _csrf(b.get("/ui/approvals").text)


def _park(gw: EmulatorGateway, token: str, body: dict[str, object] | None = None) -> str:
    with client(gw) as c:
        resp = c.post("/v1/charges?source=agent", json=body or HOSTILE,
                      headers=bearer(token, Prefer="respond-async", **{
                          "X-Session-Id": "s-inbox", "X-AIlink-Agent-Name": "billing-bot",
                          "X-AIlink-Tool-Name": "create_charge",
                          "X-Real-Authorization": "Bearer sk-upstream-secret-99"}))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["approval_id"])


@pytest.fixture
def parked(ailink_gateway: EmulatorGateway) -> Iterator[tuple[str, str]]:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    yield token, _park(ailink_gateway, token)


def test_pages_need_a_sign_in_with_the_admin_key(ailink_gateway: EmulatorGateway) -> None:
    with _browser(ailink_gateway) as b:
        for path in ("/ui/approvals", "/ui/history", "/ui/sessions", "/ui/audit", "/ui/approvals/apr_x"):
            answer = b.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next="), path
        assert b.get("/ui/events").status_code == 401
        assert b.post("/ui/approvals/apr_x/decide", data={"decision": "approved"}).status_code == 303
        login = b.get("/ui/login")
        assert login.status_code == 200 and "AILINK_ADMIN_KEY" in login.text
        wrong = b.post("/ui/login", data={"csrf": _csrf(login.text), "admin_key": "ailink_admin_wrong"})
        assert wrong.status_code == 401 and "not this gateway" in wrong.text and "ailink_admin_wrong" not in wrong.text
        assert b.post("/ui/login", data={"admin_key": ailink_gateway.admin_key}).status_code == 403  # no token
        _sign_in(b, ailink_gateway)
        cookie = next(c for c in b.cookies.jar if c.name == "ailink_inbox")
        assert cookie.path == "/ui" and cookie.has_nonstandard_attr("HttpOnly")
    # the data plane and the management API do not accept the inbox's cookie
    with httpx.Client(base_url=ailink_gateway.url, cookies={"ailink_inbox": cookie.value or ""}) as other:
        assert other.get("/api/v1/approvals").status_code == 401
        assert other.get("/v1/customers").status_code == 401


def test_a_browser_at_the_root_is_sent_to_the_inbox_and_api_clients_are_not(ailink_gateway: EmulatorGateway) -> None:
    with _browser(ailink_gateway) as b:
        sent = b.get("/", headers={"accept": "text/html,application/xhtml+xml"})
        assert sent.status_code == 303 and sent.headers["location"] == "/ui/approvals"
        assert b.get("/", headers={"accept": "application/json"}).json()["error"]["code"] == "token_not_found"


def test_an_approval_page_shows_the_whole_request_as_text_and_no_secret(ailink_gateway: EmulatorGateway,
                                                                         parked: tuple[str, str]) -> None:
    token, apr_id = parked
    with _browser(ailink_gateway) as b:
        _sign_in(b, ailink_gateway)
        pages = [b.get("/ui/approvals"), b.get(f"/ui/approvals/{apr_id}"), b.get("/ui/approvals?fragment=1")]
    for page in pages:
        assert page.status_code == 200
        html = page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        assert "<script>window" not in html and "<img src=x" not in html and "</code></pre><script>" not in html
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
        assert "safe⟨U+202E⟩txt.exe" in html and "\u202e" not in html  # direction tricks made visible
        for secret in (token, "sk-live-should-never-show", "sk-upstream-secret-99", ailink_gateway.admin_key):
            assert secret not in html
        assert apr_id in html and "billing-bot" in html and "create_charge" in html and "s-inbox" in html
        assert "charges-over-1000" in html and "&#34;amount&#34;: 5000" in html and 'data-expires="' in html
    detail = pages[1].text
    assert "source" in detail and "agent" in detail  # the query, parsed
    assert "x-real-authorization" in detail and "***" in detail  # the header is named, its value hidden


def test_deciding_needs_the_csrf_token_and_records_who_decided(ailink_gateway: EmulatorGateway,
                                                               parked: tuple[str, str]) -> None:
    _, apr_id = parked
    with _browser(ailink_gateway) as b:
        csrf = _sign_in(b, ailink_gateway, reviewer="Alice Example")
        form = {"decision": "approved", "reason": "customer confirmed by phone", "next": "/ui/approvals"}
        assert b.post(f"/ui/approvals/{apr_id}/decide", data=form).status_code == 403
        assert b.post(f"/ui/approvals/{apr_id}/decide", data={**form, "csrf": "forged"}).status_code == 403
        cross = b.post(f"/ui/approvals/{apr_id}/decide", data={**form, "csrf": csrf},
                       headers={"origin": "http://evil.example"})
        assert cross.status_code == 403
        assert ailink_gateway.pending_approvals()[0]["id"] == apr_id  # still pending

        done = b.post(f"/ui/approvals/{apr_id}/decide", data={**form, "csrf": csrf, "next": "https://evil.example/"},
                      headers={"origin": ailink_gateway.url})
        assert done.status_code == 303
        assert done.headers["location"] == f"/ui/approvals?done=approved&id={apr_id}"  # never off-site
        flashed = b.get(done.headers["location"]).text
        assert f"Approved <code>{apr_id}</code>" in flashed and "No approvals are waiting." in flashed
        again = b.post(f"/ui/approvals/{apr_id}/decide", data={**form, "csrf": csrf, "decision": "rejected"})
        assert "done=unchanged%3Aapproved" in again.headers["location"]
        history = b.get("/ui/history").text
        assert apr_id in history and "Alice Example" in history and "customer confirmed by phone" in history

    with admin(ailink_gateway) as a:
        row = a.get(f"/api/v1/approvals/{apr_id}").json()
        assert (row["status"], row["reviewed_by"], row["review_channel"]) == ("approved", "Alice Example", "inbox")
        audit = a.get("/api/v1/audit", params={"session_id": "s-inbox"}).json()
        executed = [r for r in audit if r["policy_result"] == "approved"]
        assert executed and executed[0]["reviewed_by"] == "Alice Example"
        assert executed[0]["review_channel"] == "inbox"
        assert executed[0]["review_reason"] == "customer confirmed by phone"
        session = a.get("/api/v1/sessions/s-inbox").json()
        assert any(r["reviewed_by"] == "Alice Example" and r["hitl_decision"] == "approved"
                   for r in session["requests"])
    with _browser(ailink_gateway) as b:
        _sign_in(b, ailink_gateway)
        tree = b.get("/ui/sessions/s-inbox").text
        audit_page = b.get("/ui/audit", params={"session_id": "s-inbox"}).text
    assert "POST /v1/charges" in tree and "Alice Example" in tree and "inbox" in tree
    assert "Alice Example" in audit_page and "customer confirmed by phone" in audit_page


def test_the_management_api_records_the_reviewer_and_channel(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(policies=[approval_policy()])
    first, second = _park(ailink_gateway, token, {"amount": 2000}), _park(ailink_gateway, token, {"amount": 3000})
    with admin(ailink_gateway) as a:
        assert a.post(f"/api/v1/approvals/{first}/decision",
                      json={"decision": "approved", "reviewed_by": "bob", "channel": "cli"}).json()["updated"]
        assert a.post(f"/api/v1/approvals/{second}/decision", json={"decision": "rejected"}).json()["updated"]
        decided = a.get(f"/api/v1/approvals/{first}").json()
        assert (decided["reviewed_by"], decided["review_channel"]) == ("bob", "cli")
        assert a.get(f"/api/v1/approvals/{second}").json()["review_channel"] == "api"
        assert a.get(f"/api/v1/approvals/{second}").json()["reviewed_by"] == "admin"
        for bad in ({"channel": "inbox"}, {"channel": 3}, {"reviewed_by": ""}, {"reviewed_by": "x" * 500},
                    {"reason": "y" * 5000}):
            refused = a.post(f"/api/v1/approvals/{second}/decision", json={"decision": "approved", **bad})
            assert refused.status_code == 422, bad
        page = a.get(f"/api/v1/approvals/{first}").json()
        assert page["request"]["body_json"] == {"amount": 2000} and page["request"]["query"] == "source=agent"
        assert page["request"]["headers"]["x-real-authorization"] == "***"
        assert "sk-upstream-secret-99" not in json.dumps(page) and token not in json.dumps(page)
        assert page["review_url"] == f"{ailink_gateway.url}/ui/approvals/{first}"
