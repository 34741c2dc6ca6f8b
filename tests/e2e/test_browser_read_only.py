"""Read-only impersonation in a real browser: the refusal page, the switch, the banner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.support import axe
from tests.support.browser import (  # noqa: F401
    Demo,
    audit_until,
    browser,
    log_in,
    running_demo,
    shot,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def read_only_demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo with `impersonation.default_mode: read`, set from the environment."""
    yield from running_demo(tmp_path, {"CSRGW_IMPERSONATION__DEFAULT_MODE": "read"})


async def test_read_only_refusal_and_switch(read_only_demo, browser) -> None:  # noqa: F811
    """csr-carol acts for Alice read-only: adding to the cart is refused with a page that
    explains and offers "Switch to write mode"; with a reason the switch brings her back,
    the banner says Write mode, the same button now works; the audit has both. The refusal
    page and the banner in each mode pass the axe-core audit."""
    demo = read_only_demo
    axe.ensure_installed()
    context = await browser.new_context(viewport={"width": 1200, "height": 800},
                                        bypass_csp=True)
    page = await context.new_page()
    await log_in(page, demo.base, "csr-carol")
    await expect(page.locator("#csrgw-toolbar")).to_contain_text("Buyers open read-only")
    await page.goto(f"{demo.base}/_gateway/select-user")
    await page.get_by_label("Company").select_option(label="Acme Corp")
    await page.get_by_role("button", name="Show buyers").click()
    await page.get_by_label("Reason or ticket").fill("TICKET-5 look at the cart")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    banner = page.locator("#csrgw-banner")
    await expect(banner).to_contain_text("Read-only")
    add = page.get_by_role("button", name="Add Business cards, 100 to cart")
    await add.click()
    refusal = page.get_by_role("alert")
    await expect(refusal).to_contain_text("read-only mode")
    await expect(page.locator("#csrgw-banner")).to_contain_text("Read-only")
    await shot(page, "read-only-01-refused")
    found = await axe.audit(page, "read-only-refusal")
    found += await axe.audit(page, "banner-read-only", "#csrgw-banner")
    await page.get_by_label("Why do you need to make changes?").fill("TICKET-5 customer asked")
    await page.get_by_role("button", name="Switch to write mode").click()
    await expect(page.locator("#csrgw-banner")).to_contain_text("Write mode")
    await shot(page, "read-only-02-write-mode")
    found += await axe.audit(page, "banner-write-mode", "#csrgw-banner")
    assert found == [], "\n".join(found)
    await page.goto(f"{demo.base}/")
    await page.get_by_role("button", name="Add Business cards, 100 to cart").click()
    await expect(page.get_by_role("heading", name="Cart")).to_be_visible()
    await page.get_by_role("button", name="Back to read-only").click()
    await expect(page.locator("#csrgw-banner")).to_contain_text("Read-only")
    lines = await audit_until(demo, "impersonation_mode", 2)
    modes = [r for r in lines if r["event"] == "impersonation_mode"]
    assert [(m["mode"], m["reason"]) for m in modes] == [("write", "ok"), ("read", "ok")]
    assert modes[0]["mode_reason"] == "TICKET-5 customer asked"
    refused = [r for r in lines if r["event"] == "request" and r["path"] == "/cart/add"]
    assert refused[0]["reason"] == "read_only_impersonation"
    assert refused[0]["impersonation_mode"] == "read" and refused[0]["status"] == 403
    assert refused[-1]["reason"] == "ok" and refused[-1]["impersonation_mode"] == "write"
    await context.close()
