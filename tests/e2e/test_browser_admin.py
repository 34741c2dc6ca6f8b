"""Managing CSRs in a real browser, as the manuals describe it, then the new CSR at work."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.support.browser import browser, demo, log_in, shot  # noqa: F401

pytestmark = pytest.mark.browser


async def test_admin_creates_assigns_and_the_csr_impersonates(demo, browser) -> None:  # noqa: F811
    """admin-ann adds a CSR, assigns it to Initech with Select All, the CSR activates its
    account from the link, logs in as buyer-ivan and sees the banner."""
    admin = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await admin.new_page()
    await log_in(page, demo.base, "admin-ann")
    await page.goto(f"{demo.base}/_gateway/admin/users")
    await page.get_by_label("Username (at least 5 characters, cannot change)").fill("csr-erin")
    await page.get_by_label("Email").first.fill("erin@example.com")
    await page.get_by_label("First name").fill("Erin")
    assert await page.locator("fieldset.groups input:checked").count() == 0
    await page.get_by_label("Kind").select_option("staff")
    await page.get_by_label("CSR", exact=True).check()
    await page.get_by_role("button", name="Add User").click()
    link = await page.get_by_label("Activation link").input_value()
    assert "/_gateway/activate?token=" in link
    await shot(page, "admin-01-user-created")
    await page.get_by_role("link", name="Assign CSRs").first.click()
    await page.get_by_label("Select Company").select_option(label="Initech")
    await page.get_by_role("button", name="Select All").click()
    for name in ("Carol Service", "Dave Support", "Erin"):
        await expect(page.get_by_label(name)).to_be_checked()
    await page.get_by_role("button", name="Clear All").click()
    await expect(page.get_by_label("Erin")).not_to_be_checked()
    await page.get_by_role("button", name="Select All").click()
    await page.get_by_role("button", name="Assign Selected CSRs").click()
    await expect(page.get_by_text("Assigned 3 CSRs to Initech.")).to_be_visible()
    await shot(page, "admin-02-assigned")
    await page.get_by_role("link", name="csr-erin").click()
    await expect(page.get_by_role("heading")).to_contain_text("Assigned Companies")
    await expect(page.get_by_role("link", name="Initech")).to_be_visible()

    erin = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await erin.new_page()
    await page.goto(link)
    await page.get_by_label("New password (at least 10 characters)").fill("erins-password")
    await page.get_by_label("New password again").fill("erins-password")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await log_in(page, demo.base, "csr-erin", "erins-password")
    await page.get_by_role("link", name="Log in as buyer").click()
    await page.get_by_role("button", name="Log in as Ivan Ivanov").click()
    await expect(page.locator("#csrgw-banner")).to_contain_text(
        "Logged In As Ivan Ivanov (Initech)")
    await shot(page, "admin-03-new-csr-impersonating")
    await admin.close()
    await erin.close()
