"""Route: the canonical request to the page and action the policy decides on, or a refusal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from gateway.core.domain import Page
from gateway.core.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound
from gateway.request.canon import Target
from gateway.request.routes import KNOWN_METHODS, RouteTable

GATEWAY_NAMESPACE = "/_gateway"


@dataclass(frozen=True, slots=True)
class Routed:
    """What the route table says of one request."""

    page: Page
    action: str
    state_changing: bool
    websocket: bool  # the route allows a WebSocket upgrade


def route(routes: RouteTable, pages: Mapping[str, Page], method: str,
          target: Target) -> Routed:
    """No route is 404, an unknown method 405, a path parameter where the route forbids it
    400; the gateway's own namespace never reaches here (see `gateway_refusal`)."""
    if method not in KNOWN_METHODS:
        raise MethodNotAllowed("method_not_allowed", detail=method)
    match = routes.match(method, target.path)
    if ";" in target.path and not match.route.spec.allow_semicolon:
        raise BadRequest("bad_path", detail="path parameter")
    return Routed(pages[match.page], match.action, match.route.state_changing(method),
                  match.route.spec.websocket)


def in_gateway_namespace(path: str) -> bool:
    return path == GATEWAY_NAMESPACE or path.startswith(GATEWAY_NAMESPACE + "/")


async def gateway_refusal(request: web.Request) -> GatewayError:
    """The gateway's own namespace is never forwarded: wrong method 405, unknown 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical.startswith("/{tail"):
            continue
        _match, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        return MethodNotAllowed("method_not_allowed", allow=tuple(sorted(allowed)))
    return NotFound("no_route")
