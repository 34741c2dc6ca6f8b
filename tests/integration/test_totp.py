"""TOTP for local accounts: enrolment, login with a code, attacks on the code, step-up."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import pyotp
import pytest
from aiohttp.test_utils import TestClient

from tests.support.gateway import PASSWORD, events, gw_of, login, whoami

JSON = {"Accept": "application/json"}


async def enrol(client: TestClient) -> tuple[str, list[str]]:
    """Sets up the authenticator app through the account page's JSON answers."""
    token = (await whoami(client))["csrf_token"]
    begun = await client.post("/_gateway/account/totp", headers=JSON,
                              json={"action": "begin", "csrf_token": token})
    assert begun.status == 200, await begun.text()
    secret = (await begun.json())["secret"]
    # the code of the step before: this step's and the next one's stay unused for the test
    done = await client.post("/_gateway/account/totp", headers=JSON, json={
        "action": "confirm", "code": code_at(secret, -1), "csrf_token": token})
    assert done.status == 200, await done.text()
    return secret, (await done.json())["recovery_codes"]


def code_at(secret: str, steps: int) -> str:
    """The code `steps` time steps from now."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


async def password_step(client: TestClient, username: str = "csr-carol") -> str:
    """The right password of an enrolled user: the second page and its pending state."""
    resp = await client.post("/_gateway/login", data={"username": username,
                                                      "password": PASSWORD, "next": "/cart"},
                             allow_redirects=False)
    assert resp.status == 200
    page = await resp.text()
    assert 'action="/_gateway/login/code"' in page
    found = re.search(r'name="pending" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def send_code(client: TestClient, pending: str, code: str) -> int:
    resp = await client.post("/_gateway/login/code", data={"pending": pending, "code": code},
                             allow_redirects=False)
    return resp.status


async def logout(client: TestClient) -> None:
    await client.post("/_gateway/logout", allow_redirects=False)


@pytest.fixture
async def enrolled(gateway: TestClient) -> tuple[TestClient, str, list[str]]:
    await login(gateway, "csr-carol")
    secret, codes = await enrol(gateway)
    await logout(gateway)
    return gateway, secret, codes


async def test_enrolment_on_the_account_page(gateway: TestClient) -> None:
    """Begin shows a QR code and the secret; the first code turns it on, with 10 codes once."""
    await login(gateway, "csr-carol")
    token = (await whoami(gateway))["csrf_token"]
    page = await (await gateway.get("/_gateway/account")).text()
    assert "Set up an authenticator app" in page
    resp = await gateway.post("/_gateway/account/totp", data={"action": "begin",
                                                              "csrf_token": token})
    html = await resp.text()
    assert resp.status == 200 and "<svg" in html and "<script" not in html.split("<main")[-1]
    secret = re.search(r'data-secret="([A-Z2-7]+)"', html)
    assert secret is not None
    wrong = await gateway.post("/_gateway/account/totp", data={
        "action": "confirm", "code": "000000", "csrf_token": token})
    assert wrong.status == 400 and not await gw_of(gateway).second_factor.enabled("csr-carol")
    resp = await gateway.post("/_gateway/account/totp", data={
        "action": "confirm", "code": pyotp.TOTP(secret.group(1)).now(), "csrf_token": token})
    html = await resp.text()
    assert resp.status == 200 and len(re.findall(r"<li><code>", html)) == 10
    assert await gw_of(gateway).second_factor.enabled("csr-carol")
    again = await (await gateway.get("/_gateway/account")).text()
    assert "<li><code>" not in again and "Unused recovery codes: 10" in again
    (line,) = events(gateway, "totp_enrolled")
    assert line["user"] == "csr-carol" and line["recovery_codes_left"] == 10


async def test_unknown_action_is_a_clear_400(gateway: TestClient) -> None:
    """An action the page does not know is 400 bad_request, never a traceback."""
    await login(gateway, "csr-carol")
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/account/totp", headers=JSON,
                              json={"action": "<script>", "csrf_token": token})
    assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
    line = [r for r in events(gateway, "request") if r["path"] == "/_gateway/account/totp"][-1]
    assert line["action"] == "totp" and line["reason"] == "bad_request"


async def test_csrf_on_every_post(gateway: TestClient) -> None:
    """No CSRF token, no change: each action refused with csrf_failed."""
    await login(gateway, "csr-carol")
    for action in ("begin", "confirm", "disable", "renew"):
        resp = await gateway.post("/_gateway/account/totp", data={"action": action})
        assert resp.status == 403, action
    assert not events(gateway, "totp_enrolled")


async def test_login_with_password_and_code(enrolled: tuple[TestClient, str, list[str]]
                                            ) -> None:
    """The right password leads to the second page, not a session; the code completes it."""
    client, secret, _ = enrolled
    pending = await password_step(client)
    assert (await client.get("/_gateway/whoami", headers=JSON)).status == 401
    resp = await client.post("/_gateway/login/code", data={
        "pending": pending, "code": pyotp.TOTP(secret).now()}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/cart"
    assert (await whoami(client))["user"] == "csr-carol"
    session = (await gw_of(client).sessions.all())[0]
    assert session.auth_method == "totp" and session.amr == ("pwd", "otp")
    line = events(client, "login")[-1]
    assert line["auth_method"] == "totp" and line["amr"] == ["pwd", "otp"]


@pytest.mark.parametrize(("attack", "reason"), [
    ("wrong-code", "totp_invalid"),
    ("two-steps-old", "totp_invalid"),
    ("two-steps-ahead", "totp_invalid"),
    ("replayed", "totp_replayed"),
    ("not-a-code", "totp_invalid"),
    ("recovery-reused", "recovery_used"),
    ("forged-pending", "totp_pending_expired"),
], ids=str)
async def test_attacks_on_the_code(enrolled: tuple[TestClient, str, list[str]], attack: str,
                                   reason: str) -> None:
    """Each refused with 401 and its login_failed reason; no session is made."""
    client, secret, codes = enrolled
    pending = await password_step(client)
    code: str = {"wrong-code": "123456" if code_at(secret, 0) != "123456" else "654321",
                 "two-steps-old": code_at(secret, -2), "two-steps-ahead": code_at(secret, 2),
                 "replayed": code_at(secret, 0), "not-a-code": "hello",
                 "recovery-reused": codes[0], "forged-pending": code_at(secret, 0)}[attack]
    if attack in ("replayed", "recovery-reused"):
        assert await send_code(client, pending, code) == 303  # the first use is good
        await logout(client)
        pending = await password_step(client)
    if attack == "forged-pending":
        pending = pending[:-6] + ("AAAAAA" if not pending.endswith("AAAAAA") else "BBBBBB")
    if attack in ("two-steps-old", "two-steps-ahead") and code in (code_at(secret, s)
                                                                   for s in (-1, 0, 1)):
        pytest.skip("the codes of two steps collided")
    assert await send_code(client, pending, code) == 401
    assert (await client.get("/_gateway/whoami", headers=JSON)).status == 401
    failed = events(client, "login_failed")[-1]
    assert failed["reason"] == reason and failed["auth_method"] == "totp"


async def forget_last_step(client: TestClient) -> None:
    """As if the last accepted code were long ago (enrolment used the step before now)."""
    from sqlalchemy import update  # the row as stored, changed the way an old one would be

    from gateway.directory.models import TotpRow

    async with gw_of(client).directory.sessions.begin() as db:
        await db.execute(update(TotpRow).values(last_step=None))


@pytest.mark.parametrize("skew", [-1, 0, 1], ids=["one-step-behind", "now", "one-step-ahead"])
async def test_one_step_of_skew(enrolled: tuple[TestClient, str, list[str]], skew: int) -> None:
    """A clock one step off either way is accepted."""
    client, secret, _ = enrolled
    await forget_last_step(client)
    assert await send_code(client, await password_step(client), code_at(secret, skew)) == 303


async def test_recovery_code_logs_in_once(enrolled: tuple[TestClient, str, list[str]]) -> None:
    """A recovery code (any case, with or without its dash) works once and is audited."""
    client, _, codes = enrolled
    assert await send_code(client, await password_step(client),
                           codes[3].upper().replace("-", "")) == 303
    used = events(client, "recovery_code_used")[-1]
    assert used["user"] == "csr-carol" and used["recovery_codes_left"] == 9
    await logout(client)
    assert await send_code(client, await password_step(client), codes[3]) == 401


async def test_wrong_codes_are_throttled(make_gateway: Any) -> None:
    """Wrong codes count toward the login throttle; past it even the right code waits."""
    client = await make_gateway(limits={"login_failures_per_user": 3})
    await login(client, "csr-carol")
    secret, _ = await enrol(client)
    await logout(client)
    pending = await password_step(client)
    wrong = "111111" if code_at(secret, 0) != "111111" else "222222"
    for _ in range(3):
        assert await send_code(client, pending, wrong) == 401
    assert await send_code(client, pending, code_at(secret, 0)) == 429
    assert events(client, "login_failed")[-1]["reason"] == "throttled"


async def test_password_then_code_never_resets_the_throttle(make_gateway: Any) -> None:
    """The right password alone does not clear the code failures (no endless guessing)."""
    client = await make_gateway(limits={"login_failures_per_user": 3})
    await login(client, "csr-carol")
    secret, _ = await enrol(client)
    await logout(client)
    wrong = "111111" if code_at(secret, 0) != "111111" else "222222"
    for _ in range(3):
        assert await send_code(client, await password_step(client), wrong) == 401
    resp = await client.post("/_gateway/login", data={"username": "csr-carol",
                                                      "password": PASSWORD})
    assert resp.status == 429


async def test_disable_needs_password_and_code(enrolled: tuple[TestClient, str, list[str]]
                                               ) -> None:
    """Disable with a wrong password or code changes nothing; with both it is off, audited."""
    client, secret, _ = enrolled
    assert await send_code(client, await password_step(client), code_at(secret, 0)) == 303
    token = (await whoami(client))["csrf_token"]
    for password, code in (("wrong-pass", code_at(secret, 1)), (PASSWORD, "000001")):
        resp = await client.post("/_gateway/account/totp", headers=JSON, json={
            "action": "disable", "password": password, "code": code, "csrf_token": token})
        assert resp.status == 400
    assert await gw_of(client).second_factor.enabled("csr-carol")
    resp = await client.post("/_gateway/account/totp", headers=JSON, json={
        "action": "disable", "password": PASSWORD, "code": code_at(secret, 1),
        "csrf_token": token})
    assert resp.status == 200 and (await resp.json())["enabled"] is False
    assert events(client, "totp_disabled")[-1]["user"] == "csr-carol"
    await logout(client)
    await login(client, "csr-carol")  # the password alone again


async def test_new_recovery_codes_void_the_old(enrolled: tuple[TestClient, str, list[str]]
                                               ) -> None:
    """Renewing (with a current code) gives ten new codes; the old ones stop working."""
    client, secret, old = enrolled
    assert await send_code(client, await password_step(client), code_at(secret, 0)) == 303
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/account/totp", headers=JSON, json={
        "action": "renew", "code": code_at(secret, 1), "csrf_token": token})
    new = (await resp.json())["recovery_codes"]
    assert resp.status == 200 and len(new) == 10 and not set(new) & set(old)
    assert events(client, "recovery_codes_renewed")[-1]["recovery_codes_left"] == 10
    await logout(client)
    assert await send_code(client, await password_step(client), old[0]) == 401
    assert await send_code(client, await password_step(client), new[0]) == 303


# -- step-up of a start the policy guards with requires_mfa --------------------------------


async def mfa_buyer(client: TestClient) -> None:
    from gateway.directory.service import DirectoryService  # the admin's write path

    await DirectoryService(gw_of(client).directory).update_user(
        "buyer-alice", {"tags": ["mfa_required"]})


async def start(client: TestClient, reason: str) -> tuple[int, str]:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/impersonate", data={
        "buyer": "buyer-alice", "reason": reason, "csrf_token": token}, allow_redirects=False)
    return resp.status, await resp.text()


async def reauth(client: TestClient, reason: str, **fields: str) -> int:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/reauth", data={
        "buyer": "buyer-alice", "reason": reason, "return_to": "/_gateway/select-user",
        "csrf_token": token, **fields}, allow_redirects=False)
    return resp.status


@pytest.mark.parametrize(("fields", "status", "acting"), [
    ({"password": PASSWORD, "code": "now"}, 303, "buyer-alice"),
    ({"password": PASSWORD}, 401, None),
    ({"password": PASSWORD, "code": "000000"}, 401, None),
    ({"password": "wrong-password", "code": "now"}, 401, None),
], ids=["password-and-code", "password-only", "wrong-code", "wrong-password"])
async def test_requires_mfa_start_for_a_local_csr(gateway: TestClient, fields: dict[str, str],
                                                  status: int, acting: str | None) -> None:
    """A start the policy guards asks password AND code; only both start it, reason kept."""
    await mfa_buyer(gateway)
    await login(gateway, "csr-carol")  # password only: the session has no second factor
    secret, _ = await enrol(gateway)
    code, page = await start(gateway, "T-9 kept")
    assert code == 200 and 'name="code"' in page and "T-9 kept" in page
    if fields.get("code") == "now":
        fields = {**fields, "code": pyotp.TOTP(secret).now()}
    assert await reauth(gateway, "T-9 kept", **fields) == status
    me = await whoami(gateway)
    assert me["acting_as"] == acting
    if acting:
        assert me["impersonation"]["reason"] == "T-9 kept"
        line = events(gateway, "impersonation_start")[-1]
        assert line["amr"] == ["pwd", "otp"] and line["impersonation_reason"] == "T-9 kept"


async def test_requires_mfa_not_enrolled(gateway: TestClient) -> None:
    """A local CSR without an authenticator app gets 403 mfa_not_enrolled and a link."""
    await mfa_buyer(gateway)
    await login(gateway, "csr-carol")
    code, page = await start(gateway, "T-10")
    assert code == 403 and 'href="/_gateway/account#totp-heading"' in page
    assert (await whoami(gateway))["acting_as"] is None
    assert await reauth(gateway, "T-10", password=PASSWORD, code="123456") == 403


async def test_totp_login_satisfies_requires_mfa(enrolled: tuple[TestClient, str, list[str]]
                                                 ) -> None:
    """A fresh login with password and code starts a guarded impersonation at once."""
    client, secret, _ = enrolled
    await mfa_buyer(client)
    assert await send_code(client, await password_step(client), code_at(secret, 0)) == 303
    assert (await start(client, "T-11"))[0] == 303
    assert (await whoami(client))["acting_as"] == "buyer-alice"


@pytest.mark.parametrize(("with_code", "status", "acting"), [
    (True, 303, "buyer-alice"), (False, 401, None)], ids=["code-again", "password-only"])
async def test_a_stale_totp_login_proves_the_code_again(
        enrolled: tuple[TestClient, str, list[str]], with_code: bool, status: int,
        acting: str | None) -> None:
    """Past step_up_minutes the second factor shown at login counts no more: the step-up of
    a guarded start asks for password and code again, and the password alone is refused."""
    client, secret, _ = enrolled
    await mfa_buyer(client)
    assert await send_code(client, await password_step(client), code_at(secret, 0)) == 303
    gw = gw_of(client)
    for session in await gw.sessions.all():
        await gw.sessions.save(dataclasses.replace(session, auth_time=session.auth_time - 3600))
    code, page = await start(client, "T-12")
    assert code == 200 and 'name="code"' in page
    await forget_last_step(client)
    fields = {"password": PASSWORD, **({"code": code_at(secret, 0)} if with_code else {})}
    assert await reauth(client, "T-12", **fields) == status
    assert (await whoami(client))["acting_as"] == acting
