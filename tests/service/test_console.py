"""The operator console in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.service.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900"]

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)",
)


@pytest.fixture
def browser():
    """A headless Chromium from Debian's packages (no browser download)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: $SUPPORTDESK_SCREENSHOT_DIR if set, else the test's tmp dir."""
    folder = Path(os.environ.get("SUPPORTDESK_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(browser, predicate, timeout: float = 60):
    """Wait for a page condition; a page that is replaced while it is read (a form's redirect) is read again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (StaleElementReferenceException, NoSuchElementException)
    return WebDriverWait(browser, timeout, ignored_exceptions=ignored).until(predicate)


def _login(browser, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{url}/console")
    assert browser.current_url.endswith("/console/login")
    old = browser.find_element(By.ID, "key")
    old.send_keys(token)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "runs") or d.find_elements(By.CSS_SELECTOR, ".error"))


def test_console_lists_runs_filters_and_shows_a_runs_audit_trail(live_server, browser, shots):
    """Log in with a key, see the tenant's runs, filter by status, open one: state and audit trail render."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, live = live_server
    _, token = live.keys.create("console", "runs:read,runs:write,approvals:write")
    headers = {"Authorization": f"Bearer {token}"}
    for key in ("console-faq-1", "console-faq-2"):
        live.client.post("/v1/runs", params={"wait": 60}, json={"query": PASSWORD}, headers={**headers, "Idempotency-Key": key})
    live.client.post("/v1/runs", json={"query": PASSWORD + " (queued)"}, headers={**headers, "Idempotency-Key": "other-tenant-check"})
    live.keys.create("someone-else")

    browser.get(f"{server.url}/console/login")
    browser.save_screenshot(str(shots / "console-login.png"))
    _login(browser, server.url, token)
    table = browser.find_element(By.ID, "runs")
    text = table.text
    assert "console-faq-1" in text and "console-faq-2" in text and "faq_answered" in text
    assert "tenant console" in browser.find_element(By.TAG_NAME, "header").text
    browser.save_screenshot(str(shots / "console-runs.png"))

    Select(browser.find_element(By.ID, "status")).select_by_value("completed")
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    _wait(browser, lambda d: "status=completed" in d.current_url, timeout=30)
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert rows and all("completed" in r.text for r in rows)

    browser.find_element(By.LINK_TEXT, "console-faq-1").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "audit"))
    assert "Run console-faq-1" in browser.find_element(By.TAG_NAME, "h1").text
    assert "faq_answered" in browser.find_element(By.ID, "state").text
    audit = browser.find_element(By.ID, "audit").text
    assert "run_created" in audit and "step_start" in audit and "run_finished" in audit
    browser.save_screenshot(str(shots / "console-run.png"))

    browser.get(f"{server.url}/console/approvals")
    assert "Approvals queue" in browser.find_element(By.TAG_NAME, "h1").text
    browser.save_screenshot(str(shots / "console-approvals.png"))
    assert (shots / "console-runs.png").stat().st_size > 5_000


def test_console_refuses_a_bad_key_and_hides_other_tenants_runs(live_server, browser):
    """A wrong key stays on the login page with an error; another tenant's run id is not found."""
    from selenium.webdriver.common.by import By

    server, live = live_server
    _login(browser, server.url, "sd_0123456789abcdef_not-a-real-secret")
    assert "not valid" in browser.find_element(By.CSS_SELECTOR, ".error").text
    owner = {"Authorization": f"Bearer {live.keys.create('owner-tenant')[1]}", "Idempotency-Key": "private-run"}
    live.client.post("/v1/runs", json={"query": PASSWORD}, headers=owner)
    _login(browser, server.url, live.keys.create("nosy-tenant")[1])
    browser.get(f"{server.url}/console/runs/private-run")
    assert "no run" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert "private-run" not in browser.find_element(By.ID, "runs").text


def test_console_approves_with_an_edit_and_rejects(approval_live, browser, shots):
    """The approvals queue in the browser: edit the title and approve one run, reject another with a note."""
    from selenium.webdriver.common.by import By

    from supportdesk.service.app import create_app
    from tests.service.conftest import DOUBLE_CHARGE, LiveServer

    api = approval_live
    _, token = api.keys.create("console-ops")
    headers = {"Authorization": f"Bearer {token}"}
    for key in ("web-approve", "web-reject"):
        api.client.post("/v1/runs", json={"query": DOUBLE_CHARGE, "customer_id": "C-1001"}, headers={**headers, "Idempotency-Key": key})
    for key in ("web-approve", "web-reject"):
        api.wait_final(headers, key, statuses=("awaiting_approval",))
    with LiveServer(create_app(api.settings, engine=api.engine, recover=False)) as server:
        _login(browser, server.url, token)
        browser.get(f"{server.url}/console/approvals")
        cards = browser.find_elements(By.CSS_SELECTOR, ".approval")
        assert sorted(c.get_attribute("id") for c in cards) == ["run-web-approve", "run-web-reject"]
        browser.save_screenshot(str(shots / "console-approvals-queue.png"))

        card = browser.find_element(By.ID, "run-web-approve")
        title = card.find_element(By.NAME, "title")
        title.clear()
        title.send_keys("Refund one of two November charges")
        card.find_element(By.CSS_SELECTOR, "button.approve").click()
        _wait(browser, lambda d: "Approved web-approve" in d.find_element(By.TAG_NAME, "main").text)
        assert "with edits to title" in browser.find_element(By.CSS_SELECTOR, ".notice").text

        card = browser.find_element(By.ID, "run-web-reject")
        card.find_element(By.NAME, "note").send_keys("Customer already refunded by phone")
        card.find_element(By.CSS_SELECTOR, "button.reject").click()
        _wait(browser, lambda d: "Rejected web-reject" in d.find_element(By.TAG_NAME, "main").text)
        browser.save_screenshot(str(shots / "console-approvals-decided.png"))

    approved = api.wait_final(headers, "web-approve", timeout=120)
    rejected = api.wait_final(headers, "web-reject", timeout=120)
    assert approved["state"]["status"] == "ticket_created"
    assert approved["state"]["ticket_title"] == "Refund one of two November charges"
    assert rejected["state"]["status"] == "rejected"
