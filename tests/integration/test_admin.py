"""The admin API and pages: allowed only by policy, validated, audited, never while acting."""

from __future__ import annotations

import re

import pytest
from aiohttp import ClientSession, CookieJar

from tests.support.gateway import audit_lines, gw_of, impersonate, login, whoami

API = "/_gateway/api"
ENDPOINTS = [
    ("GET", f"{API}/users", None),
    ("POST", f"{API}/users", {"username": "csr-erin", "email": "erin@example.com",
                              "groups": ["CSR"], "kind": "staff"}),
    ("PATCH", f"{API}/users/buyer-bob", {"mobile": "555"}),
    ("GET", f"{API}/groups", None),
    ("GET", f"{API}/companies", None),
    ("POST", f"{API}/assignments", {"company": "initech", "csrs": ["csr-carol"]}),
    ("GET", f"{API}/sessions", None),
    ("GET", f"{API}/users/buyer-bob", None),
]
PERSONAS = {"admin-ann": None, "csr-carol": None, "sales-sam": None, "buyer-alice": None,
            "carol-as-alice": ("csr-carol", "buyer-alice")}
EXPECT = {
    "admin-ann": {e[1] + e[0]: True for e in ENDPOINTS},
    "sales-sam": {f"{API}/sessionsGET": True},
}


async def _as(client, persona: str) -> str:
    user, buyer = PERSONAS[persona] or (persona, None)
    await login(client, user)
    if buyer:
        assert await impersonate(client, buyer) == 303
    return str((await whoami(client))["csrf_token"])


@pytest.mark.parametrize("persona", list(PERSONAS))
@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS,
                         ids=[f"{m}-{p.rsplit('/api/', 1)[1]}" for m, p, _ in ENDPOINTS])
async def test_permission_table(make_gateway, persona, method, path, data) -> None:
    """Administrators manage; CSRs, buyers and anyone impersonating get nothing;
    Sales Admin reads sessions only."""
    client = await make_gateway()
    token = await _as(client, persona)
    resp = await client.request(method, path, json=data, headers={"X-CSRF-Token": token})
    allowed = EXPECT.get(persona, {}).get(path + method, False)
    assert resp.status in ((200, 201) if allowed else (403,)), await resp.text()


async def test_unsafe_calls_need_the_csrf_token(gateway) -> None:
    """A cross-site request cannot change the directory: no X-CSRF-Token, 403."""
    await login(gateway, "admin-ann")
    resp = await gateway.patch(f"{API}/users/buyer-bob", json={"mobile": "1"})
    assert resp.status == 403
    assert (await resp.json())["error"] == "csrf_failed"


@pytest.mark.parametrize(("path", "method", "data", "field"), [
    (f"{API}/users", "POST", {"username": "abc", "email": "x@y.example"}, "username"),
    (f"{API}/users", "POST", {"username": "valid-name", "email": "nope"}, "email"),
    (f"{API}/users/buyer-bob", "PATCH", {"username": "bobby"}, "username"),
    (f"{API}/users/buyer-bob", "PATCH", {"active": "yes"}, "active"),
    (f"{API}/companies", "POST", {"id": "Bad Id", "name": "x"}, "id"),
    (f"{API}/assignments", "POST", {"company": "acme", "csrs": ["buyer-bob"]}, "csrs"),
    (f"{API}/groups", "POST", {"name": ""}, "name"),
    (f"{API}/users", "POST", [1, 2], "body"),
], ids=["short-username", "bad-email", "immutable-username", "bool", "company-id",
        "not-a-csr", "group-name", "not-an-object"])
async def test_validation_errors_name_the_field(gateway, path, method, data, field) -> None:
    """Bad input is a 422 that names the field; nothing changes."""
    token = await _as(gateway, "admin-ann")
    resp = await gateway.request(method, path, json=data, headers={"X-CSRF-Token": token})
    assert resp.status == 422
    assert field in (await resp.json())["fields"]


async def test_changes_are_audited_with_before_and_after(gateway) -> None:
    """admin_change lines say who changed what, before and after, without secrets."""
    token = await _as(gateway, "admin-ann")
    resp = await gateway.post(f"{API}/users", headers={"X-CSRF-Token": token}, json={
        "username": "csr-erin", "email": "erin@example.com", "groups": ["CSR"],
        "kind": "staff"})
    assert resp.status == 201
    link = (await resp.json())["activation_link"]
    assert link.startswith("/_gateway/activate?token=")
    await gateway.post(f"{API}/assignments", headers={"X-CSRF-Token": token},
                       json={"company": "initech", "csrs": ["csr-erin"]})
    changes = [r for r in audit_lines(gateway) if r["event"] == "admin_change"]
    created, assigned = changes[-2], changes[-1]
    assert created["actor"] == "admin-ann" and created["after"]["username"] == "csr-erin"
    assert created["before"] is None
    assert "csr-erin" not in assigned["before"]["csrs"]
    assert "csr-erin" in assigned["after"]["csrs"]
    from pathlib import Path

    text = Path(gw_of(gateway).settings.audit.path).read_text()
    assert "argon2" not in text and token not in text


async def test_kill_switch_ends_a_running_impersonation(make_gateway, upstream) -> None:
    """Ending all of a CSR's sessions ends the impersonation; nothing more as the buyer."""
    csr = await make_gateway()
    await login(csr, "csr-carol")
    assert await impersonate(csr, "buyer-alice") == 303
    base = str(csr.make_url("")).rstrip("/")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as admin:
        await admin.post(f"{base}/_gateway/login", data={"username": "admin-ann",
                                                          "password": "demo-pass-1"})
        token = (await (await admin.get(f"{base}/_gateway/whoami")).json())["csrf_token"]
        resp = await admin.delete(f"{base}{API}/users/csr-carol/sessions",
                                  headers={"X-CSRF-Token": token})
        assert resp.status == 200 and len((await resp.json())["ended"]) == 1
    before = len(upstream.seen)
    resp = await csr.get("/cart", headers={"Accept": "application/json"})
    assert resp.status == 401
    assert len(upstream.seen) == before
    ends = [r for r in audit_lines(csr) if r["event"] == "impersonation_end"]
    assert ends and ends[-1]["reason"] == "kill_switch" and ends[-1]["csr"] == "csr-carol"


async def test_revoking_assignment_ends_impersonation_next_request(gateway, upstream) -> None:
    """Unassigning a CSR from the buyer's company ends the impersonation at once."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    assert (await gateway.get("/cart")).status == 200
    gw = gw_of(gateway)
    from gateway.directory.service import DirectoryService

    await DirectoryService(gw.directory).unassign("acme", "csr-carol")
    before = len(upstream.seen)
    resp = await gateway.get("/cart")
    assert resp.status == 403
    assert "Your session as the buyer has ended" in await resp.text()
    assert len(upstream.seen) == before
    me = await whoami(gateway)
    assert me["acting_as"] is None
    end = [r for r in audit_lines(gateway) if r["event"] == "impersonation_end"][-1]
    assert end["reason"] == "not_assigned"


async def test_admin_pages_assign_csrs_and_activation(gateway) -> None:
    """Admin pages: add a CSR, Select All / Assign Selected CSRs, then the activation link
    sets a password and the new CSR logs in."""
    token = await _as(gateway, "admin-ann")
    page = await gateway.post("/_gateway/admin/users", data={
        "csrf_token": token, "username": "csr-erin", "email": "erin@example.com",
        "group": "CSR", "kind": "staff", "first_name": "Erin"})
    text = await page.text()
    assert page.status == 200, text
    link = re.search(r'value="(http://[^"]+/_gateway/activate\?token=[^"]+)"', text).group(1)
    page = await gateway.post("/_gateway/admin/assign-csrs", data={
        "csrf_token": token, "company": "initech", "do": "select_all"})
    text = await page.text()
    assert text.count("checked") == 3  # csr-carol, csr-dave, csr-erin
    page = await gateway.post("/_gateway/admin/assign-csrs", data=[
        ("csrf_token", token), ("company", "initech"), ("do", "assign"),
        ("csr", "csr-erin"), ("csr", "csr-dave")])
    assert "Assigned 2 CSRs to Initech" in await page.text()
    companies = await (await gateway.get("/_gateway/admin/users/csr-erin/companies")).text()
    assert "Initech" in companies
    path = link.split("127.0.0.1", 1)[1].split("/", 1)[1]
    form = await gateway.get("/" + path)
    assert "csr-erin" in await form.text()
    done = await gateway.post("/" + path, data={"password": "erins-password",
                                                "repeat_password": "erins-password"},
                              allow_redirects=False)
    assert done.status == 303
    await gateway.post("/_gateway/logout")
    await login(gateway, "csr-erin", "erins-password")
    assert await impersonate(gateway, "buyer-ivan") == 303


@pytest.mark.parametrize("path", ["/_gateway/admin/", "/_gateway/admin/users",
                                  "/_gateway/admin/groups", "/_gateway/admin/assign-csrs",
                                  "/_gateway/admin/companies", "/_gateway/admin/sessions",
                                  "/_gateway/admin/transactions",
                                  "/_gateway/admin/users/csr-carol"])
async def test_admin_pages_render_for_admins_only(make_gateway, path) -> None:
    """Every admin page renders for admin-ann and is 403 for a CSR."""
    admin = await make_gateway()
    await login(admin, "admin-ann")
    resp = await admin.get(path)
    assert resp.status == 200, await resp.text()
    assert "<form" in await resp.text() or "Transaction Log" in await resp.text()
    csr = await make_gateway()
    await login(csr, "csr-carol")
    assert (await csr.get(path)).status == 403


async def test_r4_warning_for_csr_who_is_admin(gateway) -> None:
    """the admin UI warns about a CSR who is also an Administrator."""
    token = await _as(gateway, "admin-ann")
    await gateway.patch(f"{API}/users/csr-dave", json={"groups": ["CSR", "Administrator"]},
                        headers={"X-CSRF-Token": token})
    text = await (await gateway.get("/_gateway/admin/users")).text()
    assert "CSR and Administrator" in text


async def test_account_page_is_the_csrs_own_while_impersonating(gateway) -> None:
    """/_gateway/account stays the CSR's own; the password change is the CSR's."""
    token = await _as(gateway, "carol-as-alice")
    text = await (await gateway.get("/_gateway/account")).text()
    assert "csr-carol" in text and "not Alice Anders" in text
    resp = await gateway.post("/_gateway/account", data={
        "csrf_token": token, "current_password": "demo-pass-1",
        "new_password": "carols-new-password", "repeat_password": "carols-new-password"})
    assert "Your password was changed." in await resp.text()
    gw = gw_of(gateway)
    assert await gw.directory.verify_password("csr-carol", "carols-new-password")
    assert await gw.directory.verify_password("buyer-alice", "demo-pass-1")
