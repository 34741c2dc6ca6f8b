"""Shared factories: a recording upstream on loopback and a real gateway in front of it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app.build import build_gateway, create_app
from gateway.app.protocol_audit import runner_kwargs
from tests.support.gateway import (
    ROOT,
    UPSTREAM,
    GatewayFactory,
    Upstream,
    record,
    test_settings,
)
from tests.support.services import require_service
from tests.support.staff import Staff
from tests.support.webhook import Hook

# gateways built in the tests (and the processes they start) refuse an audit line whose event
# or key gateway/audit/records.py does not declare
os.environ.setdefault("CSRGW_AUDIT_STRICT", "1")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", record)
    server = TestServer(app)
    found = Upstream(server)
    app[UPSTREAM] = found
    await server.start_server()
    yield found
    await server.close()


@pytest.fixture(scope="session")
def seeded_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo directory seeded once (argon2 is slow on purpose); tests get a copy."""
    import asyncio as aio

    from gateway.directory import Directory
    from gateway.directory.passwords import hasher

    path = tmp_path_factory.mktemp("seed") / "directory.sqlite3"
    seed = ROOT / "config" / "directory.yaml"

    async def build() -> None:
        directory = await Directory.open(f"sqlite+aiosqlite:///{path}", seed,
                                         hasher(1, 64, 1))  # CHEAP_PASSWORDS
        await directory.close()

    aio.run(build())
    return path


@pytest.fixture
async def make_gateway(tmp_path: Path, aiohttp_client: Any, upstream: Upstream,
                       seeded_directory: Path) -> GatewayFactory:
    """Builds a real gateway (real policy, SQLite directory, audit file) in front of a URL."""

    async def make(upstream_url: str | None = None, **changes: Any) -> TestClient:
        target = tmp_path / "directory.sqlite3"
        if not target.exists():
            shutil.copyfile(seeded_directory, target)
        settings = test_settings(tmp_path, upstream_url or upstream.url, **changes)
        gw = await build_gateway(settings)
        return await aiohttp_client(create_app(gw), server_kwargs=runner_kwargs(gw))

    return make


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> TestClient:
    return await make_gateway()


@pytest.fixture
async def shop_and_gateway(make_gateway: GatewayFactory
                           ) -> AsyncIterator[tuple[web.Application, TestClient]]:
    """The demo shop verifying the gateway's signed assertion (its JWKS), the gateway
    before it."""
    from gateway.demo.shop import TRUST, create_shop_app

    shop = create_shop_app(jwks_url="http://127.0.0.1:1/unset")
    server = TestServer(shop)
    await server.start_server()
    client = await make_gateway(str(server.make_url("")).rstrip("/"))
    shop[TRUST][1].jwks_url = str(client.make_url("/_gateway/.well-known/jwks.json"))
    yield shop, client
    await server.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own, removed afterwards."""
    import secrets

    import redis.asyncio as redis

    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"csrgw-test-{secrets.token_hex(6)}:"
    yield prefix
    conn = redis.from_url("redis://127.0.0.1:6379/0")
    keys = [k async for k in conn.scan_iter(match=prefix + "*")]
    if keys:
        await conn.delete(*keys)
    await conn.aclose()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KB tmpfs of this test's own: the audit's disk, easy to fill and free."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    """A customer's webhook on loopback (answers 204 unless told otherwise)."""
    found = Hook([])
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    found.server = TestServer(app)
    await found.server.start_server()
    yield found
    await found.server.close()


@pytest.fixture
async def staff() -> AsyncIterator[Any]:
    """Signs in more people, each with a cookie jar of their own."""
    sessions: list[ClientSession] = []

    async def make(client: TestClient, username: str) -> Staff:
        session = ClientSession(cookie_jar=CookieJar(unsafe=True))
        sessions.append(session)
        return await Staff(client, session).login(username)

    yield make
    for session in sessions:
        await session.close()
