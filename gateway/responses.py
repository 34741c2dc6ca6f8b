"""Error and page responses: HTML for browsers, JSON for API clients, nothing internal."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup

from gateway.context import CTX
from gateway.errors import GatewayError, Unauthenticated
from gateway.overlay import render_banner
from gateway.state import GATEWAY

LOGIN = "/_gateway/login"


def wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return True
    return request.path.startswith("/_gateway/api/")


def render(request: web.Request, template: str, status: int = 200,
           **values: Any) -> web.Response:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    session = ctx.session
    overlay = ""
    if ctx.actor is not None and ctx.actor.acting_as is not None and session is not None \
            and session.impersonation is not None:
        overlay = Markup(render_banner(gw, ctx).decode())
    html = gw.templates.get_template(template).render(
        actor=ctx.actor, session=session, csrf_token=session.csrf_token if session else "",
        directory=gw.directory.snapshot, overlay=overlay, **values)
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def error_response(request: web.Request, err: GatewayError) -> web.StreamResponse:
    ctx = request[CTX]
    if isinstance(err, Unauthenticated) and not wants_json(request) and \
            request.method in ("GET", "HEAD"):
        target = ctx.path or "/"
        if ctx.query:
            target += "?" + ctx.query
        return web.Response(status=303, headers={
            "Location": f"{LOGIN}?next={quote(target, safe='')}", "Cache-Control": "no-store"})
    if wants_json(request):
        response: web.Response = web.json_response(
            {"error": err.reason, "message": err.public, "request_id": ctx.request_id},
            status=err.status)
    else:
        response = render(request, "error.html", status=err.status, error=err,
                          request_id=ctx.request_id)
    response.headers["Cache-Control"] = "no-store"
    if err.status == 429 and err.detail.startswith("retry after "):
        response.headers["Retry-After"] = err.detail.split()[-1].rstrip("s")
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Cookie realm="csr-gateway"'
    return response


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a local absolute path: never another host, scheme, or a protocol-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if any(c in target for c in "\\\r\n\t") or target.startswith("/\\"):
        return default
    return target


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
