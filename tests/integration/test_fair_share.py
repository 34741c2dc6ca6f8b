"""Fair share: one session cannot take every connection to the shop."""

from __future__ import annotations

import asyncio

from aiohttp import ClientSession, CookieJar

from tests.support.gateway import audit_lines, gw_of, login


async def test_slow_requests_of_one_buyer_do_not_stop_another(make_gateway, upstream) -> None:
    """100 slow requests from one buyer: past its share 429, another user is still served."""
    client = await make_gateway(upstream={"max_connections": 40, "max_per_session": 16})
    await login(client, "buyer-alice")
    base = str(client.make_url("")).rstrip("/")
    slow = [asyncio.ensure_future(client.get("/cart", headers={
        "X-Test-Delay": "1.5", "Accept": "application/json"})) for _ in range(100)]
    while gw_of(client).inflight < 16:
        await asyncio.sleep(0.01)
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as other:
        async with other.post(f"{base}/_gateway/login", data={
                "username": "buyer-bob", "password": "demo-pass-1"},
                allow_redirects=False) as resp:
            assert resp.status == 303
        others = [await (await other.get(f"{base}/cart")).read() and 200 for _ in range(20)]
    statuses = [r.status for r in await asyncio.gather(*slow)]
    print(f"\none buyer: {statuses.count(200)} forwarded, {statuses.count(429)} x 429; "
          f"another user: {others.count(200)} of 20 served")
    assert others == [200] * 20
    assert statuses.count(200) == 16 and statuses.count(429) == 84
    refused = [r for r in audit_lines(client) if r.get("reason") == "too_many_concurrent_requests"]
    assert len(refused) == 84 and refused[0]["status"] == 429  # allowed, not forwarded
    assert gw_of(client).inflight == 0 and gw_of(client).inflight_by == {}


async def test_anonymous_requests_share_by_client_address(make_gateway, upstream) -> None:
    """Without a session the share is the client address's: past it, 429 with its reason."""
    client = await make_gateway(upstream={"max_per_session": 2})
    results = await asyncio.gather(*(client.get("/static/app.css", headers={
        "X-Test-Delay": "0.5", "Accept": "application/json"}) for _ in range(5)))
    statuses = sorted(r.status for r in results)
    assert statuses.count(429) == 3, statuses
    body = await next(r for r in results if r.status == 429).json()
    assert body["error"] == "too_many_concurrent_requests"
