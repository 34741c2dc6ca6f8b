"""Step-up for local accounts: an old password entry asks for the password again."""

from __future__ import annotations

import dataclasses

import pytest
from aiohttp.test_utils import TestClient

from tests.support.gateway import PASSWORD, audit_lines, gw_of, login, whoami


async def age_login(client: TestClient, seconds: float) -> None:
    gw = gw_of(client)
    for session in await gw.sessions.all():
        await gw.sessions.save(dataclasses.replace(session,
                                                   auth_time=session.auth_time - seconds))


async def post_start(client: TestClient, reason: str) -> tuple[int, str]:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/impersonate", data={
        "buyer": "buyer-alice", "reason": reason, "csrf_token": token}, allow_redirects=False)
    return resp.status, await resp.text()


async def reauth(client: TestClient, password: str, reason: str) -> int:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/reauth", data={
        "buyer": "buyer-alice", "reason": reason, "return_to": "/_gateway/select-user",
        "password": password, "csrf_token": token}, allow_redirects=False)
    return resp.status


async def test_recent_password_starts_at_once(gateway: TestClient) -> None:
    """A password entered within step_up_minutes starts the impersonation directly."""
    await login(gateway, "csr-carol")
    assert (await post_start(gateway, "T-1"))[0] == 303
    assert (await whoami(gateway))["acting_as"] == "buyer-alice"


@pytest.mark.parametrize(("password", "status", "acting"), [
    ("wrong-password", 401, None),
    (PASSWORD, 303, "buyer-alice"),
], ids=["wrong-password", "right-password"])
async def test_old_password_asks_again(gateway: TestClient, password: str, status: int,
                                       acting: str | None) -> None:
    """An old login shows the password form; the right password continues with the reason."""
    await login(gateway, "csr-carol")
    await age_login(gateway, 11 * 60)
    code, page = await post_start(gateway, "T-2 kept")
    assert code == 200 and 'action="/_gateway/reauth"' in page and "T-2 kept" in page
    assert (await whoami(gateway))["acting_as"] is None
    assert await reauth(gateway, password, "T-2 kept") == status
    me = await whoami(gateway)
    assert me["acting_as"] == acting
    if acting:
        assert me["impersonation"]["reason"] == "T-2 kept"
        start = [r for r in audit_lines(gateway) if r["event"] == "impersonation_start"][-1]
        assert start["auth_method"] == "password" and start["impersonation_reason"] == "T-2 kept"


async def test_zero_minutes_asks_at_every_start(make_gateway) -> None:  # type: ignore[no-untyped-def]
    """step_up_minutes: 0 asks for the password even right after logging in."""
    client = await make_gateway(impersonation={"step_up_minutes": 0})
    await login(client, "csr-carol")
    code, page = await post_start(client, "T-3")
    assert code == 200 and "Confirm it is you" in page


@pytest.mark.parametrize(("user", "features", "status"), [
    ("csr-carol", [], 403),
    ("admin-ann", ["break_glass"], 303),
], ids=["ordinary-user", "break-glass-user"])
async def test_local_passwords_off(make_gateway, user: str, features: list[str],  # type: ignore[no-untyped-def]
                                   status: int) -> None:
    """With local_passwords false only a break-glass user logs in with a password, audited."""
    from gateway.directory.service import DirectoryService

    client = await make_gateway(login={"local_passwords": False})
    if features:
        await DirectoryService(gw_of(client).directory).update_user(user, {"features": features})
    resp = await client.post("/_gateway/login", data={"username": user, "password": PASSWORD,
                                                      "next": "/"}, allow_redirects=False)
    assert resp.status == status
    last = [r for r in audit_lines(client) if r["event"] in ("login", "login_failed")][-1]
    if status == 303:
        assert last["event"] == "login" and last["break_glass"] is True
    else:
        assert last["reason"] == "local_passwords_disabled"


async def tag_mfa(client: TestClient, buyer: str) -> None:
    from gateway.directory.service import DirectoryService

    await DirectoryService(gw_of(client).directory).update_user(buyer, {"tags": ["mfa_required"]})


async def test_password_again_never_satisfies_a_second_factor(gateway: TestClient) -> None:
    """A start the policy says needs a second factor is refused (the local CSR has no
    authenticator app: mfa_not_enrolled), and a password-only POST straight to the
    re-authentication endpoint does not get around it."""
    await login(gateway, "csr-carol")
    await tag_mfa(gateway, "buyer-alice")
    code, _page = await post_start(gateway, "T-MFA")
    assert code == 403
    assert await reauth(gateway, PASSWORD, "T-MFA") == 403
    assert (await whoami(gateway))["acting_as"] is None
    denied = [r for r in audit_lines(gateway) if r["event"] == "impersonation_denied"]
    assert denied and denied[-1]["reason"] == "mfa_not_enrolled"
    assert denied[-1]["user"] == "buyer-alice" and denied[-1]["csr"] == "csr-carol"
    assert not [r for r in audit_lines(gateway) if r["event"] == "impersonation_start"]


async def switch(client: TestClient, buyer: str, reason: str) -> tuple[int, str]:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/impersonate/switch", data={
        "buyer": buyer, "reason": reason, "csrf_token": token}, allow_redirects=False)
    return resp.status, await resp.text()


async def test_a_switch_steps_up_like_a_start(gateway: TestClient) -> None:
    """Switching to another buyer is a start: an old login asks for the password first,
    the running impersonation goes on meanwhile, and after it the switch completes."""
    await login(gateway, "csr-carol")
    assert (await post_start(gateway, "T-1"))[0] == 303
    await age_login(gateway, 11 * 60)
    code, page = await switch(gateway, "buyer-bob", "T-SWITCH")
    assert code == 200 and 'action="/_gateway/reauth"' in page
    assert (await whoami(gateway))["acting_as"] == "buyer-alice"
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/reauth", data={
        "buyer": "buyer-bob", "reason": "T-SWITCH", "return_to": "/_gateway/select-user",
        "password": PASSWORD, "csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    me = await whoami(gateway)
    assert me["acting_as"] == "buyer-bob" and me["impersonation"]["reason"] == "T-SWITCH"
    events = [(r["event"], r["user"]) for r in audit_lines(gateway)
              if r["event"] in ("impersonation_start", "impersonation_stop")]
    assert events == [("impersonation_start", "buyer-alice"),
                      ("impersonation_stop", "buyer-alice"),
                      ("impersonation_start", "buyer-bob")]


async def test_a_switch_to_a_buyer_needing_mfa_keeps_the_running_one(gateway: TestClient
                                                                    ) -> None:
    await login(gateway, "csr-carol")
    assert (await post_start(gateway, "T-1"))[0] == 303
    await tag_mfa(gateway, "buyer-bob")
    assert (await switch(gateway, "buyer-bob", "T-SWITCH"))[0] == 403
    assert (await whoami(gateway))["acting_as"] == "buyer-alice"
