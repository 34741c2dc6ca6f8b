"""Done for the first slice: a CSR orders for a buyer in a shop that knows nothing about it."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from gateway.demo.state import SHOP_STATE
from tests.support.gateway import audit_lines, impersonate, login, whoami


async def test_csr_places_order_for_buyer(shop_and_gateway) -> None:
    """csr-carol logs in as buyer-alice, orders; the shop records alice's order with carol
    as impersonator (from the verified assertion); the audit has all of it."""
    shop, client = shop_and_gateway
    await login(client, "csr-carol")
    page = await (await client.get("/_gateway/select-user?company=acme")).text()
    assert "Alice Anders" in page and "Pat Prospect" in page
    assert await impersonate(client, "buyer-alice", "TICKET-7") == 303
    catalog = await client.get("/")
    text = await catalog.text()
    assert "Logged In As Alice Anders (Acme Corp)" in text
    assert "Signed in as <strong>buyer-alice</strong>" in text
    assert (await client.post("/cart/add", data={"sku": "BC-100", "qty": "2"})).status == 200
    resp = await client.post("/checkout", data={"po_number": "PO-1"})
    assert resp.status == 200
    assert "Placed by csr-carol on behalf of buyer-alice" in await resp.text()
    (order,) = shop[SHOP_STATE].orders
    assert (order.user, order.company, order.impersonator) == ("buyer-alice", "acme",
                                                                "csr-carol")
    assert (order.assertion_sub, order.assertion_act) == ("buyer-alice", "csr-carol")
    assert order.total == "43.20"  # Acme's company price
    token = (await whoami(client))["csrf_token"]
    stop = await client.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                             allow_redirects=False)
    assert stop.status == 303
    assert (await whoami(client))["acting_as"] is None
    lines = audit_lines(client)
    events = [r["event"] for r in lines]
    assert events.index("impersonation_start") < events.index("impersonation_stop")
    checkout = [r for r in lines if r["path"] == "/checkout" and r["method"] == "POST"]
    assert checkout[0]["csr"] == "csr-carol" and checkout[0]["user"] == "buyer-alice"
    assert checkout[0]["impersonation_reason"] == "TICKET-7"
    assert checkout[0]["state_changing"] is True


async def test_buyer_and_csr_share_one_cart(shop_and_gateway) -> None:
    """the buyer logged in at the same time sees what the CSR put in the cart."""
    _shop, csr = shop_and_gateway
    await login(csr, "csr-carol")
    await impersonate(csr, "buyer-alice")
    await csr.post("/cart/add", data={"sku": "STK-50", "qty": "1"})
    base = str(csr.make_url("/")).rstrip("/")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as buyer:
        await buyer.post(f"{base}/_gateway/login", data={"username": "buyer-alice",
                                                          "password": "demo-pass-1"})
        text = await (await buyer.get(f"{base}/cart")).text()
    assert "Stickers, 50" in text
    assert "Logged In As" not in text  # the buyer's own session never shows the banner


@pytest.mark.parametrize("headers", [
    {"X-Remote-User": "buyer-alice"},
    {"X-Remote-User": "buyer-alice", "X-Gateway-Assertion": "eyJhbGciOiJub25lIn0.e30."},
    {},
], ids=["headers-only", "forged-assertion", "nothing"])
async def test_shop_refuses_forged_identity(shop_and_gateway, headers) -> None:
    """Reached directly with forged headers, the shop refuses: only the gateway can sign."""
    shop, _client = shop_and_gateway
    server = TestServer(shop)
    await server.start_server()
    async with ClientSession() as direct:
        resp = await direct.get(str(server.make_url("/cart")), headers=headers)
        assert resp.status == 401
    await server.close()
