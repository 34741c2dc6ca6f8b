"""Replicas: two gateways on one PostgreSQL directory and one Redis session store."""

from __future__ import annotations

import asyncio

from aiohttp import ClientSession, CookieJar

from gateway.directory.service import DirectoryService
from tests.support.gateway import gw_of, impersonate, login
from tests.support.services import postgres_url


async def test_revocation_on_one_replica_ends_impersonation_on_another(
        make_gateway, redis_prefix, upstream) -> None:
    """An assignment removed through replica A ends the CSR's impersonation on replica B."""
    urls = postgres_url()
    url = await urls.__anext__()
    try:
        shared = {"sessions": {"store": "redis", "redis_prefix": redis_prefix},
                  "directory": {"url": url, "refresh_seconds": 0.1}}
        first = await make_gateway(**shared)
        second = await make_gateway(**shared)
        await login(first, "csr-carol")
        assert await impersonate(first, "buyer-alice") == 303
        cookie = first.session.cookie_jar.filter_cookies(first.make_url("/"))["csrgw_session"]
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
            browser.cookie_jar.update_cookies({"csrgw_session": cookie.value},
                                              response_url=second.make_url("/"))
            base = str(second.make_url("")).rstrip("/")
            assert (await browser.get(f"{base}/cart")).status == 200
            await DirectoryService(gw_of(first).directory).unassign("acme", "csr-carol")
            await asyncio.sleep(0.5)  # replica B notices the directory version move
            resp = await browser.get(f"{base}/cart")
            assert resp.status == 403
        assert gw_of(second).directory.engine.url.get_backend_name() == "postgresql"
    finally:
        await urls.aclose()
