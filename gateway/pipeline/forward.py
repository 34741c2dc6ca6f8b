"""Forwarding stage: stream the request upstream and the answer back, within limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.core.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.pipeline import maskstream
from gateway.pipeline.banner import BannerInjector, wants_banner
from gateway.request import hygiene
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.responses import FROM_SHOP
from gateway.services.upstream import PoolConfig, UpstreamPool, UpstreamResponse

CHUNK = 64 * 1024
WHOLE_BODY = 64 * 1024  # bodies of known length up to this are read, then sent at once


async def continue_if_expected(request: web.Request) -> None:
    """100-continue only after authentication and policy said yes (see `defer_expect`)."""
    if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def defer_expect(request: web.Request) -> None:
    """aiohttp would answer 100-continue before any check; the pipeline does it later."""
    if request.headers.get("Expect", "").lower() not in ("", "100-continue"):
        raise web.HTTPExpectationFailed()


def client_session(gw: Gateway) -> aiohttp.ClientSession:
    """No cookie jar, no redirects followed, no decompression: a proxy passes things on."""
    up = gw.settings.upstream
    connector = aiohttp.TCPConnector(limit=up.max_connections, limit_per_host=0,
                                     enable_cleanup_closed=True)
    # sock_read bounds every silence of the shop: until its status line (then 504) and
    # between body chunks (then the response is cut, outcome aborted). aiohttp checks it on
    # its socket reads, cheaper than an asyncio.timeout around every request.
    timeout = aiohttp.ClientTimeout(total=None, connect=up.connect_timeout,
                                    sock_read=up.first_byte_timeout)
    return aiohttp.ClientSession(connector=connector, timeout=timeout,
                                 cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                 skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept",
                                                    "Content-Type"))


def upstream_pool(gw: Gateway) -> UpstreamPool:
    up = gw.settings.upstream
    return UpstreamPool(PoolConfig(up.url, connect_timeout=up.connect_timeout,
                                   read_timeout=up.first_byte_timeout))


class RequestBody:
    """The client's body, streamed; stops once it passes the limit and remembers that."""

    def __init__(self, request: web.Request, limit: int) -> None:
        self.request, self.limit, self.exceeded = request, limit, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.request.content.iter_chunked(CHUNK):
            seen += len(chunk)
            if seen > self.limit:
                self.exceeded = True
                raise PayloadTooLarge("body_too_large")
            yield chunk


async def forward(request: web.Request, gw: Gateway, ctx: RequestContext, wire_path: str,
                  headers: list[tuple[str, str]], banner: bytes | None,
                  mask: maskstream.MaskPlan | None = None) -> web.StreamResponse:
    up = gw.settings.upstream
    limit = gw.settings.limits.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("body_too_large")
    if gw.inflight >= up.max_connections:
        raise ServiceUnavailable("upstream_busy", "The shop is busy; please retry.")
    share = fair_share_key(ctx)
    mine = gw.inflight_by.get(share, 0)
    if mine >= up.max_per_session:
        raise TooManyRequests("too_many_concurrent_requests",
                              "Too many requests at once; please wait for them to finish.",
                              detail=f"{mine} in flight")
    assert gw.upstream is not None
    target = gw.upstream.base_path + wire_path
    body = RequestBody(request, limit) if request.body_exists else None
    gw.inflight += 1
    gw.inflight_by[share] = mine + 1
    try:
        async with _Upstream(gw, request, target, headers, body) as upstream:
            return await _relay(request, gw, ctx, upstream, banner, mask)
    finally:
        gw.inflight -= 1
        left = gw.inflight_by.pop(share) - 1
        if left:
            gw.inflight_by[share] = left


def fair_share_key(ctx: RequestContext) -> str:
    """Whose share of the shop's connections a request uses: its session's, or (anonymous)
    its client address's. An impersonating CSR's session is one share, like any other."""
    if ctx.session is not None:
        return "s:" + ctx.session.id
    return "a:" + ctx.client_ip


class _Upstream:
    """Context manager that maps client errors to gateway errors (502, 504)."""

    def __init__(self, gw: Gateway, request: web.Request, target: str,
                 headers: list[tuple[str, str]], body: RequestBody | None) -> None:
        self.args = (gw, request, target, headers, body)
        self.response: UpstreamResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        gw, request, target, headers, body = self.args
        assert gw.upstream is not None
        try:
            self.response = await gw.upstream.request(
                request.method, target, headers, body,
                request.content_length if body is not None else None)
        except (PayloadTooLarge, TimeoutError, aiohttp.ClientError) as exc:
            if body is not None and body.exceeded:
                raise PayloadTooLarge("body_too_large") from exc
            if isinstance(exc, PayloadTooLarge):
                raise
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout("upstream_timeout") from exc
            raise UpstreamUnavailable("upstream_unavailable", detail=type(exc).__name__) from exc
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        if self.response is not None:
            self.response.release()


async def _relay(request: web.Request, gw: Gateway, ctx: RequestContext,
                 upstream: UpstreamResponse, banner: bytes | None,
                 mask: maskstream.MaskPlan | None) -> web.StreamResponse:
    response = _response_head(request, gw, ctx, upstream)
    injector: BannerInjector | maskstream.Chain | None = None
    masked = maskstream.body_filter(mask, request.method, upstream) if mask else None
    encoding = "" if masked else upstream.headers.get("Content-Encoding", "")
    if banner is not None and request.method != "HEAD" and wants_banner(
            upstream.headers.get("Content-Type", ""), encoding):
        injector = BannerInjector(banner, encoding, gw.settings.limits.banner_max_bytes)
        response.headers.popall("Content-Length", None)
        response.headers.popall("Content-Encoding", None)
        response.headers.popall("ETag", None)
    if masked is not None:  # the masker opens the body; the banner goes into what it gives
        maskstream.masked_head(response)
        injector = maskstream.Chain(masked, injector)
        if masked.whole:
            return await maskstream.send_whole(request, ctx, upstream, response, injector)
    size = upstream.content_length
    if size is not None and size <= WHOLE_BODY and not (injector and injector.decoder):
        return await _whole(request, ctx, upstream, response, injector)
    await response.prepare(request)
    sent = 0
    try:
        async for chunk in upstream.content.iter_chunked(CHUNK):
            out = injector.feed(chunk) if injector else chunk
            if out:
                await response.write(out)
                sent += len(out)
        if injector:
            tail = injector.finish()
            await response.write(tail)
            sent += len(tail)
    except (aiohttp.ClientPayloadError, TimeoutError, UpstreamUnavailable):
        ctx.outcome, ctx.bytes_sent = "aborted", sent
        ctx.reason = "upstream_aborted"
        if request.transport is not None:
            request.transport.close()
        return response
    ctx.bytes_sent = sent
    await response.write_eof()
    return response


def _response_head(request: web.Request, gw: Gateway, ctx: RequestContext,
                   upstream: UpstreamResponse) -> web.StreamResponse:
    """Status and the shop's headers, scrubbed; the shop's own address never leaks out."""
    own = (gw.settings.sessions.cookie_name,)
    headers = hygiene.scrub_response_headers(upstream.headers.items(), own)
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    response[FROM_SHOP] = True
    base = gw.upstream.origin if gw.upstream is not None else ""
    for name, value in headers:
        if value.startswith(base) and name.lower() in ("location", "content-location"):
            # like nginx's default proxy_redirect
            value = f"{request.scheme}://{request.host}{value[len(base):]}"
        response.headers.add(name, value)
    if ctx.actor is not None and ctx.actor.acting_as is not None:
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["X-Impersonation"] = f"{ctx.actor.user.username} as " \
                                              f"{ctx.actor.acting_as.username}"
    return response


async def _whole(request: web.Request, ctx: RequestContext, upstream: UpstreamResponse,
                 response: web.StreamResponse,
                 injector: BannerInjector | maskstream.Chain | None) -> web.StreamResponse:
    """A small body of known length is read first, then sent with the head in one write
    (and, with the banner in it, with its own Content-Length instead of chunks). A shop that
    stops or stalls inside it gets a clean 502 or 504, not a cut page."""
    try:
        body = await upstream.content.read()
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamUnavailable("upstream_aborted", detail="body cut short") from exc
    except TimeoutError as exc:
        raise UpstreamTimeout("upstream_timeout", detail="body stalled") from exc
    if injector is not None:
        body = injector.feed(body) + injector.finish()
        response.content_length = len(body)
    # head and body in one write (one system call), as aiohttp's own Response does; a
    # StreamResponse otherwise sends its head alone first (pinned aiohttp, see pyproject)
    response._send_headers_immediately = False
    await response.prepare(request)
    await response.write_eof(body)
    ctx.bytes_sent = len(body)
    return response
