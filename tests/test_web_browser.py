"""A real browser on the case page: Debian's Chromium, headless, driven by selenium through
/usr/bin/chromedriver (no browser download at run time). The link comes from a real receipt at
the test relay; the customer sees status and history, requests a callback, and the agents get
their mail while the case turns urgent. A screenshot of the page lands in the test's folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import DaemonProcess, Relay, wait_for
from test_web_daemon import CUSTOMER, start

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AGENT = "anna@example.com"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="chromium/chromium-driver missing: run scripts/install-system-deps.sh (make test does)"),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=412,1400",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def test_customer_follows_the_receipt_link_and_requests_a_callback(
        tmp_path: Path, relay: Relay, daemon_factory: Callable[..., DaemonProcess], browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    desk, link = start(tmp_path, relay, daemon_factory)
    number = int(link.split("/")[-2])

    browser.get(link)
    assert browser.find_element(By.ID, "status").text == "eingegangen"
    assert "der Drucker im 2. Stock druckt nicht." in browser.find_element(By.ID, "history").find_element(
        By.XPATH, "..").text
    browser.find_element(By.ID, "phone").send_keys("+49 30 1234567")
    browser.find_element(By.ID, "note").send_keys("Bitte ab 14 Uhr.")
    browser.find_element(By.ID, "callback-submit").click()

    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "p.notice"))
    assert browser.find_element(By.ID, "priority").text == "dringend"
    assert browser.find_element(By.ID, "callback").text.startswith("angefordert am")
    screenshot = tmp_path / "case-page.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 1000

    alert = desk.mails_to(AGENT)[0]
    assert alert["X-Mailbot-Notice"] == "callback_requested" and "+49 30 1234567" in alert.get_body(
        ("plain",)).get_content()  # type: ignore[union-attr]
    assert desk.case(number)["priority"] == "urgent"
    assert not [m for m in relay.messages() if CUSTOMER in m.rcpt_tos and m.message["X-Mailbot-Notice"] ==
                "callback_requested"]
