"""The CSR's whole workflow in a real browser: log in as buyer, order, Logout Buyer."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.support.browser import audit_until, browser, demo, log_in, shot  # noqa: F401

pytestmark = pytest.mark.browser


async def test_csr_orders_for_buyer_in_the_browser(demo, browser) -> None:  # noqa: F811
    """csr-carol: Log in as buyer -> Select User -> Alice -> banner visible -> order ->
    Logout Buyer -> herself again; the audit has start, the order and stop."""
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    await log_in(page, demo.base, "csr-carol")
    await shot(page, "csr-01-shop-as-csr")
    await page.get_by_role("link", name="Log in as buyer").click()
    await expect(page.get_by_role("heading", name="Select User")).to_be_visible()
    await page.get_by_label("Company").select_option(label="Acme Corp")
    await page.get_by_role("button", name="Show buyers").click()
    await expect(page.get_by_text("Pat Prospect")).to_be_visible()
    await expect(page.get_by_role("button", name="Not selectable")).to_be_disabled()
    await page.get_by_label("Reason or ticket").fill("TICKET-99 phone order")
    await shot(page, "csr-02-select-user")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    banner = page.locator("#csrgw-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Logged In As Alice Anders (Acme Corp)")
    await shot(page, "csr-03-shop-as-alice")
    await page.get_by_role("button", name="Add Business cards, 100 to cart").click()
    await expect(page.get_by_role("heading", name="Cart")).to_be_visible()
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator(".placed")).to_contain_text(
        "Placed by csr-carol on behalf of buyer-alice")
    await expect(banner).to_be_visible()
    await shot(page, "csr-04-order-confirmation")
    await page.get_by_role("button", name="Logout Buyer").click()
    await expect(page.locator("#csrgw-banner")).to_have_count(0)
    await shot(page, "csr-05-after-logout-buyer")
    me = await (await context.request.get(f"{demo.base}/_gateway/whoami")).json()
    assert (me["user"], me["acting_as"]) == ("csr-carol", None)
    lines = await audit_until(demo, "impersonation_stop")
    events = [r["event"] for r in lines]
    assert "impersonation_start" in events and "impersonation_stop" in events
    order = [r for r in lines if r["event"] == "request" and r["path"] == "/checkout"
             and r["method"] == "POST"]
    assert order and order[0]["csr"] == "csr-carol" and order[0]["user"] == "buyer-alice"
    assert order[0]["impersonation_reason"] == "TICKET-99 phone order"
    await context.close()


async def test_buyer_never_sees_the_banner(demo, browser) -> None:  # noqa: F811
    """A buyer's own session (even while a CSR acts for them) shows no banner."""
    csr = await browser.new_context()
    csr_page = await csr.new_page()
    await log_in(csr_page, demo.base, "csr-carol")
    await csr_page.goto(f"{demo.base}/_gateway/select-user?company=acme")
    await csr_page.get_by_role("button", name="Log in as Alice Anders").click()
    await expect(csr_page.locator("#csrgw-banner")).to_be_visible()
    buyer = await browser.new_context()
    page = await buyer.new_page()
    await log_in(page, demo.base, "buyer-alice")
    await expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    await expect(page.locator("#csrgw-banner")).to_have_count(0)
    await expect(page.locator("#csrgw-toolbar")).to_have_count(0)
    await shot(page, "buyer-own-session")
    await csr.close()
    await buyer.close()


async def test_sensitive_page_denied_while_impersonating(demo, browser) -> None:  # noqa: F811
    """the buyer's password page is refused, with the banner still there."""
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, demo.base, "csr-carol")
    await page.goto(f"{demo.base}/_gateway/select-user?company=acme")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    await page.goto(f"{demo.base}/account/password")
    await expect(page.get_by_role("heading", name=(
        "Change Password is not available while acting for a buyer"))).to_be_visible()
    await expect(page.locator("#csrgw-banner")).to_be_visible()
    await shot(page, "csr-sensitive-denied")
    await context.close()
