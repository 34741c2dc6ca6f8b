"""The authenticator app in a real browser: set up on the account page, then a login with
the password and a code."""

from __future__ import annotations

import time

import orjson
import pyotp
import pytest
from playwright.async_api import expect

from tests.support.browser import browser, demo, log_in, shot  # noqa: F401

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 900}


async def test_enrol_then_log_in_with_a_code(demo, browser) -> None:  # noqa: F811
    """The QR code and the secret are on the page; the code the secret makes turns it on and
    ten recovery codes show; after logout the password leads to the code page and the code
    (computed from the secret read off the page) completes the login, audited as totp."""
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, demo.base, "csr-carol")
    await page.goto(f"{demo.base}/_gateway/account")
    await page.get_by_role("button", name="Set up an authenticator app").click()
    await expect(page.locator("figure.qr svg")).to_be_visible()
    secret = await page.locator("#totp-secret").get_attribute("data-secret")
    assert secret and (await page.locator("#totp-secret").inner_text()).replace(" ", "") == secret
    await shot(page, "totp-enrol-1280")
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await shot(page, "totp-recovery-codes-1280")
    await page.get_by_role("button", name="Log out").click()
    await log_in(page, demo.base, "csr-carol")
    await expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    await shot(page, "totp-login-code-1280")
    # the next step's code: the one enrolment used is spent, and one step of skew is allowed
    await page.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#csrgw-toolbar")).to_be_visible()
    await shot(page, "totp-logged-in-1280")
    await context.close()
    deadline = time.monotonic() + 10  # the audit file is written within a second
    while True:
        lines = [orjson.loads(line) for line in demo.audit.read_bytes().splitlines()]
        logins = [line for line in lines if line["event"] == "login"]
        if logins[-1]["auth_method"] == "totp" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert logins[-1]["user"] == "csr-carol" and logins[-1]["auth_method"] == "totp"
    assert logins[-1]["amr"] == ["pwd", "otp"]
    assert [line for line in lines if line["event"] == "totp_enrolled"]
