"""Switching buyers in one step: stop and start, both audited, the reason asked again."""

from __future__ import annotations

import pytest

from tests.support.gateway import audit_lines, impersonate, login, whoami

SWITCH = "/_gateway/impersonate/switch"


async def _switch(client, buyer: str, reason: str = "TICKET-2", token: str | None = None):
    if token is None:
        token = str((await whoami(client))["csrf_token"])
    return await client.post(SWITCH, data={"buyer": buyer, "reason": reason,
                                           "csrf_token": token}, allow_redirects=False)


def _events(client) -> list[tuple[str, str | None, str | None]]:
    return [(r["event"], r["user"], r.get("impersonation_reason")) for r in audit_lines(client)
            if r["event"].startswith("impersonation_")]


async def test_switch_stops_then_starts_each_audited_with_the_new_reason(gateway) -> None:
    """Acting for Alice, a switch to Bob writes Alice's stop, then Bob's start with the new
    reason, and the CSR now acts for Bob."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice", "TICKET-1") == 303
    resp = await _switch(gateway, "buyer-bob", "TICKET-2 invoice question")
    assert resp.status == 303
    assert (await whoami(gateway))["acting_as"] == "buyer-bob"
    assert _events(gateway)[-2:] == [
        ("impersonation_stop", "buyer-alice", "TICKET-1"),
        ("impersonation_start", "buyer-bob", "TICKET-2 invoice question")]
    assert (await gateway.get("/cart")).status == 200


@pytest.mark.parametrize(("config", "buyer", "reason", "status", "why"), [
    ({}, "buyer-ivan", "TICKET-3", 403, "not_assigned"),
    ({}, "prospect-pat", "TICKET-3", 403, "not_customer"),
    ({}, "nobody-at-all", "TICKET-3", 403, "unknown_buyer"),
    ({"reason_required": True}, "buyer-bob", "  ", 400, "reason_required"),
], ids=["not-assigned", "prospect", "unknown", "reason-asked-again"])
async def test_a_refused_switch_keeps_the_running_impersonation(
        make_gateway, config, buyer, reason, status, why) -> None:
    """A switch the policy refuses is audited as impersonation_denied and stops nothing."""
    client = await make_gateway(impersonation=config)
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice", "TICKET-1") == 303
    resp = await _switch(client, buyer, reason)
    assert resp.status == status
    assert (await whoami(client))["acting_as"] == "buyer-alice"
    denied = [r for r in audit_lines(client) if r["event"] == "impersonation_denied"]
    assert denied[-1]["reason"] == why
    assert not [e for e in _events(client) if e[0] == "impersonation_stop"]


async def test_switch_needs_the_csrf_token_and_a_post(gateway) -> None:
    """Without the session's token the switch is refused; GET is 405."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    assert (await _switch(gateway, "buyer-bob", token="wrong")).status == 403
    assert (await whoami(gateway))["acting_as"] == "buyer-alice"
    assert (await gateway.get(SWITCH, allow_redirects=False)).status == 405


async def test_switch_when_not_acting_is_a_plain_start(gateway) -> None:
    """A CSR acting as themself who posts a switch simply starts acting for the buyer."""
    await login(gateway, "csr-carol")
    assert (await _switch(gateway, "buyer-bob")).status == 303
    assert (await whoami(gateway))["acting_as"] == "buyer-bob"
