"""Staff sign-in through a real OpenID provider (oidc-provider on loopback)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.core.settings import OidcSettings
from tests.support.browser import browser, shot  # noqa: F401  (fixture)
from tests.support.gateway import GatewayFactory, audit_lines, gw_of
from tests.support.idp import CLIENT_ID, CLIENT_SECRET, Idp, ensure_installed, sign_in

GROUPS = {"cs-agents": "CSR", "it-admins": "Administrator"}


@pytest.fixture
async def sso(tmp_path: Path, make_gateway: GatewayFactory
              ) -> AsyncIterator[tuple[TestClient, Idp]]:
    ensure_installed()
    idp = Idp(tmp_path)
    oidc = OidcSettings(name="Acme SSO", issuer=idp.issuer, client_id=CLIENT_ID,
                        client_secret=CLIENT_SECRET, groups=GROUPS, refresh_seconds=3600)
    client = await make_gateway(login={"oidc": oidc})
    idp.start(str(client.make_url("")).rstrip("/"))
    yield client, idp
    idp.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def base(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


async def whoami(http: aiohttp.ClientSession, client: TestClient) -> tuple[int, Any]:
    async with http.get(base(client) + "/_gateway/whoami",
                        headers={"Accept": "application/json"}) as resp:
        return resp.status, (await resp.json() if resp.status == 200 else None)


async def finish(http: aiohttp.ClientSession, callback: str) -> int:
    async with http.get(callback, allow_redirects=False) as resp:
        return resp.status


def events(client: TestClient, event: str) -> list[dict[str, Any]]:
    return [r for r in audit_lines(client) if r["event"] == event]


async def test_login_through_provider(sso: tuple[TestClient, Idp],
                                      http: aiohttp.ClientSession) -> None:
    """A CSR signs in at the provider and is the gateway's csr-carol, audited as oidc."""
    client, _idp = sso
    assert await finish(http, await sign_in(http, base(client), "csr-carol")) == 303
    status, me = await whoami(http, client)
    assert status == 200 and me["user"] == "csr-carol" and "CSR" in me["groups"]
    login = events(client, "login")[-1]
    assert login["auth_method"] == "oidc" and login["amr"] == ["pwd", "otp"]
    assert abs(login["auth_time"] - time.time()) < 120



@pytest.mark.parametrize(("tamper", "reason"), [
    ({"claims": {"iss": "http://127.0.0.1:1/"}}, "oidc_token_invalid"),
    ({"claims": {"aud": "another-client"}}, "oidc_token_invalid"),
    ({"claims": {"exp": 1_000_000_000}}, "oidc_token_expired"),
    ({"claims": {"nonce": "not-the-one-sent"}}, "oidc_nonce_mismatch"),
    ({"foreign": True}, "oidc_token_invalid"),
    ({"foreign": True, "kid": "rogue-key"}, "oidc_token_invalid"),
], ids=["issuer", "audience", "expired", "nonce", "signature", "unknown-kid"])
async def test_bad_id_token_refused(sso: tuple[TestClient, Idp], http: aiohttp.ClientSession,
                                    tamper: dict[str, Any], reason: str) -> None:
    """An ID token with the wrong issuer, audience, expiry, nonce or signature is refused."""
    client, idp = sso
    callback = await sign_in(http, base(client), "csr-carol")
    await idp.control("tamper", **tamper)
    assert await finish(http, callback) == 401
    assert (await whoami(http, client))[0] == 401
    assert events(client, "login_failed")[-1]["reason"] == reason
    assert not events(client, "login")


async def test_state_mismatch_refused(sso: tuple[TestClient, Idp],
                                      http: aiohttp.ClientSession) -> None:
    """A callback whose state is not the one this browser started is refused."""
    client, _idp = sso
    callback = await sign_in(http, base(client), "csr-carol")
    forged = callback.replace("state=", "state=x")
    assert await finish(http, forged) == 401
    assert events(client, "login_failed")[-1]["reason"] == "oidc_state_mismatch"


async def test_replayed_callback_refused(sso: tuple[TestClient, Idp],
                                         http: aiohttp.ClientSession) -> None:
    """The same callback (and flow cookie) a second time is refused as a replay."""
    client, _idp = sso
    callback = await sign_in(http, base(client), "csr-carol")
    flow = next(c for c in http.cookie_jar if c.key == "csrgw_oidc").value
    assert await finish(http, callback) == 303
    async with aiohttp.ClientSession() as attacker, attacker.get(
            callback, headers={"Cookie": f"csrgw_oidc={flow}"}, allow_redirects=False) as resp:
        assert resp.status == 401
    assert events(client, "login_failed")[-1]["reason"] == "oidc_replayed"


@pytest.mark.parametrize(("user", "reason"), [
    ("new-nina", "oidc_unknown_user"),
    ("stranger-sue", "oidc_group_unmapped"),
], ids=["not-in-directory", "no-mapped-group"])
async def test_unknown_or_unmapped_refused(sso: tuple[TestClient, Idp],
                                           http: aiohttp.ClientSession, user: str,
                                           reason: str) -> None:
    """A user the directory lacks (provision: existing) or with no mapped group is refused."""
    client, _idp = sso
    assert await finish(http, await sign_in(http, base(client), user)) == 401
    assert events(client, "login_failed")[-1]["reason"] == reason


async def test_groups_follow_the_provider_at_refresh(sso: tuple[TestClient, Idp],
                                                     http: aiohttp.ClientSession) -> None:
    """Groups are re-read at refresh: a new IdP group maps in, leaving cs-agents ends it."""
    client, idp = sso
    assert await finish(http, await sign_in(http, base(client), "csr-carol")) == 303
    oidc = gw_of(client).oidc
    assert oidc is not None
    oidc.settings = dataclasses.replace(oidc.settings, refresh_seconds=0)
    await idp.control("user", id="csr-carol", changes={"groups": ["cs-agents", "it-admins"]})
    status, me = await whoami(http, client)
    assert status == 200 and {"CSR", "Administrator"} <= set(me["groups"])
    await idp.control("user", id="csr-carol", changes={"groups": ["staff"]})
    assert (await whoami(http, client))[0] == 401
    assert events(client, "session_expired")[-1]["reason"] == "oidc_group_unmapped"
    assert "CSR" not in gw_of(client).directory.snapshot.users["csr-carol"].groups


async def test_key_rotation_at_the_provider(sso: tuple[TestClient, Idp],
                                            http: aiohttp.ClientSession) -> None:
    """After the provider signs with a new key, the next login fetches its keys again."""
    client, idp = sso
    assert await finish(http, await sign_in(http, base(client), "csr-carol")) == 303
    idp.restart(rotate=True)
    oidc = gw_of(client).oidc
    assert oidc is not None
    oidc.refetch_every = 0  # the bound on refetching is not what this test is about
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        assert await finish(other, await sign_in(other, base(client), "csr-dave")) == 303
        assert (await whoami(other, client))[1]["user"] == "csr-dave"


async def test_backchannel_logout_ends_impersonation(sso: tuple[TestClient, Idp],
                                                     http: aiohttp.ClientSession) -> None:
    """The provider's back-channel logout ends the gateway session and its impersonation."""
    client, idp = sso
    assert await finish(http, await sign_in(http, base(client), "csr-carol")) == 303
    token = (await whoami(http, client))[1]["csrf_token"]
    async with http.post(base(client) + "/_gateway/impersonate", data={
            "buyer": "buyer-alice", "reason": "TICKET-9", "csrf_token": token},
            allow_redirects=False) as resp:
        assert resp.status == 303
    session = (await gw_of(client).sessions.all())[0]
    assert session.idp is not None and session.impersonation is not None
    await idp.control("backchannel", sub=session.idp.sub, sid=session.idp.sid)
    assert (await whoami(http, client))[0] == 401
    ended = events(client, "impersonation_end")[-1]
    assert ended["reason"] == "idp_backchannel_logout" and ended["csr"] == "csr-carol"
    start = events(client, "impersonation_start")[-1]
    assert start["auth_method"] == "oidc" and start["amr"] == ["pwd", "otp"]


async def start_as(http: aiohttp.ClientSession, client: TestClient, buyer: str,
                   reason: str) -> aiohttp.ClientResponse:
    token = (await whoami(http, client))[1]["csrf_token"]
    async with http.post(base(client) + "/_gateway/impersonate", data={
            "buyer": buyer, "reason": reason, "csrf_token": token},
            allow_redirects=False) as resp:
        await resp.read()
        return resp


async def test_step_up_at_the_provider(sso: tuple[TestClient, Idp],
                                       http: aiohttp.ClientSession) -> None:
    """A stale auth_time sends the CSR to the provider (prompt=login); the start goes on
    afterwards with the reason typed before."""
    client, idp = sso
    await idp.control("user", id="csr-carol", changes={"auth_age": 3600})
    assert await finish(http, await sign_in(http, base(client), "csr-carol")) == 303
    resp = await start_as(http, client, "buyer-alice", "TICKET-77 refund")
    assert resp.status == 303 and "prompt=login" in resp.headers["Location"]
    assert (await whoami(http, client))[1]["acting_as"] is None
    await idp.control("user", id="csr-carol", changes={"auth_age": 0})
    assert await finish(http, await sign_in(http, base(client), "csr-carol",
                                            start=resp.headers["Location"])) == 303
    me = (await whoami(http, client))[1]
    assert me["acting_as"] == "buyer-alice"
    assert me["impersonation"]["reason"] == "TICKET-77 refund"
    start = events(client, "impersonation_start")[-1]
    assert abs(start["auth_time"] - time.time()) < 120 and start["amr"] == ["pwd", "otp"]


async def test_step_up_refuses_a_stale_answer(sso: tuple[TestClient, Idp],
                                              http: aiohttp.ClientSession) -> None:
    """A provider that answers the step-up without a fresh login starts nothing."""
    client, idp = sso
    await idp.control("user", id="csr-carol", changes={"auth_age": 3600})
    assert await finish(http, await sign_in(http, base(client), "csr-carol")) == 303
    resp = await start_as(http, client, "buyer-alice", "TICKET-78")
    assert await finish(http, await sign_in(http, base(client), "csr-carol",
                                            start=resp.headers["Location"])) == 403
    assert (await whoami(http, client))[1]["acting_as"] is None
    assert not events(client, "impersonation_start")


@pytest.mark.browser
async def test_login_in_a_real_browser(sso: tuple[TestClient, Idp], browser: Any  # noqa: F811
                                       ) -> None:
    """Chromium: the login page's button, the provider's own form, back as csr-carol."""
    client, _idp = sso
    page = await (await browser.new_context()).new_page()
    await page.goto(base(client) + "/_gateway/login?next=/_gateway/whoami")
    await page.get_by_role("link", name="Sign in with Acme SSO").click()
    await page.wait_for_selector("#login")
    assert page.url.startswith(_idp.issuer)
    await page.fill("#login", "csr-carol")
    await page.fill("#password", "idp-pass-1")
    await page.click("#submit")
    await page.wait_for_url(base(client) + "/_gateway/whoami")
    me = json.loads(await page.inner_text("body"))
    assert me["user"] == "csr-carol" and "CSR" in me["groups"]
    await shot(page, "oidc-login")


@pytest.mark.parametrize(("user", "buyer", "status", "acting"), [
    ("csr-carol", "buyer-alice", 303, "buyer-alice"),
    ("csr-dave", "buyer-ivan", 403, None),
], ids=["idp-amr-has-otp", "password-only"])
async def test_policy_requires_mfa(sso: tuple[TestClient, Idp], http: aiohttp.ClientSession,
                                   user: str, buyer: str, status: int,
                                   acting: str | None) -> None:
    """requires_mfa(actor, buyer) holds: an IdP amr with a second factor passes, a password
    alone is refused as mfa_required even after signing in again."""
    from gateway.directory.service import DirectoryService

    client, _idp = sso
    await DirectoryService(gw_of(client).directory).update_user(buyer,
                                                               {"tags": ["mfa_required"]})
    assert await finish(http, await sign_in(http, base(client), user)) == 303
    resp = await start_as(http, client, buyer, "T-MFA")
    if resp.status == 303 and "prompt=login" in resp.headers["Location"]:
        resp_status = await finish(http, await sign_in(http, base(client), user,
                                                       start=resp.headers["Location"]))
    else:
        resp_status = resp.status
    assert resp_status == status
    assert (await whoami(http, client))[1]["acting_as"] == acting
