"""Who may act for whom, decided by the policy, through the real gateway."""

from __future__ import annotations

import pytest

from tests.support.gateway import (
    add_group,
    audit_lines,
    change_rows,
    denied_lines,
    impersonate,
    login,
    set_company,
    set_user,
    whoami,
)


@pytest.mark.parametrize(("csr", "buyer", "changes", "reason"), [
    ("csr-carol", "buyer-ivan", (), "not_assigned"),
    ("csr-dave", "buyer-alice", (), "not_assigned"),
    ("csr-carol", "prospect-pat", (), "not_customer"),
    ("csr-carol", "csr-dave", (), "not_customer"),
    ("csr-carol", "admin-ann", (), "not_customer"),
    ("csr-carol", "sales-sam", (), "not_customer"),
    ("csr-carol", "csr-carol", (), "self"),
    ("admin-ann", "buyer-alice", (), "not_impersonator"),
    ("sales-sam", "buyer-bob", (), "not_impersonator"),
    ("buyer-alice", "buyer-bob", (), "not_impersonator"),
    ("csr-carol", "nobody-here", (), "unknown_buyer"),
    ("csr-carol", "buyer-alice", (set_user("buyer-alice", active=False),), "buyer_inactive"),
    ("csr-carol", "buyer-alice", (add_group("buyer-alice", "Site Admin"),),
     "buyer_is_privileged"),
    ("csr-carol", "buyer-alice", (set_company("acme", no_impersonation=True),),
     "company_no_impersonation"),
    ("csr-carol", "buyer-alice", (add_group("buyer-alice", "CSR"),), "buyer_is_privileged"),
], ids=["other-company", "other-csrs-company", "prospect", "another-csr", "admin",
        "sales-admin", "self", "admin-is-no-csr", "sales-admin-is-no-csr", "buyer-is-no-csr",
        "unknown", "buyer-inactive", "buyer-is-staff", "company-no-impersonation",
        "buyer-also-csr"])
async def test_who_may_not_be_impersonated(make_gateway, upstream, csr, buyer, changes,
                                           reason) -> None:
    """Only customers of an assigned company, by explicitly granted groups; never staff,
    oneself or a flagged company: every refusal is audited with its reason, nothing forwarded."""
    client = await make_gateway()
    await change_rows(client, *changes)
    await login(client, csr)
    assert await impersonate(client, buyer) == 403
    assert (await whoami(client))["acting_as"] is None
    denied = denied_lines(client)[-1]
    assert (denied["reason"], denied["actor"], denied["csr"], denied["decision"]) == (
        reason, csr, csr, "deny")
    assert denied["user"] == buyer and denied["status"] == 403
    assert upstream.seen == []


@pytest.mark.parametrize(("require", "changes", "status", "reason"), [
    (False, (), 303, None),
    (True, (), 403, "no_consent"),
    (True, (set_user("buyer-alice", allow_assistance=True),), 303, None),
    (True, (set_company("acme", allow_assistance=True),), 303, None),
    (True, (set_company("acme", allow_assistance=True, no_impersonation=True),), 403,
     "company_no_impersonation"),
], ids=["consent-off", "consent-missing", "buyer-consents", "company-consents",
        "flag-beats-consent"])
async def test_consent(make_gateway, require, changes, status, reason) -> None:
    """impersonation.require_consent: the buyer or the company must allow assistance."""
    client = await make_gateway(impersonation={"require_consent": require})
    await change_rows(client, *changes)
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == status
    if reason is not None:
        assert denied_lines(client)[-1]["reason"] == reason


async def test_no_chaining(gateway) -> None:
    """A CSR acting for a buyer cannot start another impersonation (audited)."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    assert await impersonate(gateway, "buyer-bob") == 403
    assert (await whoami(gateway))["acting_as"] == "buyer-alice"
    assert denied_lines(gateway)[-1]["reason"] == "already_impersonating"


@pytest.mark.parametrize(("required", "reason", "status"), [
    (False, "", 303), (False, "TICKET-1", 303), (True, "", 400), (True, "   \t", 400),
    (True, "TICKET-1", 303),
], ids=["optional-empty", "optional-given", "required-empty", "required-blank",
        "required-given"])
async def test_reason_required_by_config(make_gateway, required, reason, status) -> None:
    """With impersonation.reason_required, no reason means no impersonation (400, audited)."""
    client = await make_gateway(impersonation={"reason_required": required})
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice", reason=reason) == status
    if status == 400:
        assert denied_lines(client)[-1]["reason"] == "reason_required"


async def test_reason_is_one_clean_line_everywhere(gateway, upstream) -> None:
    """Control characters and line breaks never reach the audit, the JWT or the banner."""
    import jwt

    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice", "TICKET-9\r\nX-Evil: 1\x00 " + "x" * 300) \
        == 303
    await gateway.get("/cart")
    claims = jwt.decode(upstream.last.header("X-Gateway-Assertion"),
                        options={"verify_signature": False})
    start = [r for r in audit_lines(gateway) if r["event"] == "impersonation_start"][-1]
    assert claims["impersonation_reason"] == start["impersonation_reason"]
    assert start["impersonation_reason"].startswith("TICKET-9 X-Evil: 1 x")
    assert len(start["impersonation_reason"]) == 200
    assert not any(c in start["impersonation_reason"] for c in "\r\n\x00")


async def test_csrf_and_methods_on_impersonate(gateway) -> None:
    """POST without the CSRF token is refused; GET is 405; JSON bodies work."""
    await login(gateway, "csr-carol")
    assert (await gateway.post("/_gateway/impersonate", data={"buyer": "buyer-alice"},
                               allow_redirects=False)).status == 403
    assert (await gateway.get("/_gateway/impersonate")).status == 405
    assert (await gateway.get("/_gateway/impersonate/stop")).status == 405
    token = (await whoami(gateway))["csrf_token"]
    resp = await gateway.post("/_gateway/impersonate", json={"buyer": "buyer-alice"},
                              headers={"X-CSRF-Token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"


async def test_anonymous_cannot_impersonate(gateway, upstream) -> None:
    """Without a session the start is refused before anything else."""
    resp = await gateway.post("/_gateway/impersonate", data={"buyer": "buyer-alice"},
                              allow_redirects=False)
    assert resp.status in (401, 303) and upstream.seen == []


@pytest.mark.parametrize(("method", "path", "status", "reason"), [
    ("GET", "/cart", 200, "ok"),
    ("GET", "/admin", 403, "policy_denied"),
    ("POST", "/orders/1/assign", 403, "policy_denied"),
    ("GET", "/account/password", 403, "sensitive_page"),
    ("GET", "/_gateway/admin/", 403, "policy_denied"),
], ids=["buyer-page", "shop-admin", "assign-order", "password", "gateway-admin"])
async def test_csr_who_is_also_admin_gets_only_csr_rights(make_gateway, upstream, method, path,
                                                         status, reason) -> None:
    """an Administrator in the CSR group, acting for a buyer, has only what the policy
    grants an impersonating CSR: no admin pages, no password pages."""
    client = await make_gateway()
    await change_rows(client, add_group("csr-carol", "Administrator"))
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == 303
    resp = await client.request(method, path, allow_redirects=False)
    assert resp.status == status
    line = [r for r in audit_lines(client) if r["event"] == "request" and r["path"] == path][-1]
    assert line["reason"] == reason
    if status == 403:
        assert not [s for s in upstream.seen if s.raw_path == path]
