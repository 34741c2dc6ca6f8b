"""The decision cache: any change in what the policy reads misses; nothing else does."""

from __future__ import annotations

from gateway.directory.service import DirectoryService
from tests.conftest import gw_of, impersonate, login


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
