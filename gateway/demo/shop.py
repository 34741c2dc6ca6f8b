"""The demo shop application: pages that trust the gateway and show who they think you are."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import jinja2
from aiohttp import web

from gateway.demo import pages
from gateway.demo.state import SHOP_STATE, ShopState
from gateway.demo.trust import AssertionVerifier, Untrusted, identify
from gateway.settings import HeaderNames

HERE = Path(__file__).parent
WHO = web.RequestKey("who", dict)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
TRUST = web.AppKey("trust", tuple)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def trust_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the stylesheet needs an identity the shop believes."""
    if request.path.startswith("/static/"):
        return await handler(request)
    names, verifier = request.app[TRUST]
    try:
        request[WHO] = await identify(request, names, verifier)
    except Untrusted as exc:
        return web.Response(status=401, text=f"untrusted request: {exc}",
                            content_type="text/plain")
    response = await handler(request)
    if "sessionid" not in request.cookies:  # the shop's own session, as a legacy shop has
        response.set_cookie("sessionid", secrets.token_hex(16), httponly=True, path="/")
    return response


def create_shop_app(*, jwks_url: str | None = None, audience: str = "csr-demo-shop",
                    state: ShopState | None = None,
                    headers: HeaderNames | None = None) -> web.Application:
    app = web.Application(middlewares=[trust_middleware])
    app[SHOP_STATE] = state or ShopState()
    app[TRUST] = (headers or HeaderNames(),
                  AssertionVerifier(jwks_url, audience) if jwks_url else None)
    app[TEMPLATES] = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                        autoescape=True)
    pages.add_routes(app)
    app.router.add_static("/static", HERE / "static")
    return app


def render(request: web.Request, template: str, status: int = 200,
           **values: object) -> web.Response:
    html = request.app[TEMPLATES].get_template(template).render(
        who=request[WHO], path=request.path, **values)
    return web.Response(text=html, status=status, content_type="text/html")
