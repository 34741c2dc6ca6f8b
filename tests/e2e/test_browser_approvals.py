"""Four-eyes approval in a real browser: a CSR asks, an administrator approves, the CSR acts;
then the buyer sees it on their page of staff access."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.support import axe
from tests.support.browser import audit_until, browser, demo, log_in, shot, tag_user  # noqa: F401

pytestmark = pytest.mark.browser


async def test_two_staff_approve_in_the_browser(demo, browser) -> None:  # noqa: F811
    """csr-carol's start waits; admin-ann approves in her queue; carol's page goes on by
    itself into Bob's shop; a second start needs a new approval; Bob sees Carol's visit."""
    axe.ensure_installed()
    await tag_user(demo.base, "buyer-bob", "approval_required")
    # bypass_csp: the accessibility audit injects axe-core into the pages
    carol_ctx = await browser.new_context(bypass_csp=True)
    ann_ctx = await browser.new_context()
    carol, ann = await carol_ctx.new_page(), await ann_ctx.new_page()
    await log_in(carol, demo.base, "csr-carol")
    await carol.goto(f"{demo.base}/_gateway/select-user?company=globex")
    await carol.get_by_label("Reason or ticket").fill("TICKET-55 invoice question")
    await carol.get_by_role("button", name="Log in as Bob Baker").click()
    await expect(carol.get_by_role("status")).to_contain_text("waiting for an approver")
    await shot(carol, "approval-01-csr-waiting")
    assert await axe.audit(carol, "approval-pending") == []
    await log_in(ann, demo.base, "admin-ann")
    await ann.goto(f"{demo.base}/_gateway/admin/approvals")
    row = ann.locator("tr", has_text="Bob Baker")
    await expect(row).to_contain_text("Carol Service")
    await expect(row).to_contain_text("TICKET-55 invoice question")
    await shot(ann, "approval-02-queue")
    await ann.get_by_role("button", name="Approve Carol Service for Bob Baker").click()
    await expect(ann.get_by_role("status")).to_contain_text("Approved")
    await expect(ann.get_by_text("No requests are waiting for you.")).to_be_visible()
    banner = carol.locator("#csrgw-banner")
    await expect(banner).to_contain_text("Logged In As Bob Baker (Globex Inc)", timeout=15000)
    await shot(carol, "approval-03-acting-after-approval")
    await carol.get_by_role("button", name="Logout Buyer").click()
    await expect(carol.locator("#csrgw-banner")).to_have_count(0)
    await carol.goto(f"{demo.base}/_gateway/select-user?company=globex")
    await carol.get_by_label("Reason or ticket").fill("TICKET-56")
    await carol.get_by_role("button", name="Log in as Bob Baker").click()
    await expect(carol.get_by_role("status")).to_contain_text("waiting for an approver")
    lines = await audit_until(demo, "impersonation_stop")
    granted = [r for r in lines if r["event"] == "approval_granted"]
    assert [(r["approver"], r["csr"], r["user"]) for r in granted] == [
        ("admin-ann", "csr-carol", "buyer-bob")]
    bob_ctx = await browser.new_context()
    bob = await bob_ctx.new_page()
    await log_in(bob, demo.base, "buyer-bob")
    await bob.goto(f"{demo.base}/_gateway/me/access")
    visit = bob.locator("table.access tbody tr").first
    await expect(visit.locator(".staff")).to_have_text("Carol Service")
    await expect(visit).to_contain_text("TICKET-55 invoice question")
    await shot(bob, "approval-04-buyer-sees-access")
    for context in (carol_ctx, ann_ctx, bob_ctx):
        await context.close()
