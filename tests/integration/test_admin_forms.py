"""Admin forms that cannot surprise: nothing privileged chosen for you, groups ticked from
the groups that exist, the CSR+Administrator warning, plain words instead of codes."""

from __future__ import annotations

import re

import pytest

from tests.support.gateway import gw_of, login, whoami


async def _admin(gateway) -> str:
    await login(gateway, "admin-ann")
    return str((await whoami(gateway))["csrf_token"])


@pytest.mark.parametrize("path", ["/_gateway/admin/users", "/_gateway/admin/users/buyer-bob"],
                         ids=["add-user", "edit-user"])
async def test_no_privileged_default_and_groups_are_checkboxes(gateway, path) -> None:
    """Add User ticks no group and chooses no kind; each existing group is a checkbox; no
    free-text groups field; no requirement codes or jargon on the page."""
    await _admin(gateway)
    text = await (await gateway.get(path)).text()
    boxes = re.findall(r'<input type="checkbox" name="groups" value="([^"]+)"( checked)?>', text)
    assert {name for name, _ in boxes} >= {"Administrator", "CSR", "Buyer", "Sales Admin"}
    ticked = {name for name, on in boxes if on}
    assert ticked == (set() if path.endswith("/users") else {"Buyer"})
    assert 'id="groups" name="groups" type="text"' not in text
    assert not re.search(r"<option[^>]*selected[^>]*>(Administrator|staff)</option>", text)
    assert not re.search(r"\(R\d+\)", text) and "Tag scopes" not in text
    assert "Feature toggles" not in text


async def test_add_user_with_csr_and_administrator_warns_after_saving(gateway) -> None:
    """Ticking CSR and Administrator creates the user with both groups and says why that is
    risky; no kind chosen is refused naming the field."""
    token = await _admin(gateway)
    base = {"csrf_token": token, "username": "csr-zoe", "email": "zoe@example.com",
            "groups_shown": "1"}
    refused = await gateway.post("/_gateway/admin/users", data={**base, "kind": ""})
    assert refused.status == 422 and "kind" in await refused.text()
    made = await gateway.post("/_gateway/admin/users", data=[
        *{**base, "kind": "staff"}.items(), ("groups", "CSR"), ("groups", "Administrator")])
    text = await made.text()
    assert made.status == 200 and "csr-zoe is both CSR and Administrator" in text
    assert set(gw_of(gateway).directory.snapshot.user("csr-zoe").groups) == {
        "CSR", "Administrator"}


async def test_unticking_every_group_leaves_the_user_in_none(gateway) -> None:
    """The user page saves exactly the ticked groups, including none."""
    token = await _admin(gateway)
    user = gw_of(gateway).directory.snapshot.user("buyer-bob")
    fields = {"csrf_token": token, "groups_shown": "1", "email": user.email, "kind": user.kind,
              "company": user.company or "", "active": "on"}
    resp = await gateway.post("/_gateway/admin/users/buyer-bob", data=fields)
    assert resp.status == 200, await resp.text()
    assert gw_of(gateway).directory.snapshot.user("buyer-bob").groups == ()
