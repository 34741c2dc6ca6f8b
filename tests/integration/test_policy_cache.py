"""The decision cache: any change in what the policy reads misses; nothing else does."""

from __future__ import annotations

import pytest

from gateway.directory.service import DirectoryService
from tests.support.gateway import audit_lines, gw_of, impersonate, login


async def test_changed_user_misses_others_keep_their_entries(gateway) -> None:
    """Taking csr-carol out of the CSR group changes her decisions at once, while cached
    decisions of users whose facts did not change stay cached."""
    await login(gateway, "csr-carol")
    assert (await gateway.get("/reports")).status == 200
    gw = gw_of(gateway)
    cache = gw.policy.current.cache
    alice = gw.directory.snapshot.facts["buyer-alice"]
    carol = gw.directory.snapshot.facts["csr-carol"]
    entries = len(cache)
    await DirectoryService(gw.directory).update_user("csr-carol", {"groups": ["Buyer"]})
    assert gw.directory.snapshot.facts["csr-carol"] != carol
    assert gw.directory.snapshot.facts["buyer-alice"] == alice
    assert (await gateway.get("/reports")).status == 200  # now as a Buyer: view allowed
    assert (await gateway.get("/print-services")).status == 200
    assert (await gateway.get("/_gateway/select-user")).status == 403  # no longer a CSR
    assert len(cache) > entries


async def test_company_flag_change_reaches_running_impersonation(gateway) -> None:
    """A company flagged 'no impersonation' changes its buyers' facts: the cached
    may-still-act answer misses and the running impersonation ends."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    assert (await gateway.get("/cart")).status == 200
    await DirectoryService(gw_of(gateway).directory).save_company(
        {"id": "acme", "no_impersonation": True}, creating=False)
    assert (await gateway.get("/cart")).status == 403


async def _assign(directory, company: str, csrs: list[str]) -> None:
    await DirectoryService(directory).assign(company, csrs, replace=True)


CHANGES = {
    "buyer-deactivated": (lambda d: DirectoryService(d).update_user(
        "buyer-alice", {"active": False}), "buyer_inactive"),
    "buyer-made-staff-group": (lambda d: DirectoryService(d).update_user(
        "buyer-alice", {"groups": ["Buyer", "CSR"]}), "buyer_is_privileged"),
    "buyer-moved-company": (lambda d: DirectoryService(d).update_user(
        "buyer-alice", {"company": "initech"}), "not_assigned"),
    "csr-unassigned": (lambda d: _assign(d, "acme", []), "not_assigned"),
    "csr-left-csr-group": (lambda d: DirectoryService(d).update_user(
        "csr-carol", {"groups": ["Buyer"]}), "not_impersonator"),
    "csr-deactivated": (lambda d: DirectoryService(d).update_user(
        "csr-carol", {"active": False}), None),
}


@pytest.mark.parametrize("name", list(CHANGES))
async def test_a_change_the_policy_reads_misses_the_cache(gateway, name: str) -> None:
    """While csr-carol acts for buyer-alice (decisions cached), any change to what the policy
    reads about either of them decides anew at the next request: the impersonation ends."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    for _ in range(2):
        assert (await gateway.get("/cart")).status == 200
    change, reason = CHANGES[name]
    await change(gw_of(gateway).directory)
    resp = await gateway.get("/cart", allow_redirects=False)
    assert resp.status in (303, 401, 403)  # a deactivated CSR is logged out (303 to login)
    if reason is not None:
        line = audit_lines(gateway)[-1]
        assert line["decision"] == "deny" and line["reason"] == reason


async def test_buyer_losing_the_page_grant_misses_the_page_cache(gateway) -> None:
    """The page decision is cached by the buyer's facts too: a buyer whose groups no longer
    grant the cart is refused the cart while a CSR acts for them."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    assert (await gateway.get("/cart")).status == 200
    await DirectoryService(gw_of(gateway).directory).update_user("buyer-alice", {"groups": []})
    assert (await gateway.get("/cart")).status == 403
    assert audit_lines(gateway)[-1]["reason"] == "policy_denied"
