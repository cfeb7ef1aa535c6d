"""The inbox in a real browser: headless Chromium (the system's, driven by Selenium) against the emulator.

A tool call parks → its approval appears without a reload → approved with a reason → the agent's
call completes, once → the session view shows it and who decided; a rejection; a hostile request
body that must stay text; an approval that expires while the page watches. ``make test`` installs
Chromium and ChromeDriver from the distribution's packages when they are missing (``make browser``).

``AILINK_SCREENSHOTS=docs/images`` also saves the README's screenshots there.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

import ailink
from ailink.testing import EmulatorGateway, start_gateway

NEEDS_APPROVAL = {
    "name": "charges-over-1000",
    "rules": [{"when": {"all": [{"field": "request.path", "op": "eq", "value": "/v1/charges"},
                                {"field": "request.body.amount", "op": "gt", "value": 1000}]},
               "then": {"action": "require_approval", "timeout": "10m"}}],
}
QUICK_EXPIRY = {"name": "quick-expiry", "rules": [{
    "when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
    "then": {"action": "require_approval", "timeout": "5s"}}]}
#: The flags that work on this kind of machine (no sandbox as root, no background network).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000")
WAIT = 20.0


def _chromium() -> tuple[str, str]:
    binary = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail("Chromium and ChromeDriver are needed: `make browser` installs them "
                    "(Debian: apt-get install chromium chromium-driver)")
    return binary, driver


@pytest.fixture(scope="module")
def gateway() -> Iterator[EmulatorGateway]:
    gw, stop = start_gateway()
    try:
        yield gw
    finally:
        stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, gateway: EmulatorGateway) -> Iterator[WebDriver]:
    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        driver.get(gateway.url + "/ui/approvals")
        assert "/ui/login" in driver.current_url  # signed out: the sign-in page
        driver.find_element(By.ID, "admin_key").send_keys(gateway.admin_key)
        driver.find_element(By.ID, "reviewer").send_keys("Alice Reviewer")
        driver.find_element(By.ID, "sign-in").click()
        _until(driver, lambda d: d.current_url.endswith("/ui/approvals"))
        yield driver
    finally:
        driver.quit()


def _until(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def _live(driver: WebDriver, path: str) -> None:
    """Open ``path`` and wait until the page's live stream is connected (and caught up)."""
    driver.get(driver.current_url.split("/ui/", 1)[0] + path)
    _until(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live-connected") == "true")
    driver.execute_script("window.__sameDocument = 'still here';")  # gone if the page reloads


def _same_document(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return window.__sameDocument === 'still here';"))


def _card(driver: WebDriver, approval_id: str) -> Any:
    return _until(driver, lambda d: d.find_elements(By.ID, f"approval-{approval_id}") or False)[0]


def _screenshot(driver: WebDriver, name: str, tmp_path: Path) -> None:
    driver.save_screenshot(str(tmp_path / name))
    target = os.environ.get("AILINK_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / name))


class AgentCall:
    """An agent's charge in a background thread: it parks, waits for a person, and ends."""

    def __init__(self, gateway: EmulatorGateway, token: str, session: str, key: str, body: dict[str, Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.approval_ids: list[str] = []

        def run() -> None:
            try:
                with ailink.AIlinkClient(token, gateway.url, agent_name="billing-bot") as client, \
                        client.trace(session):
                    self.result = client.post("/v1/charges", json=body, idempotency_key=key, wait_for_approval=True,
                                              approval_timeout=60, headers={"X-AIlink-Tool-Name": "create_charge"})
            except BaseException as exc:  # reported by join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(WAIT * 3)
        assert not self.thread.is_alive(), "the agent's call never ended"
        if self.error is not None:
            raise self.error
        return self.result


def _pending_id(gateway: EmulatorGateway, known: set[str]) -> str:
    """The id of the approval the agent's call just created (bounded wait)."""
    import time

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        fresh = [a["id"] for a in gateway.pending_approvals() if a["id"] not in known]
        if fresh:
            return str(fresh[0])
        time.sleep(0.02)
    raise AssertionError("the agent's call never parked")


def test_approve_in_the_browser_and_the_agent_call_completes_once(gateway: EmulatorGateway, browser: WebDriver,
                                                                   tmp_path: Path) -> None:
    token = gateway.create_token(policies=[NEEDS_APPROVAL])
    _live(browser, "/ui/approvals")
    assert "No approvals are waiting." in browser.find_element(By.ID, "pending").text

    call = AgentCall(gateway, token, "browser-run-1", "charge-order-1001",
                     {"amount": 125000, "currency": "usd", "customer": "cus_001",
                      "description": "Annual plan renewal, invoice INV-1001"})
    apr_id = _pending_id(gateway, set())
    card = _card(browser, apr_id)  # pushed to the page: no reload
    assert _same_document(browser)
    text = card.text
    for expected in (apr_id, "POST", "/v1/charges", "charges-over-1000", "billing-bot", "create_charge",
                     "browser-run-1", '"amount": 125000', "Annual plan renewal"):
        assert expected in text, expected
    countdown = f"#approval-{apr_id} time.countdown"
    first = browser.find_element(By.CSS_SELECTOR, countdown).text
    assert re.fullmatch(r"expires in \d+:\d\d", first), first
    _until(browser, lambda d: d.find_element(By.CSS_SELECTOR, countdown).text != first)  # it counts down by itself
    assert browser.find_element(By.ID, "pending-count").text == "1"
    card = _card(browser, apr_id)
    card.find_element(By.NAME, "reason").send_keys("Renewal confirmed with the customer")
    _screenshot(browser, "inbox-pending.png", tmp_path)

    card.find_element(By.CSS_SELECTOR, "button.approve").click()
    flash = _until(browser, lambda d: d.find_elements(By.ID, "flash") or False)[0]
    assert f"Approved {apr_id}" in flash.text

    response = call.join()
    assert response.status_code == 200 and response.json()["amount"] == 125000
    stats = gateway.payments_stats()
    assert stats["by_idempotency_key"]["charge-order-1001"] == 1  # sent once, by the gateway

    _live(browser, "/ui/sessions/browser-run-1")
    tree = browser.find_element(By.ID, "session").text
    assert "POST /v1/charges" in tree and "→ 200" in tree and "→ 202" in tree
    assert "approved by Alice Reviewer via inbox" in tree and "Renewal confirmed with the customer" in tree
    _screenshot(browser, "inbox-session.png", tmp_path)

    _live(browser, "/ui/history")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-approval-id="{apr_id}"]').text
    assert "approved" in row and "Alice Reviewer" in row and "inbox" in row


def test_reject_in_the_browser_and_the_agent_call_is_refused(gateway: EmulatorGateway, browser: WebDriver) -> None:
    token = gateway.create_token(policies=[NEEDS_APPROVAL])
    known = {a["id"] for a in gateway.pending_approvals()}
    _live(browser, "/ui/approvals")
    call = AgentCall(gateway, token, "browser-run-2", "charge-order-1002",
                     {"amount": 990000, "currency": "usd", "customer": "cus_002"})
    apr_id = _pending_id(gateway, known)
    card = _card(browser, apr_id)
    assert _same_document(browser)
    card.find_element(By.NAME, "reason").send_keys("Too large without a purchase order")
    card.find_element(By.CSS_SELECTOR, "button.reject").click()
    flash = _until(browser, lambda d: d.find_elements(By.ID, "flash") or False)[0]
    assert f"Rejected {apr_id}" in flash.text

    with pytest.raises(ailink.ApprovalRejectedError) as rejected:
        call.join()
    assert rejected.value.approval_id == apr_id and rejected.value.reason == "Too large without a purchase order"
    assert gateway.payments_stats()["by_idempotency_key"].get("charge-order-1002", 0) == 0  # never sent


def test_a_hostile_request_body_stays_text(gateway: EmulatorGateway, browser: WebDriver, tmp_path: Path) -> None:
    token = gateway.create_token(policies=[NEEDS_APPROVAL])
    _live(browser, "/ui/approvals")
    hostile = {
        "amount": 5000, "currency": "usd", "customer": "cus_003",
        "note": "</code></pre><script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">"
                "<style>body { display: none }</style>",
        "trick": "invoice\u202egpj.exe", "wide": "W" * 3000,
    }
    with ailink.AIlinkClient(token, gateway.url, agent_name="<b>bot</b><script>window.__xss = 3</script>") as client:
        parked = client.post("/v1/charges", json=hostile)
    apr_id = parked.json()["approval_id"]
    card = _card(browser, apr_id)
    assert browser.execute_script("return window.__xss;") is None  # nothing injected ran
    assert card.find_elements(By.TAG_NAME, "img") == [] and card.find_elements(By.TAG_NAME, "script") == []
    body = card.find_element(By.CSS_SELECTOR, "pre.body").text
    assert "<script>window.__xss = 1</script>" in body and "<style>body { display: none }</style>" in body
    assert "invoice⟨U+202E⟩gpj.exe" in body
    assert "<b>bot</b><script>window.__xss = 3</script>" in card.find_element(By.CSS_SELECTOR, "dd.agent").text
    assert browser.find_element(By.TAG_NAME, "body").is_displayed()
    # the long unbroken value wraps inside its card: the page never scrolls sideways
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;")
    browser.execute_script("arguments[0].scrollIntoView();", card)
    _screenshot(browser, "inbox-hostile-body.png", tmp_path)
    gateway.decide(apr_id, "rejected", "test clean-up")


def test_an_expiring_approval_leaves_the_page_and_shows_in_history(gateway: EmulatorGateway,
                                                                   browser: WebDriver) -> None:
    token = gateway.create_token(policies=[QUICK_EXPIRY])
    _live(browser, "/ui/approvals")
    with ailink.AIlinkClient(token, gateway.url, agent_name="refund-bot") as client:
        apr_id = client.post("/v1/refunds", json={"charge": "ch_1", "amount": 100}).json()["approval_id"]
    _card(browser, apr_id)
    _until(browser, lambda d: not d.find_elements(By.ID, f"approval-{apr_id}"))  # expired: gone, live
    assert _same_document(browser)
    _live(browser, "/ui/history")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-approval-id="{apr_id}"]').text
    assert "expired" in row and "expiry" in row
