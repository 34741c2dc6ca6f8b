"""Staff sign-in through a real OpenID provider (oidc-provider on loopback)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
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


async def test_an_acr_named_as_mfa_is_asked_for_and_accepted(sso: tuple[TestClient, Idp],
                                                             http: aiohttp.ClientSession,
                                                             upstream: Any) -> None:
    """With `mfa_acr_values`, a start needing MFA asks the provider for that `acr`
    (`acr_values`), and an ID token carrying it is the proof: on the start's audit line."""
    from gateway.directory.service import DirectoryService

    client, idp = sso
    gw = gw_of(client)
    assert gw.oidc is not None
    gw.oidc.settings = dataclasses.replace(gw.oidc.settings, mfa_acr_values=("gold",))
    await DirectoryService(gw.directory).update_user("buyer-ivan", {"tags": ["mfa_required"]})
    assert await finish(http, await sign_in(http, base(client), "csr-dave")) == 303
    resp = await start_as(http, client, "buyer-ivan", "T-ACR")
    location = resp.headers["Location"]
    assert resp.status == 303 and "acr_values=gold" in location and "prompt=login" in location
    await idp.control("user", id="csr-dave", changes={"acr": "gold"})
    assert await finish(http, await sign_in(http, base(client), "csr-dave",
                                            start=location)) == 303
    me = (await whoami(http, client))[1]
    assert me["acting_as"] == "buyer-ivan" and me["impersonation"]["reason"] == "T-ACR"
    start = events(client, "impersonation_start")[-1]
    assert start["acr"] == "gold" and start["amr"] == ["pwd"]
    async with http.get(base(client) + "/reports") as resp:
        assert resp.status == 200
    token = upstream.last.header("X-Gateway-Assertion") or ""
    act = jwt.decode(token, options={"verify_signature": False})["act"]
    assert (act["sub"], act["acr"], act["amr"]) == ("csr-dave", "gold", ["pwd"])
    line = [r for r in audit_lines(client) if r["event"] == "request"][-1]
    assert line["acr"] == "gold" and line["csr"] == "csr-dave"


async def test_an_acr_not_named_is_no_proof(sso: tuple[TestClient, Idp],
                                            http: aiohttp.ClientSession) -> None:
    client, idp = sso
    from gateway.directory.service import DirectoryService

    await DirectoryService(gw_of(client).directory).update_user("buyer-ivan",
                                                               {"tags": ["mfa_required"]})
    await idp.control("user", id="csr-dave", changes={"acr": "gold"})
    assert await finish(http, await sign_in(http, base(client), "csr-dave")) == 303
    resp = await start_as(http, client, "buyer-ivan", "T-ACR")
    assert "acr_values" not in resp.headers["Location"]
    assert await finish(http, await sign_in(http, base(client), "csr-dave",
                                            start=resp.headers["Location"])) == 403
    assert (await whoami(http, client))[1]["acting_as"] is None


@pytest.mark.parametrize(("trusted", "expected"), [
    (True, "https://gw.example.com/_gateway/oidc/callback"),
    (False, None),
], ids=["from-a-trusted-proxy", "from-anyone-else"])
async def test_redirect_uri_without_public_url(sso: tuple[TestClient, Idp],
                                               http: aiohttp.ClientSession, trusted: bool,
                                               expected: str | None) -> None:
    """No public_url: the redirect URI is the forwarded scheme and host when a trusted
    proxy sent them, else the gateway's own; a client cannot point it elsewhere."""
    import ipaddress
    from urllib.parse import parse_qs, urlsplit

    client, _idp = sso
    gw = gw_of(client)
    networks = (ipaddress.ip_network("127.0.0.0/8"),) if trusted else ()
    gw.settings = dataclasses.replace(gw.settings, public_url=None, trusted_proxies=networks)
    async with http.get(base(client) + "/_gateway/oidc/start?next=/", allow_redirects=False,
                        headers={"X-Forwarded-Proto": "https",
                                 "X-Forwarded-Host": "gw.example.com"}) as resp:
        assert resp.status == 303
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["redirect_uri"] == [expected or base(client) + "/_gateway/oidc/callback"]


async def test_two_workers_refresh_one_session_once_at_a_time(
        tmp_path: Path, make_gateway: GatewayFactory, http: aiohttp.ClientSession,
        redis_prefix: str) -> None:
    """Two gateways sharing Redis sessions (two workers or replicas) asked at the same
    moment to refresh one session's tokens take turns: the provider rotates refresh tokens
    and revokes the grant when a used one comes back, so a second refresh with the old
    token would end a healthy session."""
    import asyncio

    ensure_installed()
    idp = Idp(tmp_path)
    oidc = OidcSettings(name="Acme SSO", issuer=idp.issuer, client_id=CLIENT_ID,
                        client_secret=CLIENT_SECRET, groups=GROUPS, refresh_seconds=3600)
    shared = {"store": "redis", "redis_prefix": redis_prefix}
    one = await make_gateway(login={"oidc": oidc}, sessions=shared)
    two = await make_gateway(login={"oidc": oidc}, sessions=shared)
    idp.start(base(one))
    try:
        assert await finish(http, await sign_in(http, base(one), "csr-carol")) == 303
        for client in (one, two):
            gw = gw_of(client)
            assert gw.oidc is not None
            gw.oidc.settings = dataclasses.replace(gw.oidc.settings, refresh_seconds=0)
        for _round in range(3):
            answers = await asyncio.gather(*(whoami(http, c) for c in (one, two) * 3))
            assert [status for status, _me in answers] == [200] * 6
            assert all(me["user"] == "csr-carol" for _status, me in answers)
        assert (await whoami(http, two))[0] == 200
        ended = [r for c in (one, two) for r in audit_lines(c)
                 if r["event"] in ("logout", "session_expired", "impersonation_expired")]
        assert ended == []
    finally:
        idp.stop()
