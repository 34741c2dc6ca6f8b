"""The language of the gateway's pages, end to end: browser preference, the person's own
setting on the account page, refusals in HTML and JSON, the banner on a shop page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.directory import Directory
from gateway.directory.store import HEAD_REVISION
from tests.support.gateway import ROOT, audit_lines, impersonate, login, whoami
from tests.support.migrations import upgrade_to

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', page)
    assert found, page[:200]
    return found.group(1)


@pytest.mark.parametrize(("headers", "lang", "words"), [
    (GERMAN, "de", "Benutzername"), (ENGLISH, "en", "Username"),
    ({}, "en", "Username"), ({"Accept-Language": "fr-FR"}, "en", "Username"),
], ids=["german-browser", "english-browser", "no-header", "unknown-language"])
async def test_login_page_follows_the_browser(gateway, headers, lang, words) -> None:
    """Before anyone logs in, Accept-Language decides; `<html lang>` says which."""
    resp = await gateway.get("/_gateway/login", headers=headers)
    page = await resp.text()
    assert resp.status == 200
    assert html_lang(page) == lang
    assert f">{words}</label>" in page


async def test_account_setting_beats_the_browser_and_can_be_cleared(gateway) -> None:
    """German chosen on the account page shows German to an English browser; "" returns to
    the browser's choice; each change is one audit line."""
    await login(gateway, "csr-carol")
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/account/language", headers=ENGLISH,
                              data={"language": "de", "csrf_token": token},
                              allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?language=saved")
    page = await (await gateway.get(resp.headers["Location"], headers=ENGLISH)).text()
    assert html_lang(page) == "de"
    assert "Ihre Sprache wurde gespeichert." in page
    assert '<option value="de" lang="de" selected>Deutsch</option>' in page
    select = await (await gateway.get("/_gateway/select-user", headers=ENGLISH)).text()
    assert "Benutzer auswählen" in select and html_lang(select) == "de"
    await gateway.post("/_gateway/account/language", headers=ENGLISH,
                       data={"language": "", "csrf_token": token})
    page = await (await gateway.get("/_gateway/account", headers=ENGLISH)).text()
    assert html_lang(page) == "en" and "My account" in page
    changes = [r for r in audit_lines(gateway) if r.get("action") == "own_language"]
    assert [(c["after"], c["user"], c["actor"]) for c in changes] == [
        ({"language": "de"}, "csr-carol", "csr-carol"),
        ({"language": ""}, "csr-carol", "csr-carol")]


@pytest.mark.parametrize(("data", "status"), [
    ({"language": "xx"}, 400), ({"language": "de"}, 403),
], ids=["unknown-language", "no-csrf-token"])
async def test_bad_language_changes_are_refused(gateway, data, status) -> None:
    """An unknown language is a 400, a missing CSRF token a 403; nothing is stored."""
    await login(gateway, "csr-carol")
    if status != 403:
        data = {**data, "csrf_token": (await whoami(gateway))["csrf_token"]}
    resp = await gateway.post("/_gateway/account/language", data=data, headers=GERMAN)
    assert resp.status == status
    from tests.support.gateway import gw_of

    assert gw_of(gateway).directory.snapshot.user("csr-carol").language == ""
    assert audit_lines(gateway)[-1]["status"] == status


async def test_refusals_in_german_html_and_json(gateway) -> None:
    """The error page and the JSON `message` speak German; codes and keys stay English."""
    page = await (await gateway.get("/_gateway/nowhere-at-all", headers=GERMAN)).text()
    assert "Unter dieser Adresse gibt es keine Seite" in page
    assert "Für den Support: Grund <code>no_route</code>" in page
    assert html_lang(page) == "de"
    resp = await gateway.get("/_gateway/api/buyers", headers={**GERMAN,
                                                              "Accept": "application/json"})
    body = await resp.json()
    assert resp.status == 401 and body["error"] == "unauthenticated"
    assert body["message"].startswith("Sie sind nicht angemeldet")


async def test_acting_refusal_names_page_and_buyer_in_german(gateway) -> None:
    """The sentence for a sensitive page keeps the configured title and the buyer's name."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    resp = await gateway.get("/account/password", headers=GERMAN)
    page = await resp.text()
    assert resp.status == 403
    assert "steht nicht zur Verfügung, während Sie für einen Käufer handeln" in page
    assert "nur Alice Anders kann die Seite" in page
    assert 'lang="de"' in page.split('id="csrgw-banner"')[0][-40:] + page


async def test_banner_on_a_shop_page_speaks_the_csrs_language(gateway) -> None:
    """The banner injected into the shop's HTML is German, marked `lang="de"` itself (the
    shop's page keeps its own language), and announced as a status."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    page = await (await gateway.get("/", headers=GERMAN)).text()
    banner = re.search(r'<div id="csrgw-banner"[^>]*>', page)
    assert banner is not None
    assert 'lang="de"' in banner.group(0) and 'role="status"' in banner.group(0)
    assert "Angemeldet als Alice Anders (Acme Corp)" in page
    assert "Käufer abmelden" in page
    english = await (await gateway.get("/", headers=ENGLISH)).text()
    assert "Logged In As Alice Anders (Acme Corp)" in english  # cached per language


async def test_csr_toolbar_in_german(gateway) -> None:
    """The CSR's own bar on shop pages ("Log in as buyer") follows the language too."""
    await login(gateway, "csr-carol")
    page = await (await gateway.get("/", headers=GERMAN)).text()
    assert 'id="csrgw-toolbar" lang="de"' in page and "Als Käufer anmelden" in page


async def test_admin_pages_in_german(gateway) -> None:
    """Administration, the Transaction Log's sort words and the matrix legend translate;
    group names, page titles from the configuration and codes stay as configured."""
    await login(gateway, "admin-ann")
    log = await (await gateway.get("/_gateway/admin/transactions", headers=GERMAN)).text()
    assert "Transaktionsprotokoll" in log and "Neueste zuerst" in log
    groups = await (await gateway.get("/_gateway/admin/groups", headers=GERMAN)).text()
    assert "Seitenzugriff nach Gruppe" in groups and "CSR als Buyer" in groups
    assert "Verwaltung: Benutzer" in groups


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_migration_adds_the_language_to_existing_users(database, tmp_path: Path) -> None:
    """A directory made before languages (schema 0001) upgrades in place: its users keep
    everything and follow their browser until they choose."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.support.services import postgres_url

    urls = None
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    else:
        urls = postgres_url()
        url = await urls.__anext__()
    try:
        engine = create_async_engine(url)

        async with engine.begin() as conn:
            await upgrade_to(conn, "0001")
            await conn.execute(text(
                "INSERT INTO users (username, email, first_name, last_name, mobile, kind, "
                "account_number, active, idle_minutes, features, tags, allow_assistance) "
                "VALUES ('old-olga', 'olga@example.com', 'Olga', '', '', 'staff', '', "
                "true, 60, '[]', '[]', false)"))
        await engine.dispose()
        directory = await Directory.open(url, ROOT / "config" / "directory.yaml")
        try:
            olga = directory.snapshot.user("old-olga")
            assert directory.schema == HEAD_REVISION  # upgraded to the newest
            assert olga is not None and olga.language == "" and olga.first_name == "Olga"
            await directory.set_language("old-olga", "de")
            assert directory.snapshot.user("old-olga").language == "de"
        finally:
            await directory.close()
    finally:
        if urls is not None:
            await urls.aclose()
