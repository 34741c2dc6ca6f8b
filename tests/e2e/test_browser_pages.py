"""The pages people use all day, in a real browser at a laptop's 1280 px and a phone's 390 px."""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.async_api import expect

from tests.support.browser import browser, demo, log_in, shot  # noqa: F401
from tests.support.gateway import ROOT

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


async def no_body_overflow(page: object) -> None:
    """The page itself never scrolls sideways; only a table's own wrapper may."""
    wide = await page.evaluate(  # type: ignore[attr-defined]
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 0, f"body overflows by {wide}px"


async def in_viewport(page: object, locator: object, width: int) -> None:
    box = await locator.bounding_box()  # type: ignore[attr-defined]
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box


async def test_groups_matrix_at_1280_shows_every_column_with_titles(demo, browser) -> None:  # noqa: F811
    """At 1280 px the matrix's last column, CSR as Buyer, is on screen without scrolling;
    rows are page titles; cells carry a symbol and words besides colour; the filter works."""
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, demo.base, "admin-ann")
    await page.goto(f"{demo.base}/_gateway/admin/groups")
    matrix = page.locator("table.matrix")
    await in_viewport(page, matrix.get_by_role("columnheader", name="CSR as Buyer"), 1280)
    await expect(matrix.get_by_role("rowheader", name="Order/Quote Confirmation")).to_be_visible()
    await expect(matrix.get_by_role("rowheader", name="Administration: Users")).to_be_visible()
    assert await matrix.get_by_text("ORDER_CONFIRMATION", exact=True).count() == 0
    wrap = page.locator(".matrix-wrap")
    assert await wrap.evaluate("e => e.scrollWidth <= e.clientWidth")
    row = matrix.locator("tr", has=page.get_by_role("rowheader", name="Change Password"))
    acting = row.locator("td").last
    await expect(acting).to_contain_text("✕")
    await expect(acting).to_contain_text("not allowed")
    assert await acting.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(254, 226, 226)"
    await expect(page.get_by_text("allowed, with the actions")).to_be_visible()
    await shot(page, "pages-groups-1280")
    await page.get_by_label("Show group").select_option("CSR")
    await page.get_by_role("button", name="Show").click()
    heads = await matrix.locator("thead th").all_inner_texts()
    assert heads == ["Page", "CSR", "CSR as Buyer"]
    await no_body_overflow(page)
    await context.close()


async def test_groups_matrix_at_390_keeps_page_column_and_header_in_place(demo, browser) -> None:  # noqa: F811
    """On a phone the matrix scrolls inside its box while the header row and the page
    column stay put, and the page body does not scroll sideways."""
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await log_in(page, demo.base, "admin-ann")
    await page.goto(f"{demo.base}/_gateway/admin/groups")
    await no_body_overflow(page)
    wrap = page.locator(".matrix-wrap")
    await wrap.scroll_into_view_if_needed()
    top_before = (await wrap.bounding_box())["y"]  # type: ignore[index]
    await wrap.evaluate("e => { e.scrollTop = 300; e.scrollLeft = 400; }")
    assert await wrap.evaluate("e => e.scrollTop") > 0
    assert await wrap.evaluate("e => e.scrollLeft") > 0
    header = page.locator("table.matrix thead th").nth(2)
    page_cell = page.get_by_role("rowheader", name="Reports")
    head_box, wrap_box = await header.bounding_box(), await wrap.bounding_box()
    assert wrap_box["y"] == top_before  # type: ignore[index]
    assert abs(head_box["y"] - wrap_box["y"]) <= 2, (head_box, wrap_box)  # type: ignore[index]
    corner = await page.locator("table.matrix tbody th").first.bounding_box()
    assert abs(corner["x"] - wrap_box["x"]) <= 2, (corner, wrap_box)  # type: ignore[index]
    await expect(page_cell).to_be_visible()
    await shot(page, "pages-groups-390")
    await context.close()


async def test_cli_matrix_html_is_a_standalone_page_with_the_same_look(browser, tmp_path) -> None:  # noqa: F811
    """`policy matrix --format html` writes a whole page, CSS inside, that fits 1280 px."""
    out = subprocess.run([sys.executable, "-m", "gateway", "policy", "matrix", "--format",
                          "html"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.startswith("<!doctype html>") and "/_gateway/static" not in out
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await page.set_content(out)
    head = page.get_by_role("columnheader", name="CSR as Buyer")
    await in_viewport(page, head, 1280)
    assert await head.evaluate("e => getComputedStyle(e).position") == "sticky"
    await shot(page, "pages-matrix-cli-1280")
    await context.close()


async def one_line(locator: object) -> None:
    """The element's text sits on one line (no wrapped identifiers or timestamps)."""
    lines = await locator.evaluate(  # type: ignore[attr-defined]
        "e => { const r = document.createRange(); r.selectNodeContents(e);"
        " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }")
    assert lines == 1, f"{lines} lines"


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280", "390"])
async def test_transaction_log_pages_filters_and_keeps_times_on_one_line(
        demo, browser, viewport) -> None:  # noqa: F811
    """The log shows the reason column, sort choices in words, Next/Previous with 2 rows a
    page, export links carrying the filters; times stay on one line; the body never
    scrolls sideways at 390 px (the table scrolls in its own box)."""
    carol = await browser.new_context(viewport=LAPTOP)
    page = await carol.new_page()
    await log_in(page, demo.base, "csr-carol")
    await page.goto(f"{demo.base}/_gateway/select-user")
    await page.get_by_label("Reason or ticket").fill("TICKET-77 wrong delivery address")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    await carol.close()
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await log_in(page, demo.base, "admin-ann")
    await page.goto(f"{demo.base}/_gateway/admin/transactions")
    ticket = page.get_by_role("cell", name="TICKET-77 wrong delivery address")
    await expect(ticket.first).to_be_visible()
    options = await page.get_by_label("Sort").locator("option").all_inner_texts()
    assert options[:2] == ["Newest first", "Oldest first"] and "ts" not in options
    await one_line(page.locator("table.log tbody td").first)
    await no_body_overflow(page)
    await shot(page, f"pages-transactions-{viewport['width']}")
    await page.get_by_label("CSR").select_option("csr-carol")
    await page.get_by_role("button", name="Show").click()
    href = await page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert href == "/_gateway/admin/transactions.csv?csr=csr-carol"
    await page.goto(f"{demo.base}/_gateway/admin/transactions?limit=2")
    first = await page.locator("table.log tbody tr").all_inner_texts()
    await page.get_by_role("link", name="Next").click()
    second = await page.locator("table.log tbody tr").all_inner_texts()
    assert len(second) == 2 and not set(first) & set(second)
    await page.get_by_role("link", name="Previous").click()
    assert await page.locator("table.log tbody tr").all_inner_texts() == first
    await context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280", "390"])
async def test_refusal_page_reads_as_a_sentence_with_a_way_back(demo, browser, viewport) -> None:  # noqa: F811
    """Acting for Alice, Change Password is refused in one sentence naming the page; Go back
    returns to the cart; the banner stays; nothing overflows at 390 px."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await log_in(page, demo.base, "csr-carol")
    await page.goto(f"{demo.base}/_gateway/select-user?company=acme")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    await page.goto(f"{demo.base}/cart")
    await page.evaluate("location.href = '/account/password'")
    await expect(page.get_by_role("heading", name=(
        "Change Password is not available while acting for a buyer"))).to_be_visible()
    await expect(page.get_by_text("For support: reason sensitive_page")).to_be_visible()
    await expect(page.locator("#csrgw-banner")).to_be_visible()
    await no_body_overflow(page)
    await shot(page, f"pages-refusal-{viewport['width']}")
    await page.get_by_role("link", name="Go back").click()
    await expect(page).to_have_url(f"{demo.base}/cart")
    await context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280", "390"])
async def test_add_user_ticks_nothing_and_warns_as_csr_and_admin_are_chosen(
        demo, browser, viewport) -> None:  # noqa: F811
    """No group is ticked on Add User; ticking CSR and then Administrator shows the warning
    at once, unticking hides it; the page fits a phone."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await log_in(page, demo.base, "admin-ann")
    await page.goto(f"{demo.base}/_gateway/admin/users")
    assert await page.locator("fieldset.groups input:checked").count() == 0
    warning = page.locator("#csr-admin-warning")
    await page.get_by_label("CSR", exact=True).check()
    await expect(warning).to_be_hidden()
    await page.get_by_label("Administrator", exact=True).check()
    await expect(warning).to_be_visible()
    await no_body_overflow(page)
    await shot(page, f"pages-add-user-{viewport['width']}")
    await page.get_by_label("Administrator", exact=True).uncheck()
    await expect(warning).to_be_hidden()
    await context.close()


async def test_csr_pages_on_a_phone(demo, browser) -> None:  # noqa: F811
    """At 390 px: Select User lists buyers as cards with full-width buttons, the header's
    links never break mid-word, the banner fits and keeps its buttons on one line, and the
    account page does not scroll sideways."""
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await log_in(page, demo.base, "csr-carol")
    await page.goto(f"{demo.base}/_gateway/select-user")
    await no_body_overflow(page)
    for link in await page.locator("header.gw a, header.gw button").all():
        await one_line(link)
    button = page.get_by_role("button", name="Log in as Alice Anders")
    box = await button.bounding_box()
    assert box is not None and box["width"] > 300, box
    await shot(page, "pages-select-user-390")
    await page.get_by_label("Reason or ticket").fill("TICKET-9")
    await button.click()
    banner = page.locator("#csrgw-banner")
    await expect(banner).to_be_visible()
    await in_viewport(page, banner, 390)
    await one_line(banner.get_by_role("button", name="Logout Buyer"))
    await one_line(banner.get_by_role("link", name="Log in as another buyer"))
    await no_body_overflow(page)
    await shot(page, "pages-banner-390")
    await page.goto(f"{demo.base}/_gateway/account")
    await no_body_overflow(page)
    await shot(page, "pages-account-390")
    await context.close()


async def test_switch_buyers_in_one_step_from_the_banner(demo, browser) -> None:  # noqa: F811
    """From the banner's "Log in as another buyer", the CSR gives a new reason and switches
    to Bob in one step; the banner then names Bob."""
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, demo.base, "csr-carol")
    await page.goto(f"{demo.base}/_gateway/select-user")
    await page.get_by_label("Reason or ticket").fill("TICKET-1")
    await page.get_by_role("button", name="Log in as Alice Anders").click()
    await page.locator("#csrgw-banner").get_by_role("link", name="Log in as another buyer").click()
    await expect(page.get_by_text("Acting for them now")).to_be_visible()
    await page.get_by_label("Reason or ticket for the new buyer").fill("TICKET-2")
    await shot(page, "pages-switch-1280")
    await page.get_by_role("button", name="Switch to Bob Baker").click()
    await expect(page.locator("#csrgw-banner")).to_contain_text("Logged In As Bob Baker")
    await context.close()
