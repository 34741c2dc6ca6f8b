"""Error and page responses: HTML for browsers, JSON for API clients, nothing internal."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from markupsafe import Markup, escape

from gateway.core import i18n
from gateway.core.areas import admin_title
from gateway.core.errors import GatewayError, MethodNotAllowed, Unauthenticated
from gateway.core.reasons import sentence
from gateway.request.canon import Target
from gateway.runtime.context import CTX
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.impersonation import ImpersonationEnded
from gateway.runtime.render import render_banner, rendered_once

LOGIN = "/_gateway/login"
SERVER = "csr-gateway"
# set on a response relayed from the shop: its headers are its own
FROM_SHOP = web.ResponseKey("csrgw_from_shop", bool)
# Scripts only from the gateway's own static files; inline style attributes are in the templates.
OWN_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def own_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer the gateway writes itself cannot be framed and names no software; the
    shop's relayed answers keep the shop's headers."""
    if response.get(FROM_SHOP):
        return
    response.headers["Server"] = SERVER
    for name, value in OWN_PAGE_HEADERS.items():
        response.headers.setdefault(name, value)


def wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return True
    return request.path.startswith("/_gateway/api/")


def render(request: web.Request, template: str, status: int = 200,
           **values: Any) -> web.Response:
    response = web.Response(text=_html(request, template, values), status=status,
                            content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _html(request: web.Request, template: str, values: dict[str, Any]) -> str:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    session = ctx.session
    overlay = ""
    if ctx.actor is not None and ctx.actor.acting_as is not None and session is not None \
            and session.impersonation is not None:
        overlay = Markup(render_banner(gw, ctx).decode())
    return gw.templates.get_template(template).render(
        actor=ctx.actor, session=session, csrf_token=session.csrf_token if session else "",
        directory=gw.directory.snapshot, overlay=overlay, **values)


REQUEST_ID_MARK = "0000requestidmark0000"  # survives escaping; the real id goes in after
BACK_MARK = "0000backlinkmark0000"


def page_title(gw: Gateway, name: str | None) -> str | None:
    """What people call the page: its configured title, or the admin area's name."""
    if name is None:
        return None
    if name.startswith("admin:"):
        return admin_title(name[len("admin:"):])
    page = gw.settings.pages.get(name)
    return page.title if page is not None else None


def refusal(request: web.Request, err: GatewayError) -> str:
    """The one sentence for this refusal, naming the page and the buyer acted for."""
    if isinstance(err, ImpersonationEnded):  # its words already say why and what now
        return err.public
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor = ctx.actor
    buyer = actor.acting_as.display_name if actor is not None and actor.acting_as else None
    return sentence(err.reason, err.public, page=page_title(gw, ctx.page), buyer=buyer)


def back_link(request: web.Request) -> str:
    """Where the person came from, if it was this site and not this very page; else `/`."""
    referer = request.headers.get("Referer", "")
    try:
        parts = urlsplit(referer)
    except ValueError:
        return "/"
    if parts.scheme != request.scheme or parts.netloc != request.host:
        return "/"
    target = safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    return "/" if target == request.path_qs else target


def _error_html(request: web.Request, err: GatewayError) -> str:
    """An error page differs only by who asks, why, and the request id: rendered once per
    person and reason, the request id put in. Denials are where floods hit."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor, session = ctx.actor, ctx.session
    acting = actor is not None and actor.acting_as is not None and session is not None \
        and session.impersonation is not None
    person = None if actor is None else (
        actor.user.username, actor.user.groups,
        actor.acting_as.display_name if actor.acting_as else None,
        session.csrf_token if session else "",
        render_banner(gw, ctx) if acting else b"")  # the same cached bytes until it changes
    said = refusal(request, err)
    key = ("error.html", type(err).__name__, err.status, err.reason, said, person,
           i18n.language())
    html = rendered_once(gw, key, lambda: _html(request, "error.html", {
        "error": err, "sentence": said, "request_id": REQUEST_ID_MARK, "back": BACK_MARK}))
    back = escape(back_link(request))
    return html.replace(REQUEST_ID_MARK, ctx.request_id).replace(BACK_MARK, back)


def error_response(request: web.Request, err: GatewayError) -> web.StreamResponse:
    ctx = request[CTX]
    if isinstance(err, Unauthenticated) and not wants_json(request) and \
            request.method in ("GET", "HEAD"):
        target = Target(ctx.path, ctx.query).wire if ctx.path else "/"
        return web.Response(status=303, headers={
            "Location": f"{LOGIN}?next={quote(target, safe='')}", "Cache-Control": "no-store"})
    if wants_json(request):
        response: web.Response = web.json_response(
            {"error": err.reason, "message": refusal(request, err),
             "request_id": ctx.request_id},
            status=err.status)
    else:
        response = web.Response(text=_error_html(request, err), status=err.status,
                                content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    if err.status == 429 and err.detail.startswith("retry after "):
        response.headers["Retry-After"] = err.detail.split()[-1].rstrip("s")
    if isinstance(err, MethodNotAllowed) and err.allow:
        response.headers["Allow"] = ", ".join(err.allow)
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Cookie realm="csr-gateway"'
    return response


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a local absolute path: never another host, scheme, or a protocol-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(c.isspace() or unicodedata.category(c)[0] == "C"
                             for c in target):
        return default  # no control, format or line-separator character reaches a header
    return target


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
