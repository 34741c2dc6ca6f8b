"""The request pipeline: every stage in order, and the one audit line per request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http import HttpVersion11

from gateway.audit.sink import SinkDown
from gateway.core.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    dependency_failed,
)
from gateway.pipeline.authn import authenticate
from gateway.pipeline.forward import forward
from gateway.pipeline.identity import identity_headers
from gateway.pipeline.websocket import proxy_websocket
from gateway.policy.decide import decide
from gateway.request import hygiene
from gateway.request.canon import Target, canonicalize
from gateway.request.routes import KNOWN_METHODS
from gateway.request.tracecontext import CURRENT_TRACE, TRACEPARENT, TRACESTATE, TraceContext, start
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.impersonation import clear_upstream_cookies, recheck, set_session_cookie
from gateway.runtime.render import page_overlay
from gateway.runtime.responses import error_response
from gateway.services.notify import Notifier

log = logging.getLogger("csr_gateway")
# Answer while the audit sink is down (they change nothing, so they need no line then).
PROBES = frozenset({"/_gateway/healthz", "/_gateway/readyz", "/_gateway/metrics"})
TARGET = web.RequestKey("csrgw_target", Target)
UNSUPPORTED_VERSION = web.RequestKey("csrgw_unsupported_version", bool)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def pipeline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: context, canonical path, error rendering, and the audit line in `finally`."""
    gw = request.app[GATEWAY]
    if request.version >= (2, 0):
        # aiohttp would answer in the version the client named (a cached property, pinned to
        # aiohttp <3.15 in pyproject; tests/test_edges.py checks the status line): 505 in 1.1
        request._version = HttpVersion11
        request._cache["version"] = HttpVersion11
        request[UNSUPPORTED_VERSION] = True
    ctx = RequestContext(method=request.method, client_ip=_client_ip(request, gw))
    request[CTX] = ctx
    ctx.trace = _trace(request, gw)
    CURRENT_TRACE.set(ctx.trace.trace_id)
    if not gw.audit.healthy and gw.settings.audit.fail_closed:
        return await _sink_down(request, handler, gw, ctx)
    status = 500
    try:
        response = await _guarded(request, handler, gw, ctx)
        status = response.status
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        # the client went away (aiohttp cancels the handler or the write fails): not a 500
        ctx.outcome, ctx.reason, status = "aborted", "client_disconnected", 499
        raise
    finally:
        gw.audit.emit("request", **ctx.audit_fields(status))
        if gw.tracer is not None:
            gw.tracer.record(ctx, status)
        if gw.notifier is not None:
            _count_buyer_action(gw.notifier, ctx, status)
        if gw.limits is not None:
            gw.limits.acted(gw, ctx)
        gw.metrics.observe(ctx.decision, ctx.reason, time.perf_counter() - ctx.started)


def _count_buyer_action(notifier: Notifier, ctx: RequestContext, status: int) -> None:
    """What the customer's summary counts: requests forwarded as the buyer, not assets or the
    gateway's own pages."""
    actor = ctx.actor
    imp = actor.impersonation if actor is not None and actor.acting_as else None
    if imp is None or ctx.decision != "allow" or ctx.reason == "public_page" or \
            (ctx.path or "").startswith("/_gateway/"):
        return
    change = None
    if ctx.state_changing:
        change = {"method": ctx.method, "path": ctx.path, "page": ctx.page,
                  "action": ctx.action, "status": status, "at": round(time.time(), 3)}
    notifier.count(imp.id, change)


async def _sink_down(request: web.Request, handler: Handler, gw: Gateway,
                     ctx: RequestContext) -> web.StreamResponse:
    """No audit, no service: probes still answer; every other request is refused and
    counted (a line each would only refill the disk that just ran full)."""
    if request.method == "GET" and request.raw_path in PROBES:
        return await handler(request)
    gw.audit.refuse()
    ctx.deny("audit_unavailable")
    gw.metrics.observe(ctx.decision, ctx.reason, time.perf_counter() - ctx.started)
    return error_response(request, ServiceUnavailable("audit_unavailable"))


async def write_ahead(gw: Gateway, ctx: RequestContext) -> None:
    """A state-changing request goes on only once its intent line is on the disk."""
    gw.audit.emit("request_intent", **ctx.intent_fields())
    try:
        await gw.audit.durable()
    except SinkDown as exc:
        if gw.settings.audit.fail_closed:
            log.error("audit intent of request %s not durable: %s", ctx.request_id, exc)
            ctx.deny("audit_unavailable")
            raise ServiceUnavailable("audit_unavailable") from exc


async def _guarded(request: web.Request, handler: Handler, gw: Gateway,
                   ctx: RequestContext) -> web.StreamResponse:
    try:
        if request.version < (1, 0):
            raise BadRequest("unsupported_http_version", detail="HTTP/0.9")
        if request.get(UNSUPPORTED_VERSION):
            raise GatewayError("unsupported_http_version", "Only HTTP/1.x is served here.",
                               status=505)
        target = canonicalize(request.raw_path, allow_semicolon=True)
        ctx.path, ctx.query = target.path, target.query
        request[TARGET] = target
        if target.path.startswith("/_gateway/") and target.wire != request.raw_path:
            raise BadRequest("bad_path", detail="non-canonical gateway path")
        response = await handler(request)
    except GatewayError as err:
        ctx.deny(err.reason) if ctx.decision != "allow" else setattr(ctx, "reason", err.reason)
        response = error_response(request, err)
    except web.HTTPException as exc:  # the router's own 404/405 for gateway paths
        ctx.deny("no_route" if exc.status == 404 else "method_not_allowed")
        exc.headers["Cache-Control"] = "no-store"
        response = exc
    except (ConnectionResetError, asyncio.CancelledError):
        ctx.outcome = "aborted"
        raise
    except Exception as exc:
        if dependency_failed(exc):  # a database or Redis went away: fail closed, 503
            log.error("dependency unavailable in request %s: %r", ctx.request_id, exc)
            ctx.deny("dependency_unavailable")
            response = error_response(request, ServiceUnavailable("dependency_unavailable"))
        else:
            log.exception("unhandled error in request %s", ctx.request_id)
            ctx.deny("internal_error")
            response = error_response(request, GatewayError())
    if ctx.switched_session is not None and not response.prepared:
        set_session_cookie(response, gw, ctx.switched_session)
        clear_upstream_cookies(response, gw)
    return response


def _trace(request: web.Request, gw: Gateway) -> TraceContext:
    trusted = bool(gw.settings.trusted_proxies) and request.remote is not None and \
        hygiene.is_trusted(request.remote, gw.settings.trusted_proxies)
    headers = request.headers
    return start(headers.get(TRACEPARENT), headers.get(TRACESTATE), trusted)


def _client_ip(request: web.Request, gw: Gateway) -> str:
    return hygiene.client_address(request.remote, request.headers,
                                  gw.settings.trusted_proxies)


async def proxy(request: web.Request) -> web.StreamResponse:
    """Every path the gateway does not own: decide, then forward as the right person."""
    gw, ctx, target = request.app[GATEWAY], request[CTX], request[TARGET]
    if target.path == "/_gateway" or target.path.startswith("/_gateway/"):
        raise await _gateway_refusal(request)
    scrubbed = hygiene.scrub_request_headers(_raw_headers(request), gw.header_policy,
                                             (gw.settings.sessions.cookie_name,))
    hygiene.reject_method_override(target.query)
    if request.method not in KNOWN_METHODS:
        raise MethodNotAllowed("method_not_allowed", detail=request.method)
    match = gw.routes.match(request.method, target.path)
    websocket = _check_upgrade(request, match.route.spec.websocket)
    if ";" in target.path and not match.route.spec.allow_semicolon:
        raise BadRequest("bad_path", detail="path parameter")
    page = gw.settings.pages[match.page]
    ctx.page, ctx.action = page.name, match.action
    ctx.state_changing = match.route.state_changing(request.method)
    actor = await authenticate(request, gw, ctx, required=not page.public)
    if actor is not None and actor.impersonation is not None:
        actor = await recheck(gw, ctx, actor)
    decision = decide(gw.policy, gw.directory.snapshot, actor, page, match.action)
    if not decision.allowed:
        ctx.deny(decision.reason, decision.policy_rev)
        raise Forbidden(decision.reason)
    ctx.allow(decision.policy_rev, decision.reason)
    if ctx.state_changing:
        await write_ahead(gw, ctx)
    await _continue_if_expected(request)
    headers = scrubbed + identity_headers(gw.settings.headers, actor, ctx.session,
                                          ctx.request_id, gw.signer, gw.policy.rev)
    # The shop gets the one address the gateway decided on (and audited), never a chain
    # whose left part a client wrote.
    headers += hygiene.forwarded_headers(ctx.client_ip, request.scheme, request.host, None)
    if ctx.trace is not None:
        headers += ctx.trace.headers()
    if websocket:
        return await proxy_websocket(request, gw, ctx, target.wire, headers)
    banner = page_overlay(gw, ctx, actor)
    return await forward(request, gw, ctx, target.wire, headers, banner)


async def _gateway_refusal(request: web.Request) -> GatewayError:
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


def _check_upgrade(request: web.Request, websocket_route: bool) -> bool:
    """h2c and every other protocol switch are refused; WebSocket only where a route says."""
    upgrade = request.headers.get("Upgrade")
    if upgrade is None:
        return False
    if upgrade.strip().lower() == "websocket" and websocket_route:
        return True
    raise BadRequest("upgrade_refused", "Protocol upgrades are not accepted here.",
                     detail=upgrade[:40])


def _raw_headers(request: web.Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]


async def _continue_if_expected(request: web.Request) -> None:
    """100-continue only after authentication and policy said yes (see expect_handler)."""
    if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def defer_expect(request: web.Request) -> None:
    """aiohttp would answer 100-continue before any check; the pipeline does it later."""
    if request.headers.get("Expect", "").lower() not in ("", "100-continue"):
        raise web.HTTPExpectationFailed()
