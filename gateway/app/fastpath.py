"""The forward-auth question answered before aiohttp's router (nginx asks it per request).

nginx's `auth_request` sends `GET /_gateway/authz` for every request of the shop. Through
the Application that costs the router's resolution, the middleware chain and its wrappers
on every one of them. Here the exact path is recognised first and handed to the same
handler through the same pipeline function the middleware runs (`chain.serve`), with the
route's match information resolved once at start-up: the same checks, the same decision,
the same answer headers (`on_response_prepare` runs from the match information) and the
same audit line. Anything else, and anything unusual about this request (another HTTP
version, an `Expect` header, a query, Envoy's `/_gateway/authz/<path>`, the audit sink
down), takes the ordinary way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.web_urldispatcher import AbstractRoute, UrlMappingMatchInfo

from gateway.pipeline import chain
from gateway.request.canon import Target
from gateway.runtime.gateway import Gateway

AUTHZ_PATH = "/_gateway/authz"
_VERSIONS = (HttpVersion11, HttpVersion10)
Handle = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, gw: Gateway, route: AbstractRoute) -> None:
    """Put the fast recognition in front of the app's own request handling."""
    slow: Handle = app._handle
    match = UrlMappingMatchInfo({}, route)  # what the router finds for the exact path
    match.add_app(app)
    match.freeze()  # read-only from here: one instance serves every request
    known = Target(AUTHZ_PATH, "")
    handler = route.handler

    def handle(request: web.Request) -> Awaitable[web.StreamResponse]:
        # not a coroutine itself (aiohttp awaits what it returns): every other request gets
        # the app's own coroutine, with no frame of ours around it
        if request.raw_path != AUTHZ_PATH or request.version not in _VERSIONS or \
                not gw.audit.healthy or hdrs.EXPECT in request.headers:
            return slow(request)
        request._match_info = match
        return chain.serve(request, gw, handler, known)

    app._handle = handle  # type: ignore[method-assign,assignment]
