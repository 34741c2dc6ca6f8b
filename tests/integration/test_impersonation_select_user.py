"""The CSR's way in and out: Select User, search, paging, start, Logout Buyer."""

from __future__ import annotations

import time

import pytest

from gateway.directory.models import MembershipRow, UserRow
from tests.support.gateway import (
    audit_lines,
    change_rows,
    gw_of,
    impersonate,
    login,
    set_company,
    set_user,
    unassign,
    whoami,
)


@pytest.mark.parametrize(("query", "expected"), [
    ("q=alice", ["buyer-alice"]), ("q=ANDERS", ["buyer-alice"]),
    ("q=GLOBEX-0001", ["buyer-bob"]), ("q=bob%40globex", ["buyer-bob"]),
    ("q=acme-p", ["prospect-pat"]), ("company=acme", ["buyer-alice", "prospect-pat"]),
    ("company=acme&q=bob", []), ("", ["buyer-alice", "buyer-bob", "prospect-pat"]),
    ("q=ivan", []), ("company=initech", []), ("q=carol", []),
], ids=["name", "name-case", "account", "email", "prospect-account", "company",
        "company-and-search", "all-mine", "other-csrs-buyer", "unassigned-company", "staff"])
async def test_buyer_search_stays_in_assigned_companies(gateway, query, expected) -> None:
    """search by name, email or account number, only across the CSR's companies."""
    await login(gateway, "csr-carol")
    data = await (await gateway.get(f"/_gateway/api/buyers?{query}")).json()
    assert sorted(b["username"] for b in data["buyers"]) == expected
    assert [c["id"] for c in data["companies"]] == ["acme", "globex"]


@pytest.mark.parametrize(("changes", "selectable"), [
    ((), {"buyer-alice": None, "prospect-pat": "not_customer"}),
    ((set_user("buyer-alice", active=False),),
     {"buyer-alice": "buyer_inactive", "prospect-pat": "not_customer"}),
    ((set_company("acme", no_impersonation=True),),
     {"buyer-alice": "company_no_impersonation", "prospect-pat": "not_customer"}),
], ids=["customer-and-prospect", "inactive-buyer", "flagged-company"])
async def test_only_buyers_the_policy_allows_are_selectable(make_gateway, changes,
                                                             selectable) -> None:
    """Prospects are shown but not selectable; so is anyone the policy would refuse,
    with the reason, on the page and in the API."""
    client = await make_gateway()
    await change_rows(client, *changes)
    await login(client, "csr-carol")
    data = await (await client.get("/_gateway/api/buyers?company=acme")).json()
    found = {b["username"]: b["not_selectable_reason"] for b in data["buyers"]}
    assert found == selectable
    assert all(b["selectable"] == (b["not_selectable_reason"] is None) for b in data["buyers"])
    html = await (await client.get("/_gateway/select-user?company=acme")).text()
    assert "Pat Prospect" in html and "ACME-P-0002" in html and "pat@acme.example" in html
    assert 'value="prospect-pat"' not in html  # no button that could start it
    assert ('value="buyer-alice"' in html) == (selectable["buyer-alice"] is None)


async def test_select_user_page_for_a_csr_without_companies(gateway) -> None:
    """A CSR with no assignment is told so, and sees no one."""
    await login(gateway, "csr-dave")
    await change_rows(gateway, unassign("csr-dave", "initech"))
    html = await (await gateway.get("/_gateway/select-user")).text()
    assert "No companies are assigned to you" in html


@pytest.mark.parametrize("user", ["buyer-alice", "admin-ann", "sales-sam"])
async def test_select_user_is_a_csr_page(gateway, user) -> None:
    """the page and its API are granted per group; others are refused."""
    await login(gateway, user)
    assert (await gateway.get("/_gateway/select-user")).status == 403
    assert (await gateway.get("/_gateway/api/buyers")).status == 403


async def test_select_user_pages_thousands_of_buyers(gateway) -> None:
    """A company with thousands of buyers is paged, 50 a page, fast enough to click through."""
    directory = gw_of(gateway).directory
    async with directory.sessions.begin() as db:
        for i in range(3000):
            row = UserRow(username=f"bulk-{i:05d}", email=f"b{i}@acme.example",
                          first_name="Bulk", last_name=f"{i:05d}", company_id="acme",
                          kind="customer", account_number=f"ACME-{i + 1000:05d}")
            row.groups = [MembershipRow(group="Buyer")]
            db.add(row)
        await directory.bump(db)
    await directory.reload()
    await login(gateway, "csr-carol")
    started = time.perf_counter()
    data = await (await gateway.get("/_gateway/api/buyers?company=acme&page=3")).json()
    elapsed = time.perf_counter() - started
    assert data["total"] == 3002 and data["pages"] == 61 and len(data["buyers"]) == 50
    assert elapsed < 2.0, f"a page of buyers took {elapsed:.2f}s"
    last = await (await gateway.get("/_gateway/api/buyers?company=acme&page=999")).json()
    assert last["page"] == 61 and len(last["buyers"]) == 2
    html = await (await gateway.get("/_gateway/select-user?company=acme&page=61")).text()
    assert "page 61 of 61" in html and "Previous" in html
    found = await (await gateway.get("/_gateway/api/buyers?q=ACME-02345")).json()
    assert [b["username"] for b in found["buyers"]] == ["bulk-01345"]


async def test_start_lands_on_the_storefront_as_the_buyer(gateway, upstream) -> None:
    """Clicking a buyer: 303 to /, whoami says who acts for whom, the shop sees the buyer."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice", "TICKET-1") == 303
    me = await whoami(gateway)
    assert (me["user"], me["acting_as"]) == ("csr-carol", "buyer-alice")
    resp = await gateway.get("/")
    assert resp.status == 200 and upstream.last.header("X-Remote-User") == "buyer-alice"
    start = [r for r in audit_lines(gateway) if r["event"] == "impersonation_start"][-1]
    assert (start["actor"], start["user"], start["csr"], start["company"]) == (
        "csr-carol", "buyer-alice", "csr-carol", "acme")
    assert start["impersonation_reason"] == "TICKET-1" and start["impersonation_id"]


@pytest.mark.parametrize(("came_from", "searched", "expected"), [
    ("/reports", False, "/reports"),
    ("/reports", True, "/reports"),
    (None, False, "/_gateway/select-user"),
    ("/_gateway/select-user?company=acme", False, "/_gateway/select-user?company=acme"),
    ("/_gateway/logout", False, "/_gateway/select-user"),
], ids=["shop-page", "after-a-search", "typed-in", "select-user-itself", "gateway-action"])
async def test_logout_buyer_returns_to_where_the_csr_was(gateway, came_from, searched,
                                                         expected) -> None:
    """Logout Buyer restores the CSR and goes back to the page they came from."""
    await login(gateway, "csr-carol")
    headers = {"Referer": str(gateway.make_url(came_from))} if came_from else {}
    html = await (await gateway.get("/_gateway/select-user", headers=headers)).text()
    if searched:  # a search on the page keeps where the CSR first came from
        assert 'name="next" value="/reports"' in html
        html = await (await gateway.get(
            "/_gateway/select-user?q=alice&next=%2Freports",
            headers={"Referer": str(gateway.make_url("/_gateway/select-user"))})).text()
    token = (await whoami(gateway))["csrf_token"]
    fields = {"buyer": "buyer-alice", "csrf_token": token}
    if 'name="return_to"' in html:
        fields["return_to"] = html.split('name="return_to" value="')[1].split('"')[0] \
            .replace("&amp;", "&")
    await gateway.post("/_gateway/impersonate", data=fields, headers=headers,
                       allow_redirects=False)
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                              allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == expected
    me = await whoami(gateway)
    assert (me["user"], me["acting_as"]) == ("csr-carol", None)
    stop = [r for r in audit_lines(gateway) if r["event"] == "impersonation_stop"][-1]
    assert (stop["csr"], stop["user"], stop["reason"]) == ("csr-carol", "buyer-alice", "ok")


async def test_stop_without_impersonation_is_harmless(gateway) -> None:
    """Logout Buyer when not acting for anyone changes nothing and writes no stop event."""
    await login(gateway, "csr-carol")
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                              allow_redirects=False)
    assert resp.status == 303
    assert not [r for r in audit_lines(gateway) if r["event"] == "impersonation_stop"]


async def test_log_in_as_buyer_links(gateway, upstream) -> None:
    """The link is on gateway pages and shop pages for a CSR, and in the banner area while
    acting; never for a buyer."""
    await login(gateway, "csr-carol")
    assert "Log in as buyer" in await (await gateway.get("/_gateway/account")).text()
    assert "Log in as buyer" in await (await gateway.get("/")).text()
    await impersonate(gateway, "buyer-alice")
    page = await (await gateway.get("/")).text()
    assert "Log in as another buyer" in page and "Logout Buyer" in page
    html = await (await gateway.get("/_gateway/select-user")).text()
    assert "Choose another buyer below to switch in one step" in html
    assert 'action="/_gateway/impersonate/switch"' in html
    assert 'value="buyer-bob">Switch to Bob Baker</button>' in html


@pytest.mark.parametrize("target", [
    "//evil.example/x", "https://evil.example/", "/\\evil.example", "/_gateway/logout",
    "/_gateway/impersonate/stop", "javascript:alert(1)",
], ids=["protocol-relative", "absolute", "backslash", "logout", "stop", "javascript"])
async def test_return_to_is_never_another_site_or_an_action(gateway, target) -> None:
    """`next` and `return_to` only ever send the CSR back to a local page."""
    await login(gateway, "csr-carol")
    html = await (await gateway.get("/_gateway/select-user", params={"next": target})).text()
    assert 'name="return_to"' not in html
    token = (await whoami(gateway))["csrf_token"]
    await gateway.post("/_gateway/impersonate", data={
        "buyer": "buyer-alice", "csrf_token": token, "return_to": target},
        allow_redirects=False)
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                              allow_redirects=False)
    assert resp.headers["Location"] == "/_gateway/select-user"
