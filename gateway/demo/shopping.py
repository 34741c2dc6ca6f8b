"""The demo shop's buying pages: catalog, cart, checkout, quotes, orders and their API."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from gateway.demo.state import CATALOG, SHOP_STATE, Order, price_for
from gateway.demo.trust import Shopper
from gateway.demo.view import form, render, see_other, shopper

SEES_ALL = frozenset({"Administrator", "Sales Admin"})


async def catalog(request: web.Request) -> web.StreamResponse:
    company = shopper(request).company
    products = [(p, price_for(p, company)) for p in CATALOG.values()]
    return render(request, "catalog.html", products=products)


async def product(request: web.Request) -> web.StreamResponse:
    found = CATALOG.get(request.match_info["sku"])
    if found is None:
        raise web.HTTPNotFound(text="no such product")
    return render(request, "product.html", product=found,
                  price=price_for(found, shopper(request).company))


async def cart(request: web.Request) -> web.StreamResponse:
    who = shopper(request)
    lines = [(CATALOG[sku], qty, price_for(CATALOG[sku], who.company))
             for sku, qty in request.app[SHOP_STATE].cart(who.user).items()]
    total = sum((price * qty for _, qty, price in lines), Decimal("0"))
    heading = "Checkout" if request.path == "/checkout" else "Cart"
    return render(request, "cart.html", lines=lines, total=total, heading=heading)


def _quantity(text: str) -> int:
    try:
        return max(1, min(999, int(text or "1")))
    except ValueError:
        raise web.HTTPBadRequest(text="quantity must be a number") from None


async def cart_add(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    sku = fields.get("sku", "")
    if sku not in CATALOG:
        raise web.HTTPBadRequest(text="unknown product")
    items = request.app[SHOP_STATE].cart(shopper(request).user)
    items[sku] = min(999, items.get(sku, 0) + _quantity(fields.get("qty", "1")))
    return see_other("/cart")


async def cart_remove(request: web.Request) -> web.StreamResponse:
    sku = (await form(request)).get("sku", "")
    request.app[SHOP_STATE].cart(shopper(request).user).pop(sku, None)
    return see_other("/cart")


def _nonempty_cart(request: web.Request) -> None:
    if not request.app[SHOP_STATE].cart(shopper(request).user):
        raise web.HTTPBadRequest(text="the cart is empty")


async def checkout(request: web.Request) -> web.StreamResponse:
    po_number = (await form(request)).get("po_number", "").strip()[:40]
    _nonempty_cart(request)
    order = request.app[SHOP_STATE].place("order", shopper(request), po_number)
    return see_other(f"/orders/{order.id}")


async def quote(request: web.Request) -> web.StreamResponse:
    _nonempty_cart(request)
    order = request.app[SHOP_STATE].place("quote", shopper(request))
    return see_other(f"/quotes/{order.id}")


def may_see(who: Shopper, order: Order) -> bool:
    """The user's own orders, the company's, or all of them for shop-wide roles."""
    return (order.user == who.user or (who.company is not None and order.company == who.company)
            or not SEES_ALL.isdisjoint(who.groups))


def visible(request: web.Request, records: list[Order]) -> list[Order]:
    who = shopper(request)
    return [o for o in records if may_see(who, o)]


def _find(request: web.Request, records: list[Order]) -> Order:
    wanted = request.match_info["id"]
    found = next((o for o in visible(request, records) if str(o.id) == wanted), None)
    if found is None:
        raise web.HTTPNotFound(text="no such order")
    return found


async def orders(request: web.Request) -> web.StreamResponse:
    state = request.app[SHOP_STATE]
    mine = sorted(visible(request, state.orders + state.quotes), key=lambda o: -o.id)
    return render(request, "orders.html", orders=mine)


async def order(request: web.Request) -> web.StreamResponse:
    return render(request, "order.html", order=_find(request, request.app[SHOP_STATE].orders))


async def quote_page(request: web.Request) -> web.StreamResponse:
    return render(request, "order.html", order=_find(request, request.app[SHOP_STATE].quotes))


async def assign(request: web.Request) -> web.StreamResponse:
    """Any caller may assign here: the gateway decides who reaches this."""
    csr = (await form(request)).get("csr", "").strip()[:64] or None
    found = next((o for o in request.app[SHOP_STATE].orders
                  if str(o.id) == request.match_info["id"]), None)
    if found is None:
        raise web.HTTPNotFound(text="no such order")
    found.assigned_csr = csr
    request.app[SHOP_STATE].record("order_assigned", shopper(request), order=found.id, csr=csr)
    return see_other(f"/orders/{found.id}")


async def orders_api(request: web.Request) -> web.StreamResponse:
    return web.json_response([o.as_json() for o in visible(request,
                                                           request.app[SHOP_STATE].orders)])
