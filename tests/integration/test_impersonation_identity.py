"""While impersonating: the shop sees the buyer and learns who acts, the
gateway's account page stays the CSR's, every identity switch clears the shop's session
cookies, the banner is on every page of the CSR's and on none of the buyer's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient

from gateway.demo.state import SHOP_STATE
from tests.support.gateway import (
    PASSWORD,
    audit_lines,
    change_rows,
    gw_of,
    impersonate,
    login,
    unassign,
    whoami,
)


@pytest.fixture
def shop(shop_and_gateway: tuple[web.Application, TestClient]
         ) -> tuple[web.Application, TestClient]:
    return shop_and_gateway


class Browser:
    """A second, independent browser (its own cookie jar) against the same gateway."""

    def __init__(self, client: TestClient, http: ClientSession) -> None:
        self.base, self.http = str(client.make_url("")).rstrip("/"), http

    async def login(self, user: str) -> None:
        async with self.http.post(f"{self.base}/_gateway/login", data={
                "username": user, "password": PASSWORD}, allow_redirects=False) as resp:
            assert resp.status == 303

    async def get(self, path: str) -> tuple[int, str, Any]:
        async with self.http.get(self.base + path, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp.headers

    async def post(self, path: str, data: dict[str, str]) -> int:
        async with self.http.post(self.base + path, data=data, allow_redirects=False) as resp:
            return resp.status

    async def whoami(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/_gateway/whoami") as resp:
            data: dict[str, Any] = await resp.json()
            return data

    def session_id(self) -> str:
        return next(c.value for c in self.http.cookie_jar if c.key == "csrgw_session")


@pytest.fixture
async def buyer_browser(gateway) -> AsyncIterator[Browser]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        browser = Browser(gateway, http)
        await browser.login("buyer-alice")
        yield browser


async def test_orders_are_the_buyers_and_carry_the_csr(shop) -> None:
    """the shop records the buyer's order, at the buyer's price, with the CSR as
    impersonator, proven by the verified assertion (sub, act.sub)."""
    app, client = shop
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice", "TICKET-11")
    await client.post("/cart/add", data={"sku": "BC-500", "qty": "1"})
    assert (await client.post("/checkout", data={"po_number": "PO-9"})).status == 200
    (order,) = app[SHOP_STATE].orders
    assert (order.user, order.company, order.impersonator) == ("buyer-alice", "acme",
                                                                "csr-carol")
    assert (order.assertion_sub, order.assertion_act) == ("buyer-alice", "csr-carol")
    assert order.total == "71.10"  # Acme's price, not the list price
    line = [r for r in audit_lines(client) if r["path"] == "/checkout"][-1]
    assert (line["user"], line["csr"], line["impersonation_reason"]) == (
        "buyer-alice", "csr-carol", "TICKET-11")


async def test_buyer_and_csr_at_the_same_time(shop) -> None:
    """the buyer's own session runs beside the CSR's; both see one cart; the buyer
    never sees the banner; the CSR's start and stop leave the buyer's session alone."""
    app, client = shop
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        buyer = Browser(client, http)
        await buyer.login("buyer-alice")
        before = buyer.session_id()
        await login(client, "csr-carol")
        await impersonate(client, "buyer-alice")
        await client.post("/cart/add", data={"sku": "STK-50", "qty": "1"})
        token = (await buyer.whoami())["csrf_token"]
        assert token
        assert await buyer.post("/cart/add", {"sku": "POS-A2", "qty": "1"}) == 303
        status, page, headers = await buyer.get("/cart")
        assert status == 200 and "Stickers, 50" in page and "Poster A2" in page
        assert "Logged In As" not in page and "X-Impersonation" not in headers
        csr_cart = await (await client.get("/cart")).text()
        assert "Poster A2" in csr_cart and "Logged In As Alice Anders (Acme Corp)" in csr_cart
        token = (await whoami(client))["csrf_token"]
        await client.post("/_gateway/impersonate/stop", data={"csrf_token": token})
        me = await buyer.whoami()
        assert (me["user"], me["acting_as"]) == ("buyer-alice", None)
        assert buyer.session_id() == before
        assert (await buyer.get("/cart"))[0] == 200
    assert app[SHOP_STATE].carts["buyer-alice"] == {"STK-50": 1, "POS-A2": 1}


async def test_gateway_account_page_stays_the_csrs(gateway) -> None:
    """/_gateway/account while impersonating is the CSR's own page, with a banner."""
    await login(gateway, "csr-carol")
    await impersonate(gateway, "buyer-alice")
    page = await (await gateway.get("/_gateway/account")).text()
    assert "My account: Carol Service (csr-carol)" in page and "carol@example.com" in page
    assert "alice@acme.example" not in page
    assert "Logged In As Alice Anders (Acme Corp)" in page


@pytest.mark.parametrize(("path", "status", "reason"), [
    ("/account", 200, "ok"), ("/account/password", 403, "sensitive_page"),
    ("/account/email", 403, "sensitive_page"), ("/account/2fa", 403, "sensitive_page"),
], ids=["shop-account", "password", "email", "2fa"])
async def test_buyers_credentials_are_out_of_reach(shop, path, status, reason) -> None:
    """the shop's password, email and 2FA pages are denied while impersonating."""
    app, client = shop
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    assert (await client.get(path, allow_redirects=False)).status == status
    if status == 403:
        assert (await client.post(path, data={"x": "1"}, allow_redirects=False)).status == 403
    line = [r for r in audit_lines(client) if r["path"] == path][-1]
    assert line["reason"] == reason
    changed = [e["event"] for e in app[SHOP_STATE].events]
    assert not [e for e in changed if e in ("password_changed", "email_changed", "2fa_changed")]


async def start(client: TestClient) -> Any:
    token = (await whoami(client))["csrf_token"]
    return await client.post("/_gateway/impersonate", data={
        "buyer": "buyer-alice", "csrf_token": token}, allow_redirects=False)


async def stop(client: TestClient) -> Any:
    token = (await whoami(client))["csrf_token"]
    return await client.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                             allow_redirects=False)


async def lapse(client: TestClient) -> Any:
    await change_rows(client, unassign("csr-carol", "acme"))
    return await client.get("/cart", allow_redirects=False)


@pytest.mark.parametrize("switch", [start, stop, lapse], ids=["start", "stop", "lapse"])
async def test_identity_switch_clears_shop_cookies_and_rotates_session(make_gateway,
                                                                      switch) -> None:
    """Every switch (start, stop, lapse) sets a new session id and expires exactly the shop
    cookies named in upstream.session_cookies, so the shop never mixes two people's state."""
    client = await make_gateway(upstream={"session_cookies": ("shop_sess", "PHPSESSID")})
    await login(client, "csr-carol")
    if switch is not start:
        assert (await start(client)).status == 303
    before = next(c.value for c in client.session.cookie_jar if c.key == "csrgw_session")
    resp = await switch(client)
    cleared = sorted(c.split("=")[0] for c in resp.headers.getall("Set-Cookie")
                     if "Max-Age=0" in c)
    assert cleared == ["PHPSESSID", "shop_sess"]
    after = next(c.value for c in client.session.cookie_jar if c.key == "csrgw_session")
    assert before != after
    assert await gw_of(client).sessions.get(before) is None


async def test_impersonation_header_and_banner_only_for_the_csr(gateway, upstream,
                                                                buyer_browser) -> None:
    """X-Impersonation and the banner while acting; neither in the buyer's own session."""
    await login(gateway, "csr-carol")
    await impersonate(gateway, "buyer-alice")
    resp = await gateway.get("/cart")
    assert resp.headers["X-Impersonation"] == "csr-carol as buyer-alice"
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert "Logged In As Alice Anders (Acme Corp)" in await resp.text()
    json_resp = await gateway.get("/api/orders")
    assert "Logged In As" not in await json_resp.text()
    status, page, headers = await buyer_browser.get("/cart")
    assert status == 200 and "Logged In As" not in page and "Log in as buyer" not in page
    assert "X-Impersonation" not in headers
    assert upstream.last.header("X-Impersonator") is None
