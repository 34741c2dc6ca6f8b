"""The authenticator app in a real browser: set up on the account page, then a login with
the password and a code; a start the policy guards with requires_mfa."""

from __future__ import annotations

import time

import pyotp
import pytest
from playwright.async_api import expect

from tests.support import axe
from tests.support.browser import audit_until, browser, demo, log_in, shot, tag_user  # noqa: F401
from tests.support.gateway import PASSWORD

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
    lines = await audit_until(demo, "totp_enrolled")
    logins = [line for line in await audit_until(demo, "login", 2) if line["event"] == "login"]
    assert logins[-1]["user"] == "csr-carol" and logins[-1]["auth_method"] == "totp"
    assert logins[-1]["amr"] == ["pwd", "otp"]
    assert [line for line in lines if line["event"] == "totp_enrolled"]


async def test_a_start_that_needs_a_second_factor(demo, browser) -> None:  # noqa: F811
    """For a buyer the policy guards, a CSR without an authenticator app is sent to set one
    up; once set up, the re-authentication asks password and code and the start goes on
    with the reason kept. Both pages pass axe."""
    axe.ensure_installed()
    await tag_user(demo.base, "buyer-alice", "mfa_required")
    context = await browser.new_context(viewport=LAPTOP, bypass_csp=True)
    page = await context.new_page()
    found: list[str] = []
    await log_in(page, demo.base, "csr-carol")
    await page.goto(f"{demo.base}/_gateway/select-user?company=acme")
    await page.get_by_label("Reason or ticket").fill("TICKET-77 second factor")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    link = page.get_by_role("link", name="Set up an authenticator app")
    await expect(link).to_be_visible()
    found += await axe.audit(page, "mfa-not-enrolled")
    await shot(page, "totp-mfa-not-enrolled-1280")
    await link.click()
    await page.get_by_role("button", name="Set up an authenticator app").click()
    secret = await page.locator("#totp-secret").get_attribute("data-secret")
    assert secret
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await page.goto(f"{demo.base}/_gateway/select-user?company=acme")
    await page.get_by_label("Reason or ticket").fill("TICKET-77 second factor")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    await expect(page.get_by_label("Code")).to_be_visible()
    found += await axe.audit(page, "reauth-with-code")
    await shot(page, "totp-reauth-with-code-1280")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#csrgw-banner")).to_be_visible()
    await shot(page, "totp-mfa-start-1280")
    await context.close()
    assert found == [], "\n".join(found)
    lines = await audit_until(demo, "impersonation_start")
    start = [line for line in lines if line["event"] == "impersonation_start"][-1]
    assert start["amr"] == ["pwd", "otp"] and start["user"] == "buyer-alice"
    assert start["impersonation_reason"] == "TICKET-77 second factor"
    denied = [line for line in lines if line["event"] == "impersonation_denied"]
    assert denied[-1]["reason"] == "mfa_not_enrolled"
