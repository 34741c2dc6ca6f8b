"""The demo shop's other pages: print services, saved jobs, reports, account, admin, debug."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from gateway.demo.shopping import visible
from gateway.demo.state import SHOP_STATE
from gateway.demo.view import Handler, form, render, see_other, shopper

QUICK_PRINT_SKU = "FLY-A5"


async def print_services(request: web.Request) -> web.StreamResponse:
    return render(request, "print.html")


async def print_order(request: web.Request) -> web.StreamResponse:
    """A one-click print run: one quick-print item, ordered for the effective user."""
    state, who = request.app[SHOP_STATE], shopper(request)
    cart = state.cart(who.user)
    kept = dict(cart)
    cart.clear()
    cart[QUICK_PRINT_SKU] = 1
    order = state.place("print", who)
    cart.update(kept)  # the print run leaves the shopping cart as it was
    return see_other(f"/orders/{order.id}")


async def saved_jobs(request: web.Request) -> web.StreamResponse:
    return render(request, "saved_jobs.html",
                  jobs=request.app[SHOP_STATE].saved_jobs.get(shopper(request).user, []))


async def save_job(request: web.Request) -> web.StreamResponse:
    name = (await form(request)).get("name", "").strip()[:80]
    if not name:
        raise web.HTTPBadRequest(text="a saved job needs a name")
    request.app[SHOP_STATE].saved_jobs.setdefault(shopper(request).user, []).append(name)
    return see_other("/saved-jobs")


async def reports(request: web.Request) -> web.StreamResponse:
    rows = visible(request, request.app[SHOP_STATE].orders)
    total = sum((Decimal(o.total) for o in rows), Decimal("0"))
    return render(request, "reports.html", orders=rows, total=total)


def _profile(request: web.Request) -> dict[str, str]:
    user = shopper(request).user
    return request.app[SHOP_STATE].profiles.setdefault(
        user, {"display_name": user, "phone": ""})


async def account(request: web.Request) -> web.StreamResponse:
    return render(request, "account.html", profile=_profile(request))


async def save_account(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    _profile(request).update({k: fields.get(k, "").strip()[:80]
                              for k in ("display_name", "phone")})
    request.app[SHOP_STATE].record("profile_changed", shopper(request))
    return see_other("/account")


def credential_page(title: str, field: str) -> Handler:
    """A pretend credential page; a POST records `<field>_changed` (the gateway guards it)."""
    async def handler(request: web.Request) -> web.StreamResponse:
        done = request.method == "POST"
        if done:
            await request.post()
            request.app[SHOP_STATE].record(f"{field}_changed", shopper(request))
        return render(request, "credential.html", title=title, field=field, done=done)
    return handler


async def admin(request: web.Request) -> web.StreamResponse:
    return render(request, "admin.html", state=request.app[SHOP_STATE])


async def debug_headers(request: web.Request) -> web.StreamResponse:
    """Every header as received (repeats joined), to show what the gateway stripped."""
    seen: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        seen.setdefault(name, []).append(value)
    return web.json_response({name: ", ".join(values) for name, values in seen.items()})
