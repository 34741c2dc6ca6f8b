"""The customer's view: every time staff acted for a buyer, as HTML and JSON, from the audit."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.gateway import change_rows, gw_of, impersonate, login, set_user, whoami
from tests.support.webhook import Hook


async def visit_for_alice(client: TestClient) -> None:
    """csr-carol acts for buyer-alice: three pages, one change, then stops."""
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice", "TICKET-42: order help") == 303
    for path in ("/", "/cart", "/products/7"):
        assert (await client.get(path)).status == 200
    token = (await whoami(client))["csrf_token"]
    assert (await client.post("/cart/add", data={"sku": "7", "csrf_token": token})).status \
        == 200
    resp = await client.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303


async def test_buyer_sees_who_when_why_and_what(make_gateway, staff) -> None:
    """JSON and HTML: the CSR's name, the reason, four pages, the one state-changing action."""
    client = await make_gateway()
    await visit_for_alice(client)
    alice = await staff(client, "buyer-alice")
    async with alice.session.get(alice.url("/_gateway/api/me/access")) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["scope"] == "me"
    [visit] = data["visits"]
    assert (visit["staff_name"], visit["reason"], visit["pages"], visit["ended_by"]) == (
        "Carol Service", "TICKET-42: order help", 4, "ok")
    assert [(a["method"], a["path"], a["status"]) for a in visit["actions"]] == [
        ("POST", "/cart/add", 200)]
    assert visit["duration_seconds"] is not None and 0 <= visit["duration_seconds"] < 60
    assert "csr-carol" not in str(visit)  # the customer reads a name, not a login
    async with alice.session.get(alice.url("/_gateway/me/access")) as resp:
        html = await resp.text()
    assert resp.status == 200 and "Carol Service" in html and "TICKET-42" in html
    assert "POST /cart/add" in html


async def test_other_buyers_see_nothing_of_it(make_gateway, staff) -> None:
    """buyer-bob's view is empty: visits are the buyer's own."""
    client = await make_gateway()
    await visit_for_alice(client)
    bob = await staff(client, "buyer-bob")
    async with bob.session.get(bob.url("/_gateway/api/me/access")) as resp:
        assert (await resp.json())["visits"] == []


@pytest.mark.parametrize(("features", "status"), [(["company_access"], 200), ([], 403)],
                         ids=["granted", "not-granted"])
async def test_company_view_is_the_policys(make_gateway, staff, features: Any,
                                           status: int) -> None:
    """scope=company lists the company's buyers' visits where the policy allows it."""
    client = await make_gateway()
    await change_rows(client, set_user("buyer-alice", features=features))
    await visit_for_alice(client)
    alice = await staff(client, "buyer-alice")
    async with alice.session.get(alice.url("/_gateway/api/me/access?scope=company")) as resp:
        assert resp.status == status
        data = await resp.json()
    if status == 200:
        assert data["scope"] == "company"
        assert [v["buyer_name"] for v in data["visits"]] == ["Alice Anders"]
    else:
        assert data["error"] == "policy_denied"


async def test_not_for_the_csr_acting_as_the_buyer(make_gateway) -> None:
    """While impersonating, the buyer's record of staff access stays the buyer's."""
    client = await make_gateway()
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == 303
    resp = await client.get("/_gateway/api/me/access")
    assert resp.status == 403 and (await resp.json())["error"] == "sensitive_page"


@pytest.mark.parametrize(("moments", "told"), [
    (("start", "end"), ["impersonation_started", "impersonation_finished"]),
    (("start",), ["impersonation_started"]),
    (("end",), ["impersonation_finished"]),
], ids=["start-and-end", "start-only", "end-only"])
async def test_notify_on_tells_the_company_at_the_start(make_gateway, hook: Hook,
                                                        moments: Any, told: Any) -> None:
    """impersonation.notify_on: the webhook hears of the start as it happens, the end or both."""
    client = await make_gateway(impersonation={"notify_webhook": hook.url,
                                               "notify_on": moments})
    await visit_for_alice(client)
    await hook.wait(len(told))
    await gw_of(client).notifier.close()  # type: ignore[union-attr]  (deliveries done)
    assert [m["event"] for m in hook.received] == told
    start = [m for m in hook.received if m["event"] == "impersonation_started"]
    assert all((m["csr"], m["customer"], m["company"], m["reason"]) ==
               ("csr-carol", "buyer-alice", "acme", "TICKET-42: order help") for m in start)
