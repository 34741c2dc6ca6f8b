"""WebSocket proxying for routes that allow it, after authentication and policy said yes."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from gateway.core.errors import BadRequest, UpstreamUnavailable
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway

# Headers the WebSocket handshake owns; the client sets its own upstream.
HANDSHAKE = {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
             "sec-websocket-accept", "sec-websocket-protocol"}


def check_upgrade(headers: CIMultiDictProxy[str], websocket_route: bool) -> bool:
    """h2c and every other protocol switch are refused; WebSocket only where a route says."""
    upgrade = headers.get("Upgrade")
    if upgrade is None:
        return False
    if upgrade.strip().lower() == "websocket" and websocket_route:
        return True
    raise BadRequest("upgrade_refused", "Protocol upgrades are not accepted here.",
                     detail=upgrade[:40])


async def proxy_websocket(request: web.Request, gw: Gateway, ctx: RequestContext,
                          wire_path: str, headers: list[tuple[str, str]]) -> web.StreamResponse:
    """Connect upstream first (so a dead shop is a clean 502), then relay both ways."""
    assert gw.client is not None
    base = URL(gw.settings.upstream.url.rstrip("/") + wire_path, encoded=True)
    url = base.with_scheme("wss" if base.scheme == "https" else "ws")
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                 if p.strip()]
    forwarded = [(k, v) for k, v in headers if k.lower() not in HANDSHAKE]
    try:
        upstream = await gw.client.ws_connect(url, headers=forwarded, protocols=protocols,
                                              autoping=True, max_msg_size=4 << 20)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamUnavailable("upstream_unavailable", detail=type(exc).__name__) from exc
    client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else ())
    await client.prepare(request)
    ctx.extra["websocket"] = True
    try:
        await _relay(client, upstream)
    finally:
        await upstream.close()
        await client.close()
    return client


async def _relay(client: web.WebSocketResponse,
                 upstream: aiohttp.ClientWebSocketResponse) -> None:
    async def pump(source, sink) -> None:  # type: ignore[no-untyped-def]
        async for msg in source:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            else:
                break

    tasks = [asyncio.create_task(pump(client, upstream)),
             asyncio.create_task(pump(upstream, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
