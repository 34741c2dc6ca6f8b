"""Operations endpoints: health, readiness, metrics, the JWKS and forward-auth decisions."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from gateway.core.errors import BadRequest, GatewayError, NotFound, ServiceUnavailable
from gateway.pipeline import maskstream, record
from gateway.pipeline.authn import authenticate
from gateway.pipeline.authz import authorize
from gateway.pipeline.identity import identity_headers
from gateway.pipeline.readonly import refuse_writes
from gateway.pipeline.route import route
from gateway.request import hygiene
from gateway.request.canon import Target, canonicalize
from gateway.runtime.context import CTX
from gateway.runtime.gateway import GATEWAY
from gateway.runtime.impersonation import recheck
from gateway.runtime.responses import LOGIN
from gateway.services import workers


def _served_as(request: web.Request, page: str) -> None:
    ctx = request[CTX]
    ctx.page, ctx.action = page, "view"
    ctx.allow(request.app[GATEWAY].policy.rev)


async def healthz(request: web.Request) -> web.StreamResponse:
    """Alive while the process serves, whatever its dependencies say (that is readyz)."""
    gw = request.app[GATEWAY]
    _served_as(request, "healthz")
    return web.json_response({"status": "ok", "audit": gw.audit.problem or "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Ready only when every dependency answers and the policy loaded cleanly."""
    gw = request.app[GATEWAY]
    _served_as(request, "readyz")
    checks: dict[str, str] = {}
    checks["policy"] = "ok" if gw.policy.last_error is None else \
        f"last reload failed: {gw.policy.last_error}"
    checks["audit"] = "ok" if gw.audit.healthy else \
        f"sink not writable: {gw.audit.problem}; {gw.audit.refused} requests refused, " \
        f"retrying every {gw.audit.config.fsync_interval_s:g} s"
    try:
        await gw.directory.version()
        checks["directory"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["directory"] = f"unreachable: {type(exc).__name__}"
    ping = getattr(gw.sessions, "ping", None)
    if ping is not None:
        try:
            checks["sessions"] = "ok" if await ping() else "no answer"
        except Exception as exc:
            checks["sessions"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for k, v in checks.items() if k != "policy") and \
        gw.policy.current is not None
    # A failed reload keeps the old policy serving: still ready, but visibly degraded.
    # So do dead workers being restarted: the one answering serves, the port is fine.
    degraded = gw.policy.last_error is not None
    body = {"ready": ready, "degraded": degraded, "policy_rev": gw.policy.rev,
            "checks": checks}
    found = workers.counts()
    if found is not None:
        alive, configured = found
        body["workers"] = {"alive": alive, "configured": configured}
        body["degraded"] = degraded or alive < configured
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Only for the scraper's addresses (`ops.metrics_allow`): the figures tell an outsider
    how busy the shop is and which refusals it meets."""
    gw = request.app[GATEWAY]
    if not hygiene.is_trusted(request[CTX].client_ip, gw.settings.ops.metrics_allow):
        request[CTX].page, request[CTX].action = "metrics", "view"
        raise NotFound("metrics_not_allowed", detail=request[CTX].client_ip)
    _served_as(request, "metrics")
    gw.metrics.audit_healthy.set(1 if gw.audit.healthy else 0)
    gw.metrics.audit_refused.set(gw.audit.refused)
    gw.metrics.policy_ok.set(0 if gw.policy.last_error else 1)
    gw.metrics.upstream_inflight.set(gw.inflight)
    found = workers.counts()
    if found is not None:
        gw.metrics.workers_alive.set(found[0])
        gw.metrics.workers_configured.set(found[1])
    return web.Response(body=gw.metrics.render(),
                        headers={"Content-Type": gw.metrics.content_type})


async def jwks(request: web.Request) -> web.StreamResponse:
    _served_as(request, "jwks")
    return web.json_response(request.app[GATEWAY].signer.jwks(),
                             headers={"Cache-Control": "public, max-age=300"})


def _original(request: web.Request) -> tuple[str, str]:
    """The request being asked about: Envoy's path prefix, or nginx/Traefik headers."""
    tail = request.match_info.get("tail")
    if tail is not None:
        target = "/" + tail + (f"?{request.query_string}" if request.query_string else "")
        return request.method, target
    uri = request.headers.get("X-Original-URI") or request.headers.get("X-Forwarded-Uri")
    method = request.headers.get("X-Original-Method") or \
        request.headers.get("X-Forwarded-Method") or "GET"
    if not uri:
        raise BadRequest("bad_request", "X-Original-URI or X-Forwarded-Uri is required.")
    return method.upper(), uri


_ASKED_ABOUT = (b"x-original-uri", b"x-forwarded-uri")  # the proxy's own, not the client's
_NAME_VERDICTS_MAX = 2048


class _Verdicts:
    """The verdicts of one header policy (held, so it is the same object while they last)."""

    policy: hygiene.HeaderPolicy | None = None
    by_name: dict[bytes, BadRequest | None] = {}


def refuse_spoofed(raw: tuple[tuple[bytes, bytes], ...], policy: hygiene.HeaderPolicy) -> None:
    """Refuses what the proxy path's scrub refuses (an identity header in any spelling,
    separators...), header by header in the order sent. The scrub's refusal depends on
    nothing but the name (and the policy), and the answer here needs no scrubbed copy:
    so each name's verdict is the scrub's own, run once per name (memo bounded in count and
    name length, so odd names cannot fill memory) and the values are never decoded."""
    if _Verdicts.policy is not policy:
        _Verdicts.policy, _Verdicts.by_name = policy, {}
    verdicts = _Verdicts.by_name
    for name, _value in raw:
        if name in verdicts:
            refusal = verdicts[name]
        else:
            refusal = _scrub_verdict(name, policy)
            if len(name) <= 64 and len(verdicts) < _NAME_VERDICTS_MAX:
                verdicts[name] = refusal
        if refusal is not None:
            raise BadRequest(refusal.reason, refusal.public, detail=refusal.detail)


def _scrub_verdict(name: bytes, policy: hygiene.HeaderPolicy) -> BadRequest | None:
    if name.lower() in _ASKED_ABOUT:
        return None
    try:
        hygiene.scrub_request_headers(hygiene.decoded([(name, b"")]), policy, ())
    except BadRequest as err:
        return err
    return None


async def authz(request: web.Request) -> web.StreamResponse:
    """Forward-auth: 200 with identity headers to copy upstream, 401 or 403 otherwise.

    nginx `auth_request` understands only 2xx, 401 and 403: every other refusal (bad path,
    no route, wrong method) is answered 403, with the real reason audited and in
    `X-Gateway-Reason`.
    """
    ctx = request[CTX]
    try:
        return await _authz(request)
    except ServiceUnavailable as err:
        # not 403: the proxy must not tell the client it was refused for who it is
        ctx.deny(err.reason)
        return web.json_response({"error": err.reason}, status=503,
                                 headers={"X-Gateway-Reason": err.reason,
                                          "Cache-Control": "no-store"})
    except GatewayError as err:
        if ctx.decision != "allow":
            ctx.deny(err.reason)
        status = 401 if err.status == 401 else 403
        headers = {"X-Gateway-Reason": err.reason, "Cache-Control": "no-store"}
        if status == 401:  # the proxy redirects here as is: `next` already encoded
            target = Target(ctx.path, ctx.query).wire if ctx.path else "/"
            headers["X-Gateway-Login"] = f"{LOGIN}?next={quote(target, safe='')}"
        if _asked_by_nginx(request):
            return web.Response(status=status, headers=headers)
        return web.json_response({"error": err.reason}, status=status, headers=headers)


def _asked_by_nginx(request: web.Request) -> bool:
    """nginx's `auth_request` reads only the status and headers of the answer, and keeps its
    connection to the gateway open only for an answer without a body: a refusal with one
    cost a new connection (and its handshake) for the next question. Traefik and Envoy show
    the refusal's body to the client, so they keep it."""
    return "tail" not in request.match_info and "X-Original-URI" in request.headers


async def _authz(request: web.Request) -> web.StreamResponse:
    gw, ctx = request.app[GATEWAY], request[CTX]
    method, uri = _original(request)
    target = canonicalize(uri)
    ctx.path, ctx.query, ctx.method = target.path, target.query, method
    if gw.settings.ops.authz_canonical_only and target.wire != uri:
        raise BadRequest("bad_path", detail="non-canonical path")
    refuse_spoofed(request.raw_headers, gw.header_policy)
    routed = route(gw.routes, gw.settings.pages, method, target)
    ctx.page, ctx.action = routed.page.name, routed.action
    actor = await authenticate(request, gw, ctx, required=not routed.page.public)
    if actor is not None and actor.impersonation is not None:
        actor = await recheck(gw, ctx, actor)
    ctx.state_changing = routed.state_changing  # before authorize: read-only refuses it
    authorize(ctx, gw.policy, gw.directory.snapshot, actor, routed.page, routed.action)
    refuse_writes(ctx, actor)
    maskstream.refuse_unmaskable(gw, ctx, actor)
    if ctx.state_changing:  # the proxy forwards on our 200: the intent must be on disk first
        await record.write_ahead(gw, ctx)
    headers = dict(identity_headers(gw.settings.headers, actor, ctx.session, ctx.request_id,
                                    gw.signer, gw.policy.rev))
    # What the proxy sends the shop instead of the client's: the path decided on, and the
    # cookies minus the gateway's own (an empty value makes nginx drop the header).
    headers["X-Gateway-Path"] = target.wire
    cookies = "; ".join(request.headers.getall("Cookie", []))
    headers["X-Gateway-Cookie"] = hygiene.strip_cookies(
        cookies, (gw.settings.sessions.cookie_name,))
    return web.Response(status=200, headers=headers | {"Cache-Control": "no-store"})
