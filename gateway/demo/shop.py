"""The demo shop application: pages that trust the gateway and show who they think you are."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from gateway.core.settings import HeaderNames
from gateway.demo import account, shopping
from gateway.demo.state import SHOP_STATE, Order, ShopState
from gateway.demo.trust import AssertionVerifier, Shopper, Untrusted, identify
from gateway.demo.view import HERE, TEMPLATES, WHO, Handler, templates

__all__ = ["SHOP_STATE", "TRUST", "Order", "ShopState", "Shopper", "create_shop_app",
           "run_shop"]

# (header names, verifier or None in legacy mode); tests point the verifier at a JWKS
TRUST = web.AppKey("trust", tuple)
SESSION_COOKIE = "sessionid"


@web.middleware
async def trust_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the stylesheet needs an identity the shop believes."""
    if request.path.startswith("/static/"):
        return await handler(request)
    names, verifier = request.app[TRUST]
    try:
        request[WHO] = await identify(request, names, verifier)
    except Untrusted as exc:
        return web.Response(status=401, text=f"untrusted request: {exc}\n",
                            content_type="text/plain")
    response = await handler(request)
    if SESSION_COOKIE not in request.cookies:  # the shop's own session, as a legacy shop has
        response.set_cookie(SESSION_COOKIE, secrets.token_hex(16), httponly=True, path="/",
                            samesite="Lax")
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    """The URLs the gateway's route table relies on (config/gateway.yaml)."""
    router.add_get("/", shopping.catalog)
    router.add_get("/products/{sku}", shopping.product)
    router.add_get("/cart", shopping.cart)
    router.add_post("/cart/add", shopping.cart_add)
    router.add_post("/cart/remove", shopping.cart_remove)
    router.add_get("/checkout", shopping.cart)
    router.add_post("/checkout", shopping.checkout)
    router.add_post("/quotes", shopping.quote)
    router.add_get("/quotes/{id}", shopping.quote_page)
    router.add_get("/orders", shopping.orders)
    router.add_get("/orders/{id}", shopping.order)
    router.add_post("/orders/{id}/assign", shopping.assign)
    router.add_get("/api/orders", shopping.orders_api)
    router.add_get("/print-services", account.print_services)
    router.add_post("/print-services/order", account.print_order)
    router.add_get("/saved-jobs", account.saved_jobs)
    router.add_post("/saved-jobs", account.save_job)
    router.add_get("/reports", account.reports)
    router.add_get("/account", account.account)
    router.add_post("/account", account.save_account)
    for path, title, field in (("/account/password", "Change password", "password"),
                               ("/account/email", "Change email", "email"),
                               ("/account/2fa", "Two-factor authentication", "2fa")):
        page = account.credential_page(title, field)
        router.add_get(path, page)
        router.add_post(path, page)
    router.add_get("/admin", account.admin)
    router.add_route("*", "/admin/{tail:.*}", account.admin)
    router.add_get("/debug/headers", account.debug_headers)
    router.add_static("/static", HERE / "static")


def create_shop_app(*, jwks_url: str | None = None, audience: str = "csr-demo-shop",
                    state: ShopState | None = None,
                    headers: HeaderNames | None = None) -> web.Application:
    """The shop; with `jwks_url` it believes only headers the gateway's assertion confirms."""
    app = web.Application(middlewares=[trust_middleware])
    app[SHOP_STATE] = state if state is not None else ShopState()
    app[TRUST] = (headers or HeaderNames(),
                  AssertionVerifier(jwks_url, audience) if jwks_url else None)
    app[TEMPLATES] = templates()
    add_routes(app.router)
    return app


def run_shop(host: str = "127.0.0.1", port: int = 8081, **kw: Any) -> None:
    """Serve the shop alone (blocking), e.g. to put another gateway in front of it."""
    web.run_app(create_shop_app(**kw), host=host, port=port, access_log=None)
