"""Impersonation: scoped by policy, bounded in time, signed for the shop, visible, reported."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.directory.service import DirectoryService
from tests.conftest import audit_lines, gw_of, impersonate, login, whoami


@pytest.mark.parametrize(("csr", "buyer", "reason"), [
    ("csr-carol", "buyer-ivan", "not_assigned"),
    ("csr-carol", "prospect-pat", "not_customer"),
    ("csr-carol", "csr-dave", "not_customer"),
    ("csr-carol", "admin-ann", "not_customer"),
    ("csr-carol", "csr-carol", "self"),
    ("admin-ann", "buyer-alice", "not_impersonator"),
    ("sales-sam", "buyer-bob", "not_impersonator"),
    ("buyer-alice", "buyer-bob", "not_impersonator"),
    ("csr-carol", "nobody-here", "unknown_buyer"),
], ids=["not-assigned", "prospect", "another-csr", "admin", "self", "admin-csr-less",
        "sales-admin", "buyer", "unknown"])
async def test_who_may_not_be_impersonated(make_gateway, upstream, csr, buyer, reason) -> None:
    """R2, R16, R17: only customers of an assigned company, by explicitly granted groups;
    every refusal is audited with its reason and nothing is forwarded."""
    client = await make_gateway()
    await login(client, csr)
    status = await impersonate(client, buyer)
    assert status == 403
    assert (await whoami(client))["acting_as"] is None
    denied = [r for r in audit_lines(client) if r["event"] == "impersonation_denied"][-1]
    assert (denied["reason"], denied["actor"]) == (reason, csr)
    assert upstream.seen == []


async def test_no_chaining(gateway) -> None:
    """A CSR acting for a buyer cannot start another impersonation."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    assert await impersonate(gateway, "buyer-bob") == 403
    assert (await whoami(gateway))["acting_as"] == "buyer-alice"
    denied = [r for r in audit_lines(gateway) if r["event"] == "impersonation_denied"][-1]
    assert denied["reason"] == "already_impersonating"


async def test_reason_required_by_config(make_gateway) -> None:
    """With impersonation.reason_required, no reason means no impersonation (400)."""
    client = await make_gateway(impersonation={"reason_required": True})
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice", reason="") == 400
    assert await impersonate(client, "buyer-alice", reason="TICKET-1") == 303


@pytest.mark.parametrize(("company_flags", "buyer_consent", "require", "status"), [
    ({"no_impersonation": True}, False, False, 403),
    ({}, False, True, 403),
    ({}, True, True, 303),
    ({"allow_assistance": True}, False, True, 303),
    ({}, False, False, 303),
], ids=["company-no-impersonation", "consent-missing", "buyer-consents", "company-consents",
        "consent-off"])
async def test_company_flags_and_consent(make_gateway, company_flags, buyer_consent, require,
                                         status) -> None:
    """Companies flagged 'no impersonation' are off limits; with consent required, the buyer
    or the company must allow assistance."""
    client = await make_gateway(impersonation={"require_consent": require})
    service = DirectoryService(gw_of(client).directory)
    await service.save_company({"id": "acme", **company_flags}, creating=False)
    await service.update_user("buyer-alice", {"allow_assistance": buyer_consent})
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == status


async def test_expiry_ends_impersonation_and_forwards_nothing(gateway, upstream) -> None:
    """Past impersonation.max_minutes the next request ends it (audited), clearly, and
    nothing is forwarded as the buyer."""
    await login(gateway, "csr-carol")
    await impersonate(gateway, "buyer-alice")
    gw = gw_of(gateway)
    (session,) = await gw.sessions.all()
    old = dataclasses.replace(session.impersonation, started_at=time.time() - 3601)
    await gw.sessions.save(dataclasses.replace(session, impersonation=old))
    before = len(upstream.seen)
    resp = await gateway.get("/cart")
    assert resp.status == 403
    assert "Your session as the buyer has ended" in await resp.text()
    assert len(upstream.seen) == before
    assert (await whoami(gateway))["acting_as"] is None
    end = [r for r in audit_lines(gateway) if r["event"] == "impersonation_end"][-1]
    assert end["reason"] == "impersonation_expired" and end["csr"] == "csr-carol"


async def test_csr_losing_the_group_ends_impersonation(gateway, upstream) -> None:
    """Each request re-checks the CSR's group: removed from CSR, the impersonation ends."""
    await login(gateway, "csr-carol")
    await impersonate(gateway, "buyer-alice")
    await DirectoryService(gw_of(gateway).directory).update_user("csr-carol",
                                                                 {"groups": ["Buyer"]})
    assert (await gateway.get("/cart")).status == 403
    end = [r for r in audit_lines(gateway) if r["event"] == "impersonation_end"][-1]
    assert end["reason"] == "not_impersonator"


async def test_signed_assertion_verifies_with_published_jwks(gateway, upstream) -> None:
    """R14: the shop can prove from X-Gateway-Assertion alone who acted for whom."""
    await login(gateway, "csr-carol")
    await impersonate(gateway, "buyer-alice", reason="TICKET-5")
    await gateway.get("/cart")
    token = upstream.last.header("X-Gateway-Assertion")
    jwks = await (await gateway.get("/_gateway/.well-known/jwks.json")).json()
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
    key = keys[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience="csr-demo-shop")
    assert claims["sub"] == "buyer-alice" and claims["act"] == {"sub": "csr-carol"}
    assert claims["company"] == "acme" and claims["impersonation_reason"] == "TICKET-5"
    assert claims["exp"] - claims["iat"] <= 60
    assert claims["policy_rev"] == gw_of(gateway).policy.rev
    session_id = gateway.session.cookie_jar.filter_cookies(
        gateway.make_url("/"))["csrgw_session"].value
    assert session_id not in token and claims["sid"] != session_id
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=["EdDSA"], audience="another-shop")


async def test_buyer_own_assertion_has_no_act(gateway, upstream) -> None:
    """A buyer's own request carries no `act` claim and no X-Impersonator."""
    await login(gateway, "buyer-alice")
    await gateway.get("/cart")
    claims = jwt.decode(upstream.last.header("X-Gateway-Assertion"),
                        options={"verify_signature": False})
    assert "act" not in claims and upstream.last.header("X-Impersonator") is None


async def test_key_rotation_publishes_both_keys(gateway, upstream) -> None:
    """A second key in keys_dir: both published, the newest signs, old tokens still verify."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    gw = gw_of(gateway)
    old_kid = gw.signer.keys[-1].kid
    new = ed25519.Ed25519PrivateKey.generate()
    path = gw.settings.assertion.keys_dir / "signing-next.pem"
    path.write_bytes(new.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    import os

    os.utime(path, (time.time() + 5, time.time() + 5))
    gw.signer.reload_keys()
    jwks = await (await gateway.get("/_gateway/.well-known/jwks.json")).json()
    kids = [k["kid"] for k in jwks["keys"]]
    assert old_kid in kids and len(kids) == 2
    await login(gateway, "buyer-alice")
    await gateway.get("/cart")
    assert jwt.get_unverified_header(upstream.last.header("X-Gateway-Assertion"))["kid"] \
        == kids[-1] != old_kid


async def test_identity_switch_clears_shop_cookies_and_rotates_session(gateway) -> None:
    """Every switch sets a new session id and expires the shop's session cookies."""
    await login(gateway, "csr-carol")
    before = gateway.session.cookie_jar.filter_cookies(gateway.make_url("/"))["csrgw_session"]
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/impersonate", data={
        "buyer": "buyer-alice", "csrf_token": token}, allow_redirects=False)
    cookies = resp.headers.getall("Set-Cookie")
    assert any(c.startswith("sessionid=") and "Max-Age=0" in c for c in cookies)
    after = gateway.session.cookie_jar.filter_cookies(gateway.make_url("/"))["csrgw_session"]
    assert before.value != after.value


async def test_csrf_and_methods_on_impersonate(gateway) -> None:
    """POST without the CSRF token is refused; GET is 405; JSON bodies work."""
    await login(gateway, "csr-carol")
    assert (await gateway.post("/_gateway/impersonate", data={"buyer": "buyer-alice"},
                               allow_redirects=False)).status == 403
    assert (await gateway.get("/_gateway/impersonate")).status == 405
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/impersonate", json={"buyer": "buyer-alice"},
                              headers={"X-CSRF-Token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"


async def test_logout_buyer_returns_to_where_the_csr_was(gateway) -> None:
    """Logout Buyer goes back to the page the CSR started from."""
    await login(gateway, "csr-carol")
    token = (await whoami(gateway))["csrf_token"]
    referer = str(gateway.make_url("/_gateway/select-user?company=acme"))
    await gateway.post("/_gateway/impersonate", data={"buyer": "buyer-alice",
                                                      "csrf_token": token},
                       headers={"Referer": referer}, allow_redirects=False)
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                              allow_redirects=False)
    assert resp.headers["Location"] == "/_gateway/select-user?company=acme"


@pytest.mark.parametrize(("query", "expected"), [
    ("q=alice", ["buyer-alice"]), ("q=GLOBEX-0001", ["buyer-bob"]),
    ("q=bob%40globex", ["buyer-bob"]), ("company=acme", ["buyer-alice", "prospect-pat"]),
    ("q=ivan", []), ("company=initech", []),
], ids=["name", "account", "email", "company", "other-csrs-buyer", "unassigned-company"])
async def test_buyer_search_stays_in_assigned_companies(gateway, query, expected) -> None:
    """R6: search by name, email or account number, only across the CSR's companies."""
    await login(gateway, "csr-carol")
    data = await (await gateway.get(f"/_gateway/api/buyers?{query}")).json()
    assert sorted(b["username"] for b in data["buyers"]) == expected
    assert all(b["selectable"] == (b["kind"] == "customer") for b in data["buyers"])


async def test_select_user_pages_thousands_of_buyers(gateway) -> None:
    """A company with thousands of buyers is paged, 50 a page."""
    from gateway.directory.models import MembershipRow, UserRow

    directory = gw_of(gateway).directory
    async with directory.sessions.begin() as db:
        for i in range(1200):
            row = UserRow(username=f"bulk-{i:05d}", email=f"b{i}@acme.example",
                          company_id="acme", kind="customer")
            row.groups = [MembershipRow(group="Buyer")]
            db.add(row)
        await directory.bump(db)
    await directory.reload()
    await login(gateway, "csr-carol")
    data = await (await gateway.get("/_gateway/api/buyers?company=acme&page=3")).json()
    assert data["total"] == 1202 and data["pages"] == 25 and len(data["buyers"]) == 50
    html = await (await gateway.get("/_gateway/select-user?company=acme&page=25")).text()
    assert "page 25 of 25" in html


async def test_notification_webhook_retries_and_is_audited(make_gateway) -> None:
    """After the impersonation, the customer's webhook gets the summary; failures retry."""
    received: list[dict] = []
    attempts = {"n": 0}

    async def hook(request: web.Request) -> web.Response:
        attempts["n"] += 1
        if attempts["n"] < 3:
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    client = await make_gateway(impersonation={"notify_webhook": str(server.make_url("/hook"))})
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice", reason="TICKET-8")
    await client.get("/cart")
    await client.post("/checkout", data={"po": "1"})
    token = (await whoami(client))["csrf_token"]
    await client.post("/_gateway/impersonate/stop", data={"csrf_token": token})
    for _ in range(60):
        if received:
            break
        await asyncio.sleep(0.1)
    await server.close()
    (summary,) = received
    assert (summary["csr"], summary["customer"], summary["reason"]) == (
        "csr-carol", "buyer-alice", "TICKET-8")
    assert summary["actions"] >= 2
    assert [a["path"] for a in summary["state_changing_actions"]] == ["/checkout"]
    line = [r for r in audit_lines(client) if r["event"] == "notification"][-1]
    assert line["reason"] == "ok" and line["attempts"] == 3
