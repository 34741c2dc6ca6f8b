"""The demo shop: identity from headers, shared carts, recorded orders, the verified assertion."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.demo import trust
from gateway.demo.shop import SHOP_STATE, create_shop_app

ALICE = {"X-Remote-User": "buyer-alice", "X-Remote-Company": "acme",
         "X-Remote-Groups": "Buyer", "X-Request-Id": "req-1"}
CAROL_AS_ALICE = {**ALICE, "X-Impersonator": "csr-carol"}
CAROL = {"X-Remote-User": "csr-carol", "X-Remote-Groups": "CSR"}
IVAN = {"X-Remote-User": "buyer-ivan", "X-Remote-Company": "initech"}

ShopFactory = Callable[..., Awaitable[TestClient]]


@dataclass
class Issuer:
    """Plays the gateway's signer: Ed25519 keys, served as a JWKS on loopback."""

    keys: dict[str, ed25519.Ed25519PrivateKey] = field(default_factory=dict)
    fetches: int = 0
    url: str = ""

    def add_key(self, kid: str) -> None:
        self.keys[kid] = ed25519.Ed25519PrivateKey.generate()

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        found = [{**jwt.algorithms.OKPAlgorithm.to_jwk(k.public_key(), as_dict=True),
                  "kid": kid, "alg": "EdDSA", "use": "sig"} for kid, k in self.keys.items()]
        return web.json_response({"keys": found})

    def token(self, headers: dict[str, str], kid: str = "k1",
              key: ed25519.Ed25519PrivateKey | None = None, **changes: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "csr-gateway", "sub": headers["X-Remote-User"], "aud": "csr-demo-shop",
            "company": headers.get("X-Remote-Company"), "sid": "s-1", "policy_rev": "r1",
            "iat": now, "exp": now + 60}
        if "X-Impersonator" in headers:
            claims |= {"act": {"sub": headers["X-Impersonator"]},
                       "impersonation_reason": "TICKET-7"}
        claims = {k: v for k, v in (claims | changes).items() if v is not None}
        return jwt.encode(claims, key or self.keys[kid], algorithm="EdDSA",
                          headers={"kid": kid})


@pytest.fixture
async def issuer(aiohttp_server: Any) -> Issuer:
    found = Issuer()
    found.add_key("k1")
    app = web.Application()
    app.router.add_get("/jwks.json", found.jwks)
    server = await aiohttp_server(app)
    found.url = str(server.make_url("/jwks.json"))
    return found


@pytest.fixture
def make_shop(aiohttp_client: Any) -> ShopFactory:
    async def make(**kw: Any) -> TestClient:
        client: TestClient = await aiohttp_client(create_shop_app(**kw))
        return client
    return make


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


async def add(client: TestClient, headers: dict[str, str], sku: str, qty: int = 1) -> None:
    resp = await client.post("/cart/add", data={"sku": sku, "qty": str(qty)}, headers=headers,
                             allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/cart")


@pytest.mark.parametrize("path", ["/", "/products/BC-100", "/cart", "/checkout", "/orders",
                                  "/print-services", "/saved-jobs", "/reports", "/account",
                                  "/account/password", "/admin", "/admin/users"])
@pytest.mark.parametrize(("headers", "strip", "csr_shown"), [
    (ALICE, "Signed in as buyer-alice (acme)", False),
    (CAROL_AS_ALICE, "Signed in as buyer-alice (acme) · placed by CSR csr-carol", True),
], ids=["buyer", "csr-as-buyer"])
async def test_every_page_says_who_the_shop_thinks_you_are(make_shop, path, headers, strip,
                                                           csr_shown) -> None:
    """Each page shows the user, company and acting CSR, and ends in a real </body></html>."""
    client = await make_shop()
    resp = await client.get(path, headers=headers)
    html = await resp.text()
    assert resp.status == 200
    assert strip in text_of(html)
    assert ("csr-carol" in html) is csr_shown
    assert html.rstrip().endswith("</body></html>")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/"), ("GET", "/cart"), ("POST", "/checkout"), ("GET", "/api/orders"),
    ("GET", "/debug/headers"), ("GET", "/admin/x"),
], ids=["catalog", "cart", "checkout", "api", "debug", "admin"])
async def test_no_identity_is_401(make_shop, method, path) -> None:
    """Without X-Remote-User every page but the stylesheet is refused."""
    client = await make_shop()
    resp = await client.request(method, path, headers={"X-Remote-User": " "})
    assert resp.status == 401
    assert "no identity" in await resp.text()


async def test_stylesheet_is_public(make_shop) -> None:
    """/static/shop.css needs no identity."""
    resp = await (await make_shop()).get("/static/shop.css")
    assert resp.status == 200
    assert resp.content_type == "text/css"


@pytest.mark.parametrize(("headers", "impersonator"), [
    (ALICE, None), (CAROL_AS_ALICE, "csr-carol"),
], ids=["buyer", "csr-as-buyer"])
async def test_checkout_records_order_for_the_buyer(make_shop, headers, impersonator) -> None:
    """An order belongs to the effective user and names the CSR who placed it."""
    client = await make_shop()
    await add(client, headers, "BC-100", 2)
    resp = await client.post("/checkout", data={"po_number": "PO-9"}, headers=headers,
                             allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/orders/1")
    (order,) = client.app[SHOP_STATE].orders
    assert (order.user, order.company, order.impersonator, order.po_number) == (
        "buyer-alice", "acme", impersonator, "PO-9")
    assert (order.request_id, order.total, order.items[0]["qty"]) == ("req-1", "43.20", 2)
    assert (order.assertion_sub, order.assertion_act) == (None, None)  # legacy mode
    assert client.app[SHOP_STATE].cart("buyer-alice") == {}
    page = text_of(await (await client.get("/orders/1", headers=headers)).text())
    placed = f"Placed by {impersonator} on behalf of buyer-alice" if impersonator else (
        "Placed by buyer-alice (acme)")
    assert placed in page


async def test_buyer_and_csr_share_one_cart(make_shop) -> None:
    """the buyer's cart is the CSR-as-buyer's cart; the CSR's own cart stays apart."""
    client = await make_shop()
    await add(client, ALICE, "STK-50")
    await add(client, CAROL_AS_ALICE, "POS-A2", 3)
    await add(client, CAROL, "BAN-3M")
    state = client.app[SHOP_STATE]
    assert state.carts == {"buyer-alice": {"STK-50": 1, "POS-A2": 3}, "csr-carol": {"BAN-3M": 1}}
    page = await (await client.get("/cart", headers=ALICE)).text()
    assert "Stickers, 50" in page and "Poster A2" in page and "Roll-up banner" not in page
    await client.post("/cart/remove", data={"sku": "STK-50"}, headers=CAROL_AS_ALICE)
    assert state.cart("buyer-alice") == {"POS-A2": 3}


@pytest.mark.parametrize(("headers", "price"), [
    (ALICE, "$21.60"), ({**ALICE, "X-Remote-Company": "globex"}, "$22.80"), (IVAN, "$24.00"),
], ids=["acme-10pct", "globex-5pct", "initech-list"])
async def test_prices_are_the_buyers(make_shop, headers, price) -> None:
    """the catalog shows the effective user's company price."""
    page = await (await (await make_shop()).get("/products/BC-100", headers=headers)).text()
    assert price in page


@pytest.mark.parametrize(("method", "path", "form", "status", "where"), [
    ("POST", "/cart/add", {"sku": "NOPE"}, 400, None),
    ("POST", "/cart/add", {"sku": "BC-100", "qty": "lots"}, 400, None),
    ("POST", "/checkout", {}, 400, None),
    ("POST", "/quotes", {}, 400, None),
    ("GET", "/orders/99", None, 404, None),
    ("GET", "/products/NOPE", None, 404, None),
    ("POST", "/saved-jobs", {"name": "Spring flyer"}, 303, "/saved-jobs"),
    ("POST", "/account", {"display_name": "Alice", "phone": "555"}, 303, "/account"),
    ("POST", "/print-services/order", {}, 303, "/orders/1"),
], ids=["unknown-sku", "bad-qty", "empty-checkout", "empty-quote", "no-order", "no-product",
        "save-job", "profile", "print-run"])
async def test_forms_answer(make_shop, method, path, form, status, where) -> None:
    """Forms redirect with 303 when they work and refuse bad input plainly."""
    client = await make_shop()
    resp = await client.request(method, path, data=form, headers=ALICE, allow_redirects=False)
    assert resp.status == status
    assert resp.headers.get("Location") == where


async def test_quote_saved_job_account_and_credentials_are_recorded(make_shop) -> None:
    """Quotes keep the cart, saved jobs and profiles are per user, credential posts recorded."""
    client = await make_shop()
    state = client.app[SHOP_STATE]
    await add(client, CAROL_AS_ALICE, "FLY-A4")
    resp = await client.post("/quotes", headers=CAROL_AS_ALICE, allow_redirects=False)
    assert resp.headers["Location"] == "/quotes/1"
    (quote,) = state.quotes
    assert (quote.kind, quote.user, quote.impersonator, state.orders) == (
        "quote", "buyer-alice", "csr-carol", [])
    assert "Quote confirmation #1" in await (await client.get("/quotes/1", headers=ALICE)).text()
    assert state.cart("buyer-alice") == {"FLY-A4": 1}
    await client.post("/saved-jobs", data={"name": "Spring flyer"}, headers=ALICE)
    assert "Spring flyer" in await (await client.get("/saved-jobs", headers=ALICE)).text()
    await client.post("/account", data={"display_name": "Alice A", "phone": "555"}, headers=ALICE)
    assert state.profiles["buyer-alice"] == {"display_name": "Alice A", "phone": "555"}
    await client.post("/account/password", data={"value": "x"}, headers=ALICE)
    assert [e["event"] for e in state.events] == ["profile_changed", "password_changed"]


async def test_orders_are_seen_by_the_company_and_assignable(make_shop) -> None:
    """A colleague sees the company's orders, another company does not; assigning records."""
    client = await make_shop()
    await add(client, ALICE, "BC-100")
    await client.post("/checkout", headers=ALICE)
    colleague = {"X-Remote-User": "buyer-amy", "X-Remote-Company": "acme"}
    assert (await client.get("/orders/1", headers=colleague)).status == 200
    assert (await client.get("/orders/1", headers=IVAN)).status == 404
    assert await (await client.get("/api/orders", headers=IVAN)).json() == []
    (row,) = await (await client.get("/api/orders", headers=colleague)).json()
    assert (row["id"], row["user"]) == (1, "buyer-alice")
    sam = {"X-Remote-User": "sales-sam", "X-Remote-Groups": "Sales Admin"}
    resp = await client.post("/orders/1/assign", data={"csr": "csr-carol"}, headers=sam,
                             allow_redirects=False)
    assert resp.status == 303
    assert client.app[SHOP_STATE].orders[0].assigned_csr == "csr-carol"
    assert "Assigned to CSR csr-carol" in await (await client.get("/orders/1", headers=sam)).text()


async def test_shop_sets_its_own_session_cookie_once(make_shop) -> None:
    """The first visit gets an HttpOnly `sessionid`; later visits keep it."""
    client = await make_shop()
    first = await client.get("/", headers=ALICE)
    assert first.cookies["sessionid"]["httponly"]
    assert "sessionid" not in (await client.get("/", headers=ALICE)).cookies


async def test_debug_headers_echoes_every_spelling(make_shop) -> None:
    """/debug/headers shows what arrived, so stripping can be demonstrated."""
    client = await make_shop()
    got = await (await client.get("/debug/headers", headers={**ALICE, "X_Remote_User": "x"})).json()
    assert (got["X-Remote-User"], got["X_Remote_User"]) == ("buyer-alice", "x")


async def test_legacy_mode_trusts_headers_alone(make_shop, issuer) -> None:
    """Without a JWKS URL the shop believes the headers and ignores any assertion."""
    client = await make_shop()
    resp = await client.get("/", headers={**ALICE, "X-Gateway-Assertion": "garbage"})
    assert resp.status == 200
    assert issuer.fetches == 0


def _other_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


# (headers sent, how the token is made from the issuer, expected status, reason in the page)
VERDICTS: list[tuple[str, dict[str, str], Callable[[Issuer], str | None], int, str]] = [
    ("buyer", ALICE, lambda i: i.token(ALICE), 200, ""),
    ("csr-as-buyer", CAROL_AS_ALICE, lambda i: i.token(CAROL_AS_ALICE), 200, ""),
    ("missing", ALICE, lambda i: None, 401, "no assertion"),
    ("garbage", ALICE, lambda i: "not.a.jwt", 401, "malformed assertion"),
    ("wrong-aud", ALICE, lambda i: i.token(ALICE, aud="other-shop"), 401, "Audience"),
    ("expired", ALICE, lambda i: i.token(ALICE, exp=int(time.time()) - 120), 401, "expired"),
    ("bad-signature", ALICE, lambda i: i.token(ALICE, key=_other_key()), 401, "Signature"),
    ("unknown-kid", ALICE, lambda i: i.token(ALICE, kid="k9", key=_other_key()), 401,
     "unknown signing key"),
    ("no-exp", ALICE, lambda i: i.token(ALICE, exp=None), 401, "exp"),
    ("other-sub", ALICE, lambda i: i.token(ALICE, sub="buyer-bob"), 401, "disagree"),
    ("act-not-in-headers", ALICE, lambda i: i.token(CAROL_AS_ALICE), 401, "disagree"),
    ("headers-claim-csr", CAROL_AS_ALICE, lambda i: i.token(ALICE), 401, "disagree"),
    ("other-csr", {**CAROL_AS_ALICE, "X-Impersonator": "csr-dave"},
     lambda i: i.token(CAROL_AS_ALICE), 401, "disagree"),
    ("act-not-object", CAROL_AS_ALICE, lambda i: i.token(CAROL_AS_ALICE, act="csr-carol"), 401,
     "malformed act"),
    ("hs256", ALICE, lambda i: jwt.encode({"sub": "buyer-alice"}, "s" * 32, algorithm="HS256",
                                          headers={"kid": "k1"}), 401, "alg"),
]


@pytest.mark.parametrize(("headers", "make_token", "status", "why"),
                         [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS])
async def test_assertion_must_confirm_the_headers(make_shop, issuer, headers, make_token,
                                                  status, why) -> None:
    """With a JWKS URL only headers a valid assertion for this shop confirms are believed."""
    client = await make_shop(jwks_url=issuer.url)
    token = make_token(issuer)
    sent = headers if token is None else {**headers, "X-Gateway-Assertion": token}
    resp = await client.get("/cart", headers=sent)
    body = await resp.text()
    assert resp.status == status, body
    if status == 401:
        assert body.startswith("untrusted request: ") and why in body
    else:
        assert "verified" in text_of(body)


async def test_verified_order_carries_the_assertion(make_shop, issuer) -> None:
    """The order records the assertion's sub, act.sub and reason beside the headers."""
    client = await make_shop(jwks_url=issuer.url)
    sent = {**CAROL_AS_ALICE, "X-Gateway-Assertion": issuer.token(CAROL_AS_ALICE)}
    await add(client, sent, "POS-A1")
    await client.post("/checkout", headers=sent)
    (order,) = client.app[SHOP_STATE].orders
    assert (order.assertion_sub, order.assertion_act, order.impersonation_reason) == (
        "buyer-alice", "csr-carol", "TICKET-7")
    assert issuer.fetches == 1  # cached across requests


async def test_unknown_kid_refetches_the_jwks(make_shop, issuer, monkeypatch) -> None:
    """A rotated key is picked up by refetching the JWKS when an unknown kid arrives."""
    monkeypatch.setattr(trust, "REFETCH_AFTER", 0.0)
    client = await make_shop(jwks_url=issuer.url)
    first = {**ALICE, "X-Gateway-Assertion": issuer.token(ALICE)}
    assert (await client.get("/", headers=first)).status == 200
    issuer.add_key("k2")
    rotated = {**ALICE, "X-Gateway-Assertion": issuer.token(ALICE, kid="k2")}
    assert (await client.get("/", headers=rotated)).status == 200
    assert issuer.fetches == 2


async def test_unreachable_jwks_fails_closed(make_shop) -> None:
    """If the JWKS cannot be fetched no identity is believed."""
    client = await make_shop(jwks_url="http://127.0.0.1:1/jwks.json")
    resp = await client.get("/", headers={**ALICE, "X-Gateway-Assertion": "a.b.c"})
    assert resp.status == 401
