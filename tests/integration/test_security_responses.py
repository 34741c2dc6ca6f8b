"""Responses and limits: what comes back from the shop, and how much a client may send."""

from __future__ import annotations

import asyncio
import gzip

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.gateway import audit_lines, gw_of, impersonate, login

HTML = "<html><body><p>page</p></body></html>"
STREAM_STATE: dict[str, object] = {}


async def headers_page(request: web.Request) -> web.StreamResponse:
    resp = web.Response(text=HTML, content_type="text/html")
    resp.headers["Keep-Alive"] = "timeout=5"
    resp.headers["Proxy-Authenticate"] = "Basic"
    resp.headers["X-Shop"] = "1"
    resp.headers["Connection"] = "X-Shop-Secret"
    resp.headers["X-Shop-Secret"] = "hop"
    resp.set_cookie("csrgw_session", "planted-by-upstream")
    resp.set_cookie("shopcart", "abc")
    return resp


async def gzip_page(request: web.Request) -> web.StreamResponse:
    body = gzip.compress(HTML.encode())
    return web.Response(body=body, headers={"Content-Type": "text/html",
                                            "Content-Encoding": "gzip"})


async def gzip_json(request: web.Request) -> web.StreamResponse:
    body = gzip.compress(b'{"a": 1}')
    return web.Response(body=body, headers={"Content-Type": "application/json",
                                            "Content-Encoding": "gzip"})


async def endless(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    STREAM_STATE["started"] = True
    try:
        for _ in range(10_000):
            await resp.write(b"x" * 1024)
            await asyncio.sleep(0.01)
    except (ConnectionError, asyncio.CancelledError):
        STREAM_STATE["released"] = True
        raise
    STREAM_STATE["finished"] = True
    return resp


async def redirect(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": f"{request.scheme}://"
                                             f"{request.host}/orders/7?x=1"})


async def slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(1.0)
    return web.json_response({"slow": True})


@pytest.fixture
async def shop():
    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/reports", headers_page)
    app.router.add_get("/orders/gzip", gzip_page)
    app.router.add_get("/api/orders", gzip_json)
    app.router.add_get("/orders/endless", endless)
    app.router.add_get("/saved-jobs", slow)
    app.router.add_get("/orders/redirect", redirect)
    app.router.add_post("/cart/add", _sink)
    server = TestServer(app)
    await server.start_server()
    STREAM_STATE.clear()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def _sink(request: web.Request) -> web.StreamResponse:
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
    return web.json_response({"size": size})


async def test_hop_by_hop_and_own_cookie_removed(make_gateway, shop) -> None:
    """Hop-by-hop headers (and those Connection names) never reach the client; the shop
    cannot plant the gateway's session cookie; its own cookies pass."""
    client = await make_gateway(shop)
    await login(client, "buyer-alice")
    resp = await client.get("/reports")
    assert resp.status == 200
    for name in ("Keep-Alive", "Proxy-Authenticate", "X-Shop-Secret"):
        assert name not in resp.headers
    assert resp.headers["X-Shop"] == "1"
    cookies = resp.headers.getall("Set-Cookie")
    assert any(c.startswith("shopcart=") for c in cookies)
    assert not any(c.startswith("csrgw_session=") for c in cookies)


async def test_compressed_body_passes_untouched_without_banner(make_gateway, shop) -> None:
    """A buyer's own gzip page is passed byte for byte, still gzip."""
    client = await make_gateway(shop)
    await login(client, "buyer-alice")
    resp = await client.get("/orders/gzip", auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await resp.read()).decode() == HTML


async def test_compressed_html_gets_banner_when_impersonating(make_gateway, shop) -> None:
    """While impersonating, gzip HTML is opened, the banner injected, sent as identity."""
    client = await make_gateway(shop)
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == 303
    resp = await client.get("/orders/gzip", auto_decompress=False)
    body = (await resp.read()).decode()
    assert "Content-Encoding" not in resp.headers
    assert "Logged In As Alice Anders (Acme Corp)" in body
    assert body.index("csrgw-banner") < body.index("</body>")
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert resp.headers["X-Impersonation"] == "csr-carol as buyer-alice"


async def test_non_html_never_gets_banner(make_gateway, shop) -> None:
    """JSON stays untouched (and compressed) even while impersonating."""
    client = await make_gateway(shop)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    resp = await client.get("/api/orders", auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await resp.read()) == b'{"a": 1}'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_limit_enforced_while_streaming(make_gateway, shop, chunked) -> None:
    """Bodies over limits.max_body_bytes get 413, declared or discovered mid-stream."""
    client = await make_gateway(shop, limits={"max_body_bytes": 100_000})
    await login(client, "buyer-alice")

    async def body():
        for _ in range(50):
            yield b"y" * 10_000

    data = body() if chunked else b"y" * 500_000
    resp = await client.post("/cart/add", data=data)
    assert resp.status == 413
    assert audit_lines(client)[-1]["reason"] == "body_too_large"


async def test_large_body_within_limit_streams(make_gateway, shop) -> None:
    """A body under the limit arrives whole."""
    client = await make_gateway(shop, limits={"max_body_bytes": 50_000_000})

    async def body():
        for _ in range(200):
            yield b"z" * 100_000

    await login(client, "buyer-alice")
    resp = await client.post("/cart/add", data=body())
    assert (await resp.json())["size"] == 20_000_000


async def test_client_disconnect_releases_upstream(make_gateway, shop) -> None:
    """A client that goes away mid-stream releases the upstream; the line says aborted."""
    client = await make_gateway(shop)
    await login(client, "buyer-alice")
    resp = await client.get("/orders/endless")
    await resp.content.read(10_000)
    resp.close()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if STREAM_STATE.get("released"):
            break
    assert STREAM_STATE.get("released") and not STREAM_STATE.get("finished")
    await asyncio.sleep(0.1)
    line = [r for r in audit_lines(client) if r["path"] == "/orders/endless"][-1]
    assert line["outcome"] == "aborted"


async def test_upstream_connection_cap_gives_503(make_gateway, shop) -> None:
    """Past upstream.max_connections concurrent requests, the next one gets a clear 503."""
    client = await make_gateway(shop, upstream={"max_connections": 2})
    await login(client, "buyer-alice")
    results = await asyncio.gather(*(client.get("/saved-jobs") for _ in range(5)))
    statuses = sorted(r.status for r in results)
    assert statuses.count(200) == 2 and statuses.count(503) == 3
    assert gw_of(client).inflight == 0


@pytest.mark.parametrize(("headers", "status"), [
    ({f"X-H{i}": "v" for i in range(150)}, 400),
    ({"X-Big": "v" * 20_000}, 400),
], ids=["too-many-headers", "header-too-large"])
async def test_header_limits(make_gateway, shop, headers, status) -> None:
    """Too many or too large headers are refused before anything else happens."""
    client = await make_gateway(shop)
    resp = await client.get("/", headers=headers)
    assert resp.status in (status, 431)


async def test_upstream_redirects_point_back_at_the_gateway(make_gateway, shop) -> None:
    """A Location naming the shop's own address is rewritten to the gateway's."""
    client = await make_gateway(shop)
    await login(client, "buyer-alice")
    resp = await client.get("/orders/redirect", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == f"http://{client.host}:{client.port}/orders/7?x=1"
