"""The demo shop's pages: catalog, cart, checkout, orders, print, saved jobs, account, admin."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.demo.state import CATALOG, SHOP_STATE, price_for


def _who(request: web.Request) -> dict:  # type: ignore[type-arg]
    from gateway.demo.shop import WHO

    return request[WHO]


def _render(request: web.Request, template: str, **values: Any) -> web.Response:
    from gateway.demo.shop import render

    return render(request, template, 200, **values)


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def catalog(request: web.Request) -> web.StreamResponse:
    company = _who(request)["company"]
    products = [(p, price_for(p, company)) for p in CATALOG.values()]
    return _render(request, "catalog.html", products=products)


async def product(request: web.Request) -> web.StreamResponse:
    found = CATALOG.get(request.match_info["sku"])
    if found is None:
        raise web.HTTPNotFound(text="no such product")
    return _render(request, "product.html", product=found,
                   price=price_for(found, _who(request)["company"]))


async def cart(request: web.Request) -> web.StreamResponse:
    who = _who(request)
    lines = [(CATALOG[sku], qty, price_for(CATALOG[sku], who["company"]))
             for sku, qty in request.app[SHOP_STATE].cart(who["user"]).items()]
    return _render(request, "cart.html", lines=lines,
                   total=sum((price * qty for _, qty, price in lines), 0))


async def cart_add(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sku = str(form.get("sku", ""))
    if sku not in CATALOG:
        raise web.HTTPBadRequest(text="unknown product")
    qty = max(1, min(999, int(str(form.get("qty", "1")) or 1)))
    items = request.app[SHOP_STATE].cart(_who(request)["user"])
    items[sku] = items.get(sku, 0) + qty
    return _see("/cart")


async def cart_remove(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    request.app[SHOP_STATE].cart(_who(request)["user"]).pop(str(form.get("sku", "")), None)
    return _see("/cart")


async def checkout_form(request: web.Request) -> web.StreamResponse:
    return await cart(request)


async def checkout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    state, who = request.app[SHOP_STATE], _who(request)
    if not state.cart(who["user"]):
        raise web.HTTPBadRequest(text="the cart is empty")
    order = state.place("order", who, str(form.get("po_number", ""))[:40])
    return _see(f"/orders/{order.id}")


async def quote(request: web.Request) -> web.StreamResponse:
    state, who = request.app[SHOP_STATE], _who(request)
    order = state.place("quote", who)
    return _see(f"/quotes/{order.id}")


def _visible(request: web.Request) -> list:  # type: ignore[type-arg]
    who = _who(request)
    return [o for o in request.app[SHOP_STATE].orders
            if o.user == who["user"] or (who["company"] and o.company == who["company"])
            or "Administrator" in who["groups"] or "Sales Admin" in who["groups"]]


async def orders(request: web.Request) -> web.StreamResponse:
    return _render(request, "orders.html", orders=list(reversed(_visible(request))))


async def order(request: web.Request) -> web.StreamResponse:
    wanted = int(request.match_info["id"]) if request.match_info["id"].isdigit() else -1
    found = next((o for o in _visible(request) if o.id == wanted), None)
    if found is None:
        raise web.HTTPNotFound(text="no such order")
    return _render(request, "order.html", order=found)


async def assign(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    wanted = int(request.match_info["id"]) if request.match_info["id"].isdigit() else -1
    found = next((o for o in request.app[SHOP_STATE].orders if o.id == wanted), None)
    if found is None:
        raise web.HTTPNotFound(text="no such order")
    found.assigned_csr = str(form.get("csr", ""))[:64] or None
    return _see(f"/orders/{found.id}")


async def orders_api(request: web.Request) -> web.StreamResponse:
    return web.json_response([o.as_json() for o in _visible(request)])


async def print_services(request: web.Request) -> web.StreamResponse:
    return _render(request, "print.html")


async def print_order(request: web.Request) -> web.StreamResponse:
    state, who = request.app[SHOP_STATE], _who(request)
    state.cart(who["user"])["FLY-A5"] = state.cart(who["user"]).get("FLY-A5", 0) + 1
    order = state.place("print", who)
    return _see(f"/orders/{order.id}")


async def saved_jobs(request: web.Request) -> web.StreamResponse:
    state, who = request.app[SHOP_STATE], _who(request)
    jobs = state.saved_jobs.setdefault(who["user"], [])
    if request.method == "POST":
        name = str((await request.post()).get("name", "")).strip()[:80]
        if name:
            jobs.append(name)
        return _see("/saved-jobs")
    return _render(request, "saved_jobs.html", jobs=jobs)


async def reports(request: web.Request) -> web.StreamResponse:
    rows = _visible(request)
    return _render(request, "reports.html", count=len(rows),
                   total=sum(float(o.total) for o in rows), orders=rows)


async def account(request: web.Request) -> web.StreamResponse:
    state, who = request.app[SHOP_STATE], _who(request)
    profile = state.profiles.setdefault(who["user"], {"display_name": who["user"], "phone": ""})
    if request.method == "POST":
        form = await request.post()
        profile.update({k: str(form.get(k, ""))[:80] for k in ("display_name", "phone")})
        state.record("profile_changed", who)
        return _see("/account")
    return _render(request, "account.html", profile=profile)


def credential_page(title: str, field: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            request.app[SHOP_STATE].record(f"{field}_changed", _who(request))
            return _render(request, "credential.html", title=title, field=field, done=True)
        return _render(request, "credential.html", title=title, field=field, done=False)
    return handler


async def admin(request: web.Request) -> web.StreamResponse:
    return _render(request, "admin.html", state=request.app[SHOP_STATE])


async def headers(request: web.Request) -> web.StreamResponse:
    return web.json_response(dict(request.headers))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", catalog)
    r.add_get("/products/{sku}", product)
    r.add_get("/cart", cart)
    r.add_post("/cart/add", cart_add)
    r.add_post("/cart/remove", cart_remove)
    r.add_get("/checkout", checkout_form)
    r.add_post("/checkout", checkout)
    r.add_post("/quotes", quote)
    r.add_get("/quotes/{id}", order)
    r.add_get("/orders", orders)
    r.add_get("/orders/{id}", order)
    r.add_post("/orders/{id}/assign", assign)
    r.add_get("/api/orders", orders_api)
    r.add_get("/print-services", print_services)
    r.add_post("/print-services/order", print_order)
    r.add_route("*", "/saved-jobs", saved_jobs)
    r.add_get("/reports", reports)
    r.add_route("*", "/account", account)
    r.add_route("*", "/account/password", credential_page("Change password", "password"))
    r.add_route("*", "/account/email", credential_page("Change email", "email"))
    r.add_route("*", "/account/2fa", credential_page("Two-factor authentication", "2fa"))
    r.add_get("/admin", admin)
    r.add_route("*", "/admin/{tail:.*}", admin)
    r.add_get("/debug/headers", headers)
