"""Accessibility of every gateway page, in a real browser at 1280 and 390 px, in English and
German: axe-core finds nothing serious or critical; keyboard alone does the CSR's job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.async_api import expect

from tests.support import axe
from tests.support.browser import Demo, browser, running_demo, shot  # noqa: F401

pytestmark = pytest.mark.browser

VIEWPORTS = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}
LOCALES = {"en": "en-US", "de": "de-DE"}
WORDS = {  # what the walk clicks and types into, in each language
    "en": {"username": "Username", "password": "Password", "login": "Log in",
           "continue": "Continue", "as_alice": "Log in as Alice Anders",
           "totp_setup": "Set up an authenticator app", "totp_code": "Code from the app",
           "totp_on": "Turn on"},
    "de": {"username": "Benutzername", "password": "Passwort", "login": "Anmelden",
           "continue": "Weiter", "as_alice": "Als Alice Anders anmelden",
           "totp_setup": "Authenticator-App einrichten", "totp_code": "Code aus der App",
           "totp_on": "Einschalten"},
}


@pytest.fixture
def stepup_demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo asking for the password again before every impersonation (the reauth page)."""
    axe.ensure_installed()
    yield from running_demo(tmp_path, {"CSRGW_IMPERSONATION__STEP_UP_MINUTES": "0"})


async def _log_in(page: Any, base: str, words: dict[str, str], username: str) -> None:
    await page.goto(f"{base}/_gateway/login")
    await page.get_by_label(words["username"]).fill(username)
    await page.get_by_label(words["password"], exact=True).fill("demo-pass-1")
    await page.get_by_role("button", name=words["login"], exact=True).click()


class Walk:
    """Visits pages, audits each with axe, keeps a screenshot of each."""

    def __init__(self, page: Any, tag: str) -> None:
        self.page, self.tag, self.found = page, tag, []  # type: ignore[var-annotated]

    async def check(self, name: str, within: str | None = None,
                    not_ours: tuple[str, ...] = ()) -> None:
        await expect(self.page.locator("body")).to_be_visible()
        self.found += await axe.audit(self.page, name, within, not_ours)
        await shot(self.page, f"a11y-{self.tag}-{name}")

    async def visit(self, url: str, name: str, within: str | None = None,
                    not_ours: tuple[str, ...] = ()) -> None:
        await self.page.goto(url)
        await self.check(name, within, not_ours)


ADMIN_PAGES = [("", "admin-index"), ("users", "admin-users"),
               ("users/csr-carol", "admin-user"), ("groups", "admin-groups-matrix"),
               ("assign-csrs?company=acme", "admin-assign-csrs"),
               ("companies", "admin-companies"), ("sessions", "admin-sessions"),
               ("transactions", "admin-transactions"), ("approvals", "admin-approvals")]


@pytest.mark.parametrize("lang", sorted(LOCALES))
@pytest.mark.parametrize("width", sorted(VIEWPORTS))
async def test_every_gateway_page_passes_axe(stepup_demo: Demo, browser, width: str,  # noqa: F811
                                             lang: str) -> None:
    """Login, errors, Select User, reauth, the banner on a shop page, account (and its
    authenticator-app set-up and recovery codes), the login's code page, whoami and every
    admin page: no serious or critical axe violation; `<html lang>` is the language."""
    base, words = stepup_demo.base, WORDS[lang]
    context = await browser.new_context(viewport=VIEWPORTS[width], locale=LOCALES[lang],
                                        bypass_csp=True, is_mobile=width == "390")
    page = await context.new_page()
    walk = Walk(page, f"{lang}-{width}")
    await walk.visit(f"{base}/_gateway/login", "login")
    assert await page.get_attribute("html", "lang") == lang
    await walk.visit(f"{base}/_gateway/no-such-page", "error-404")
    await _log_in(page, base, words, "csr-carol")
    await walk.check("shop-with-csr-toolbar", "#csrgw-toolbar")
    await walk.visit(f"{base}/_gateway/select-user", "select-user")
    await page.get_by_role("button", name=words["as_alice"]).click()
    await walk.check("reauth")
    await page.get_by_label(words["password"], exact=True).fill("demo-pass-1")
    await page.get_by_role("button", name=words["continue"]).click()
    await expect(page.locator("#csrgw-banner")).to_be_visible()
    await walk.check("shop-with-banner", "#csrgw-banner")
    await walk.visit(f"{base}/_gateway/select-user", "select-user-acting")
    await walk.visit(f"{base}/account/password", "error-sensitive-page")
    await walk.visit(f"{base}/_gateway/account", "account")
    await page.get_by_role("button", name=words["totp_setup"]).click()
    await walk.check("account-totp-enrol")
    secret = await page.locator("#totp-secret").get_attribute("data-secret")
    await page.get_by_label(words["totp_code"]).fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name=words["totp_on"]).click()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await walk.check("account-totp-codes")
    # whoami answers JSON (the contract); the title and lang of the page around it are
    # chromium's own JSON viewer, so only those two document rules are left out there
    await walk.visit(f"{base}/_gateway/whoami", "whoami",
                     not_ours=("document-title", "html-has-lang"))
    await context.clear_cookies()
    await _log_in(page, base, words, "csr-carol")  # enrolled now: the code page
    await walk.check("login-code")
    await context.clear_cookies()
    await _log_in(page, base, words, "admin-ann")
    for path, name in ADMIN_PAGES:
        await walk.visit(f"{base}/_gateway/admin/{path}", name)
    await context.clear_cookies()
    await _log_in(page, base, words, "buyer-alice")
    await walk.visit(f"{base}/_gateway/me/access", "staff-access")
    await context.close()
    assert walk.found == [], "\n".join(walk.found)


async def _tab_to(page: Any, text: str, limit: int = 80) -> None:
    """Press Tab until the focused element reads `text`; its focus must be visible."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if (await page.evaluate("document.activeElement.innerText || ''")).strip() == text:
            ring = await page.evaluate(
                "(() => { const s = getComputedStyle(document.activeElement);"
                " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()")
            assert ring[0] != "none" and ring[1] >= 2, f"no visible focus on {text!r}: {ring}"
            return
    raise AssertionError(f"{text!r} is not reachable with Tab")


@pytest.mark.parametrize("width", sorted(VIEWPORTS))
async def test_keyboard_alone_does_the_csrs_job(tmp_path: Path, browser, width: str) -> None:  # noqa: F811
    """With Tab and Enter only: log in, skip to the content, log in as a buyer, and stop
    from the banner on a shop page; every stop on the way shows where the focus is."""
    axe.ensure_installed()
    for demo in running_demo(tmp_path):
        context = await browser.new_context(viewport=VIEWPORTS[width])
        page = await context.new_page()
        await page.goto(f"{demo.base}/_gateway/login")
        await page.keyboard.type("csr-carol")  # the username field has the focus
        await page.keyboard.press("Tab")
        await page.keyboard.type("demo-pass-1")
        await page.keyboard.press("Enter")
        await expect(page.locator("#csrgw-toolbar")).to_be_visible()
        await page.goto(f"{demo.base}/_gateway/select-user")
        await page.keyboard.press("Tab")
        skip = page.locator(".skip-link")
        await expect(skip).to_be_focused()
        box = await skip.bounding_box()
        assert box is not None and box["y"] >= 0, "the skip link stays off screen when focused"
        await page.keyboard.press("Enter")
        await expect(page.locator("main")).to_be_focused()
        await _tab_to(page, "Log in as Alice Anders")
        await page.keyboard.press("Enter")
        banner = page.locator("#csrgw-banner")
        await expect(banner).to_contain_text("Logged In As Alice Anders")
        await _tab_to(page, "Logout Buyer", limit=200)
        await shot(page, f"a11y-keyboard-{width}-logout-buyer-focused")
        await page.keyboard.press("Enter")
        await expect(banner).to_have_count(0)
        await context.close()
