"""Bounded and re-checked: every request re-asks; a lapsed impersonation ends, audited once,
with a clear page, and nothing is forwarded as the buyer."""

from __future__ import annotations

import re
import time

import pytest

from gateway.runtime import impersonation
from gateway.runtime.context import RequestContext
from tests.support.gateway import (
    acting,
    age,
    change_rows,
    drop_group,
    events,
    gw_of,
    only_session,
    remove_user,
    set_company,
    set_user,
    unassign,
    whoami,
)


@pytest.mark.parametrize(("config", "changes", "reason", "says"), [
    ({}, (unassign("csr-carol", "acme"),), "not_assigned", "no longer assigned to you"),
    ({}, (set_user("buyer-alice", active=False),), "buyer_inactive", "deactivated"),
    ({}, (remove_user("buyer-alice"),), "buyer_removed", "no longer exists"),
    ({}, (drop_group("csr-carol", "CSR"),), "not_impersonator", "no longer allowed"),
    ({}, (set_company("acme", no_impersonation=True),), "company_no_impersonation",
     "no longer allows impersonation"),
    ({"require_consent": True}, (set_user("buyer-alice", allow_assistance=False),),
     "no_consent", "no longer allows assistance"),
], ids=["assignment-revoked", "buyer-deactivated", "buyer-deleted", "csr-left-group",
        "company-flagged", "consent-withdrawn"])
async def test_revocation_ends_impersonation_at_the_next_request(
        make_gateway, upstream, config, changes, reason, says) -> None:
    """A change in the directory mid-session ends the impersonation at the next request:
    `impersonation_end` with why, a page saying so, nothing forwarded, the CSR is themself."""
    client = await make_gateway(impersonation=config)
    await change_rows(client, set_user("buyer-alice", allow_assistance=True))
    await acting(client)
    before = len(upstream.seen)
    await change_rows(client, *changes)
    resp = await client.get("/cart")
    page = await resp.text()
    assert resp.status == 403 and says in page and "You are yourself again" in page
    assert "Logged In As" not in page
    assert len(upstream.seen) == before
    assert any(c.startswith("sessionid=") and "Max-Age=0" in c
               for c in resp.headers.getall("Set-Cookie"))
    (end,) = events(client, "impersonation_end")
    assert (end["reason"], end["csr"], end["user"], end["decision"]) == (
        reason, "csr-carol", "buyer-alice", "deny")
    assert end["impersonation_reason"] == "TICKET-3"
    refused = [r for r in events(client, "request") if r["path"] == "/cart"][-1]
    assert (refused["decision"], refused["reason"], refused["csr"], refused["user"]) == (
        "deny", reason, "csr-carol", "buyer-alice")
    me = await whoami(client)
    assert (me["user"], me["acting_as"]) == ("csr-carol", None)


@pytest.mark.parametrize(("max_minutes", "ago", "ends"), [
    (60, 3601, True), (60, 3500, False), (5, 301, True), (5, 290, False),
], ids=["60-over", "60-within", "5-over", "5-within"])
async def test_maximum_duration(make_gateway, upstream, max_minutes, ago, ends) -> None:
    """impersonation.max_minutes bounds an impersonation however busy the CSR is."""
    client = await make_gateway(impersonation={"max_minutes": max_minutes})
    await acting(client)
    await age(client, started=ago)
    before = len(upstream.seen)
    resp = await client.get("/cart")
    assert resp.status == (403 if ends else 200)
    assert len(upstream.seen) == before + (0 if ends else 1)
    ended = events(client, "impersonation_end")
    assert [e["reason"] for e in ended] == (["impersonation_expired"] if ends else [])
    if ends:
        assert "time limit" in await resp.text()


async def test_banner_counts_down(make_gateway, upstream) -> None:
    """The banner shows the minutes left of impersonation.max_minutes."""
    client = await make_gateway(impersonation={"max_minutes": 30})
    await acting(client)
    assert re.search(r"(30|29) min left", await (await client.get("/cart")).text())
    await age(client, started=29 * 60 + 30)
    assert "less than a minute left" in await (await client.get("/cart")).text()


async def test_idle_timeout_still_applies(gateway, upstream) -> None:
    """The CSR's own inactivity timeout ends the session, impersonating or not."""
    await acting(gateway)
    await age(gateway, idle=61 * 60)
    before = len(upstream.seen)
    resp = await gateway.get("/cart", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/_gateway/login")
    assert len(upstream.seen) == before
    assert events(gateway, "session_expired")[-1]["user"] == "csr-carol"


@pytest.mark.parametrize(("started", "idle", "reason", "session_kept"), [
    (0, 61 * 60, "session_expired", False),
    (3601, 120, "impersonation_expired", True),
    (3601, 5, None, True),
    (600, 120, None, True),
], ids=["idle-expired", "over-time-and-idle", "over-time-but-in-use", "running"])
async def test_sweeper_ends_abandoned_impersonations(gateway, started, idle, reason,
                                                     session_kept) -> None:
    """A CSR who never comes back (closed tab) still gets an end line, and the customer
    a notification: the sweeper ends idle or over-time impersonations."""
    await acting(gateway)
    await age(gateway, started=started, idle=idle)
    gw = gw_of(gateway)
    assert await impersonation.sweep(gw) == (1 if reason else 0)
    assert [e["reason"] for e in events(gateway, "impersonation_end")] == \
        ([reason] if reason else [])
    assert bool(await gw.sessions.all()) is session_kept
    assert await impersonation.sweep(gw) == 0  # once only


async def test_swept_then_refused_writes_one_end(gateway, upstream) -> None:
    """The sweeper and the re-check may both find the same lapse: one `impersonation_end`."""
    await acting(gateway)
    await age(gateway, started=3601, idle=120)
    assert await impersonation.sweep(gw_of(gateway)) == 1
    before = len(upstream.seen)
    assert (await gateway.get("/cart")).status == 403
    assert len(upstream.seen) == before
    assert len(events(gateway, "impersonation_end")) == 1
    assert (await whoami(gateway))["acting_as"] is None


async def test_kill_switch_ends_another_session(gateway, upstream) -> None:
    """An admin ending a CSR's impersonation (impersonation.end from the admin's request):
    the CSR's session is gone, the admin's own session is untouched, one end line."""
    await acting(gateway)
    gw, session = gw_of(gateway), await only_session(gateway)
    admin_ctx = RequestContext(method="DELETE", client_ip="127.0.0.1")
    result = await impersonation.end(gw, admin_ctx, session, event="impersonation_end",
                                     reason="kill_switch")
    assert result is None and admin_ctx.switched_session is None and admin_ctx.session is None
    assert await gw.sessions.all() == []
    before = len(upstream.seen)
    resp = await gateway.get("/cart", allow_redirects=False)
    assert resp.status == 303 and len(upstream.seen) == before
    (end,) = events(gateway, "impersonation_end")
    assert (end["reason"], end["csr"], end["user"]) == ("kill_switch", "csr-carol",
                                                        "buyer-alice")


async def test_kill_switch_through_the_admin_api(make_gateway, upstream) -> None:
    """DELETE /_gateway/api/users/<csr>/sessions ends the impersonation for good."""
    from aiohttp import ClientSession, CookieJar

    client = await make_gateway()
    await acting(client)
    base = str(client.make_url("")).rstrip("/")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as admin:
        await admin.post(f"{base}/_gateway/login", data={"username": "admin-ann",
                                                          "password": "demo-pass-1"})
        async with admin.get(f"{base}/_gateway/whoami") as resp:
            token = (await resp.json())["csrf_token"]
        async with admin.delete(f"{base}/_gateway/api/users/csr-carol/sessions",
                                headers={"X-CSRF-Token": token}) as resp:
            assert resp.status == 200, await resp.text()
    before = len(upstream.seen)
    assert (await client.get("/cart", allow_redirects=False)).status == 303
    assert len(upstream.seen) == before
    assert [e["reason"] for e in events(client, "impersonation_end")] == ["kill_switch"]


async def test_an_end_is_written_once(gateway) -> None:
    """However many paths reach the same end, one line and one notification."""
    await acting(gateway)
    gw, session = gw_of(gateway), await only_session(gateway)
    assert session.impersonation is not None
    first = await impersonation.record_end(gw, None, session.impersonation,
                                         event="impersonation_end", reason="kill_switch")
    again = await impersonation.record_end(gw, None, session.impersonation,
                                         event="impersonation_end", reason="session_expired")
    assert (first, again) == (True, False)
    assert [e["reason"] for e in events(gateway, "impersonation_end")] == ["kill_switch"]


async def test_every_request_is_rechecked(gateway, upstream) -> None:
    """The re-check is per request, not per session: a revocation between two requests of a
    busy page lands at the very next one."""
    await acting(gateway)
    for _ in range(3):
        assert (await gateway.get("/cart")).status == 200
    await change_rows(gateway, unassign("csr-carol", "acme"))
    started = time.perf_counter()
    assert (await gateway.get("/cart")).status == 403
    assert time.perf_counter() - started < 1.0


async def test_logout_while_acting_stops_the_impersonation(gateway, upstream) -> None:
    """Logging out while acting for a buyer is a stop: audited once, the customer told."""
    await acting(gateway)
    await gateway.post("/_gateway/logout", allow_redirects=False)
    (stop,) = events(gateway, "impersonation_stop")
    assert (stop["csr"], stop["user"], stop["reason"], stop["detail"]) == (
        "csr-carol", "buyer-alice", "ok", "logout")
    assert await impersonation.sweep(gw_of(gateway)) == 0


@pytest.mark.parametrize(("change", "reason"), [
    ("idle", "session_expired"), ("deactivated", "account_inactive"),
], ids=["csr-idle", "csr-deactivated"])
async def test_a_dead_csr_session_ends_its_impersonation(gateway, upstream, change,
                                                         reason) -> None:
    """The request that finds the CSR's session expired (or the CSR deactivated) also ends
    the impersonation in it: `impersonation_end`, nothing forwarded."""
    await acting(gateway)
    if change == "idle":
        await age(gateway, idle=61 * 60)
    else:
        await change_rows(gateway, set_user("csr-carol", active=False))
    before = len(upstream.seen)
    assert (await gateway.get("/cart", allow_redirects=False)).status == 303
    assert len(upstream.seen) == before
    (end,) = events(gateway, "impersonation_end")
    assert (end["reason"], end["csr"], end["user"]) == (reason, "csr-carol", "buyer-alice")


async def test_the_app_sweeps_and_wires_the_notifier(make_gateway) -> None:
    """The running app has the sweeper task; the notifier signs and uses the shared ledger."""
    import asyncio

    from gateway.services.ledger import MemoryLedger

    client = await make_gateway(impersonation={"notify_webhook": "http://127.0.0.1:9/"})
    gw = gw_of(client)
    assert "impersonation-sweep" in {t.get_name() for t in asyncio.all_tasks()}
    assert gw.notifier is not None and gw.notifier.signer is gw.signer
    assert isinstance(gw.notifier.ledger, MemoryLedger)


@pytest.mark.parametrize(("snippet", "expected"), [
    ("impersonation: {max_minutes: 0}\n", "impersonation.max_minutes: must be at least 1"),
    ("impersonation: {notify_webhook: 'ftp://x'}\n",
     "impersonation.notify_webhook: must be an http(s) URL"),
    ("assertion: {algorithm: HS256, hs256_secret: short}\n",
     "assertion.hs256_secret: HS256 needs a secret of at least 32 bytes"),
    ("assertion: {ttl_seconds: 0}\n", "assertion.ttl_seconds: must be at least 1"),
], ids=["max-minutes", "webhook-scheme", "hs256-secret", "ttl"])
def test_impersonation_settings_are_checked_at_start(snippet, expected) -> None:
    """Values that parse but cannot work stop the start, with their key."""
    from gateway.config.load import ConfigError, settings_from_text

    good = "pages:\n  storefront: {title: Storefront}\nroutes:\n  - {path: /, page: storefront}\n"
    with pytest.raises(ConfigError) as err:
        settings_from_text(good + snippet, "<f>")
    assert expected in str(err.value)


async def test_a_request_in_flight_cannot_revive_a_killed_session(gateway) -> None:
    """A request that read the session just before the kill switch deleted it must not
    write it back when it refreshes last_seen (the impersonation would live on)."""
    from gateway.pipeline.authn import session_actor

    await acting(gateway)
    await age(gateway, idle=20)  # a last_seen refresh is due
    gw, session = gw_of(gateway), await only_session(gateway)
    admin_ctx = RequestContext(method="DELETE", client_ip="127.0.0.1")
    await impersonation.end(gw, admin_ctx, session, event="impersonation_end",
                            reason="kill_switch")
    await session_actor(gw, RequestContext(method="GET", client_ip="127.0.0.1"), session)
    assert await gw.sessions.get(session.id) is None
