"""WebSocket upgrades: proxied only on routes that allow them, only after the policy."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config.load import load_settings
from gateway.core.settings import RouteSpec
from tests.support.gateway import ROOT, login


@pytest.fixture
async def ws_upstream():
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(f"hello {request.headers.get('X-Remote-User')}")
        async for msg in ws:
            await ws.send_str("echo:" + msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_get("/cart", echo)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


def _routes() -> tuple[RouteSpec, ...]:
    base = load_settings(ROOT / "config" / "gateway.yaml").routes
    return (*base, RouteSpec("/ws", "cart", websocket=True))


async def test_websocket_route_proxies_as_the_user(make_gateway, ws_upstream) -> None:
    """On a websocket route, an allowed user talks to the upstream as themselves."""
    client = await make_gateway(str(ws_upstream.make_url("")).rstrip("/"), routes=_routes())
    await login(client, "buyer-alice")
    async with client.ws_connect("/ws", headers={"X-Remote-User": "admin-ann"}) as ws:
        assert (await ws.receive_str()) == "hello buyer-alice"
        await ws.send_str("ping")
        assert (await ws.receive_str()) == "echo:ping"


@pytest.mark.parametrize(("user", "path", "upgrade", "status"), [
    ("buyer-alice", "/cart", "websocket", 400),
    ("buyer-alice", "/cart", "h2c", 400),
    ("admin-ann", "/ws", "websocket", 403),
    (None, "/ws", "websocket", 401),
], ids=["route-without-websocket", "h2c", "policy-denies", "anonymous"])
async def test_upgrade_refused(make_gateway, ws_upstream, user, path, upgrade, status) -> None:
    """Upgrades are refused off websocket routes and before the policy allowed them."""
    client = await make_gateway(str(ws_upstream.make_url("")).rstrip("/"), routes=_routes())
    if user:
        await login(client, user)
    headers = {"Upgrade": upgrade, "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Accept": "application/json"}
    resp = await client.get(path, headers=headers, allow_redirects=False)
    assert resp.status == status
    assert "Sec-WebSocket-Accept" not in resp.headers
