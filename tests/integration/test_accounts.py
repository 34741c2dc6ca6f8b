"""Accounts: login throttling, activation links, directory rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.directory.invitations import Invitations
from gateway.directory.service import DirectoryService, ValidationFailed
from tests.support.gateway import audit_lines, gw_of, login


async def test_login_throttled_per_user(make_gateway) -> None:
    """After the allowed failures a user's logins get 429 with Retry-After, audited."""
    client = await make_gateway(limits={"login_failures_per_user": 3})
    for _ in range(3):
        resp = await client.post("/_gateway/login", data={"username": "buyer-bob",
                                                           "password": "wrong"})
        assert resp.status == 401
    resp = await client.post("/_gateway/login", data={"username": "buyer-bob",
                                                       "password": "demo-pass-1"})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    assert audit_lines(client)[-2]["reason"] == "throttled"
    await login(client, "buyer-alice")  # other users are unaffected


async def test_login_throttled_per_address(make_gateway) -> None:
    """Many users failing from one address: that address waits."""
    client = await make_gateway(limits={"login_failures_per_address": 4})
    for name in ("buyer-alice", "buyer-bob", "buyer-ivan", "csr-dave"):
        await client.post("/_gateway/login", data={"username": name, "password": "x"})
    resp = await client.post("/_gateway/login", data={"username": "admin-ann",
                                                       "password": "demo-pass-1"})
    assert resp.status == 429


@pytest.mark.parametrize(("data", "field"), [
    ({"username": "abcd", "email": "a@b.example"}, "username"),
    ({"username": "Bad Name", "email": "a@b.example"}, "username"),
    ({"username": "good-name", "email": "not-an-email"}, "email"),
    ({"username": "good-name", "email": "a@b.example", "kind": "robot"}, "kind"),
    ({"username": "good-name", "email": "a@b.example", "groups": ["Nope"]}, "groups"),
    ({"username": "good-name", "email": "a@b.example", "company": "nope"}, "company"),
    ({"username": "buyer-alice", "email": "a@b.example"}, "username"),
    ({"username": "good-name", "email": "a@b.example", "ip_fence": ["10.0.0.0/33"]},
     "ip_fence"),
], ids=["too-short", "bad-chars", "email", "kind", "unknown-group", "unknown-company",
        "taken", "bad-cidr"])
async def test_user_rules(gateway, data, field) -> None:
    """usernames of at least 5 characters, unique; a valid email; known references."""
    service = DirectoryService(gw_of(gateway).directory)
    with pytest.raises(ValidationFailed) as err:
        await service.create_user(data, None)
    assert field in err.value.fields


async def test_username_is_immutable(gateway) -> None:
    """a username can never change."""
    service = DirectoryService(gw_of(gateway).directory)
    with pytest.raises(ValidationFailed) as err:
        await service.update_user("buyer-alice", {"username": "buyer-alicia"})
    assert err.value.fields == {"username": "cannot be changed"}


async def test_new_user_inherits_creator_fence(gateway) -> None:
    """a new CSR inherits its creator's IP fence."""
    directory = gw_of(gateway).directory
    service = DirectoryService(directory)
    await service.update_user("admin-ann", {"ip_fence": ["10.1.0.0/16", "127.0.0.0/8"]})
    admin = directory.snapshot.user("admin-ann")
    _, created = await service.create_user({"username": "csr-erin", "email": "e@x.example",
                                            "groups": ["CSR"], "kind": "staff"}, admin)
    assert created["ip_fence"] == ("10.1.0.0/16", "127.0.0.0/8")


async def test_csr_group_cannot_be_deleted(gateway) -> None:
    """the pre-configured CSR group cannot be deleted."""
    service = DirectoryService(gw_of(gateway).directory)
    with pytest.raises(ValidationFailed):
        await service.delete_group("CSR")
    await service.create_group("Temp")
    await service.delete_group("Temp")


async def test_activation_link_once_within_a_day(gateway) -> None:
    """an activation link sets a password once, within 24 hours."""
    directory = gw_of(gateway).directory
    await DirectoryService(directory).create_user(
        {"username": "buyer-zed", "email": "z@acme.example", "company": "acme",
         "groups": ["Buyer"]}, None)
    clock = [datetime.now(UTC)]
    invitations = Invitations(directory, now=lambda: clock[0])
    token = await invitations.issue("buyer-zed", "activate")
    assert await invitations.redeem(token, "a-long-password") == "buyer-zed"
    with pytest.raises(LookupError):
        await invitations.redeem(token, "another-password")
    late = await invitations.issue("buyer-zed", "activate")
    clock[0] += timedelta(hours=24, seconds=1)
    with pytest.raises(LookupError):
        await invitations.redeem(late, "a-long-password")
    assert await directory.verify_password("buyer-zed", "a-long-password") is not None


async def test_non_list_reference_fields_are_422_not_500(gateway) -> None:
    """A number where a list of companies belongs is a validation error naming the field."""
    service = DirectoryService(gw_of(gateway).directory)
    with pytest.raises(ValidationFailed) as err:
        await service.update_user("buyer-bob", {"assigned_companies": 1.5})
    assert "assigned_companies" in err.value.fields
