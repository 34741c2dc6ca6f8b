"""The request pipeline: every stage in order, written once, and the one audit line.

`pipeline_middleware` wraps every request (the gateway's own pages too): context, canonical
path, failures turned into answers, the audit line in `finally`. `proxy` is every path the
gateway does not own, one call per stage:

    route -> scrub -> authenticate -> re-check impersonation -> authorize
    -> record intent -> identity headers -> forward (banner) -> audit line
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http import HttpVersion11

from gateway.core import i18n
from gateway.core.errors import BadRequest, GatewayError
from gateway.pipeline import failures, maskstream, record
from gateway.pipeline.authn import authenticate
from gateway.pipeline.authz import authorize
from gateway.pipeline.forward import continue_if_expected, forward
from gateway.pipeline.identity import identity_headers
from gateway.pipeline.readonly import refuse_writes
from gateway.pipeline.route import gateway_refusal, in_gateway_namespace, route
from gateway.pipeline.websocket import check_upgrade, proxy_websocket
from gateway.request import hygiene
from gateway.request.canon import Target, canonicalize
from gateway.request.tracecontext import CURRENT_TRACE, TRACEPARENT, TRACESTATE, start
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.impersonation import clear_upstream_cookies, recheck, set_session_cookie
from gateway.runtime.render import page_overlay

TARGET = web.RequestKey("csrgw_target", Target)
UNSUPPORTED_VERSION = web.RequestKey("csrgw_unsupported_version", bool)


@web.middleware
async def pipeline_middleware(request: web.Request,
                              handler: record.Handler) -> web.StreamResponse:
    """Outermost: context, canonical path, error rendering, and the audit line in `finally`."""
    return await serve(request, request.app[GATEWAY], handler, None)


async def serve(request: web.Request, gw: Gateway, handler: record.Handler,
                known: Target | None) -> web.StreamResponse:
    """The middleware's work; `known`: the canonical target, when the caller has already
    seen that the raw path is exactly it and the version is HTTP/1.0 or 1.1 (the
    forward-auth fast path, gateway/app/fastpath.py)."""
    if request.version >= (2, 0):
        # aiohttp would answer in the version the client named (a cached property, pinned to
        # aiohttp <3.15 in pyproject; a test checks the status line): 505 in 1.1
        request._version = HttpVersion11
        request._cache["version"] = HttpVersion11
        request[UNSUPPORTED_VERSION] = True
    trusted = gw.settings.trusted_proxies
    ctx = RequestContext(method=request.method,
                         client_ip=hygiene.client_address(request.remote, request.headers,
                                                          trusted))
    request[CTX] = ctx
    ctx.trace = start(request.headers.get(TRACEPARENT), request.headers.get(TRACESTATE),
                      hygiene.from_trusted_proxy(request.remote, trusted))
    CURRENT_TRACE.set(ctx.trace.trace_id)
    i18n.from_request(request.headers.get("Accept-Language"))
    if not gw.audit.healthy and gw.settings.audit.fail_closed:
        return await record.while_sink_down(request, handler, gw, ctx)
    status = 500
    try:
        response = await _answered(request, handler, gw, ctx, known)
        status = response.status
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        # the client went away (aiohttp cancels the handler or the write fails): not a 500
        ctx.outcome, ctx.reason, status = "aborted", "client_disconnected", 499
        raise
    finally:
        record.finish(gw, ctx, status)


async def _answered(request: web.Request, handler: record.Handler, gw: Gateway,
                    ctx: RequestContext, known: Target | None) -> web.StreamResponse:
    """The handler's answer, or the failure's; a session switched on the way is set."""
    try:
        if known is None:
            request[TARGET] = _target(request, ctx)
        else:  # what _target finds for this raw path and version, without the work
            ctx.path, ctx.query = known.path, known.query
            request[TARGET] = known
        response = await handler(request)
    except GatewayError as err:
        response = failures.refused(request, ctx, err)
    except web.HTTPException as exc:
        response = failures.router_refused(ctx, exc)
    except (ConnectionResetError, asyncio.CancelledError):
        ctx.outcome = "aborted"
        raise
    except Exception as exc:
        response = failures.crashed(request, ctx, exc)
    if ctx.switched_session is not None and not response.prepared:
        set_session_cookie(response, gw, ctx.switched_session)
        clear_upstream_cookies(response, gw)
    return response


def _target(request: web.Request, ctx: RequestContext) -> Target:
    """HTTP/1.x only, and one canonical path (the gateway's own paths exactly as sent)."""
    if request.version < (1, 0):
        raise BadRequest("unsupported_http_version", detail="HTTP/0.9")
    if request.get(UNSUPPORTED_VERSION):
        raise GatewayError("unsupported_http_version", "Only HTTP/1.x is served here.",
                           status=505)
    target = canonicalize(request.raw_path, allow_semicolon=True)
    ctx.path, ctx.query = target.path, target.query
    if target.path.startswith("/_gateway/") and target.wire != request.raw_path:
        raise BadRequest("bad_path", detail="non-canonical gateway path")
    return target


async def proxy(request: web.Request) -> web.StreamResponse:
    """Every path the gateway does not own: decide, then forward as the right person."""
    gw, ctx, target = request.app[GATEWAY], request[CTX], request[TARGET]
    settings = gw.settings
    if in_gateway_namespace(target.path):
        raise await gateway_refusal(request)
    # scrub: every identity header, in every spelling, before anything reads one
    scrubbed = hygiene.scrub_request_headers(hygiene.decoded(request.raw_headers),
                                             gw.header_policy,
                                             (settings.sessions.cookie_name,))
    hygiene.reject_method_override(target.query)
    routed = route(gw.routes, settings.pages, request.method, target)
    websocket = check_upgrade(request.headers, routed.websocket)
    ctx.page, ctx.action = routed.page.name, routed.action
    ctx.state_changing = routed.state_changing
    actor = await authenticate(request, gw, ctx, required=not routed.page.public)
    if actor is not None and actor.impersonation is not None:
        actor = await recheck(gw, ctx, actor)
    authorize(ctx, gw.policy, gw.directory.snapshot, actor, routed.page, routed.action)
    refuse_writes(ctx, actor)
    if ctx.state_changing:
        await record.write_ahead(gw, ctx)
    await continue_if_expected(request)
    headers = scrubbed + identity_headers(settings.headers, actor, ctx.session,
                                          ctx.request_id, gw.signer, gw.policy.rev)
    # The shop gets the one address the gateway decided on (and audited), never a chain
    # whose left part a client wrote, and the scheme and host the browser used (those a
    # trusted TLS proxy forwarded), so the links the shop writes lead back the same way.
    scheme, host = hygiene.external_scheme_host(
        request.scheme, request.host, request.headers,
        hygiene.from_trusted_proxy(request.remote, gw.settings.trusted_proxies))
    headers += hygiene.forwarded_headers(ctx.client_ip, scheme, host, None)
    if ctx.trace is not None:
        headers += ctx.trace.headers()
    if websocket:
        return await proxy_websocket(request, gw, ctx, target.wire, headers)
    mask = maskstream.plan(gw, ctx, actor)
    if mask is not None:
        headers = maskstream.request_headers(headers)
    return await forward(request, gw, ctx, target.wire, headers, page_overlay(gw, ctx, actor),
                         mask)
