"""Redis as the session store: bounded waits, a frozen Redis fails closed fast, recovery."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import audit_lines, gw_of
from tests.support.services import free_port, service_up


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (it gets frozen; the shared one never is)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed") if os.environ.get("CI") == "true" \
            else pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not service_up("127.0.0.1", port):
        assert time.monotonic() < deadline, "private redis-server did not start"
        time.sleep(0.05)
    yield port, proc
    proc.send_signal(signal.SIGCONT)
    proc.kill()
    proc.wait()


def _redis(port: int, **extra: object) -> dict[str, object]:
    return {"sessions": {"store": "redis", "redis_url": f"redis://127.0.0.1:{port}/0",
                         "redis_prefix": "csrgw-test:", **extra}}


async def test_frozen_redis_fails_closed_within_a_second_and_recovers(
        make_gateway, private_redis) -> None:
    """SIGSTOP of Redis: 503 session_store_unavailable in under a second; SIGCONT: served."""
    port, proc = private_redis
    client = await make_gateway(**_redis(port))
    headers = {"Accept": "application/json", "Cookie": "csrgw_session=" + "y" * 43}
    assert (await client.get("/cart", headers=headers)).status == 401
    proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        resp = await client.get("/cart", headers=headers)
        took = time.monotonic() - started
        assert resp.status == 503
        assert audit_lines(client)[-1]["reason"] == "session_store_unavailable"
        ready = await client.get("/_gateway/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["sessions"].startswith("unreachable")
    finally:
        proc.send_signal(signal.SIGCONT)
    print(f"\nfrozen Redis: 503 after {took * 1000:.0f} ms")
    assert took < 1.0
    resp = await client.get("/cart", headers=headers)
    assert resp.status == 401  # Redis answers again: a bad cookie is just not logged in
    assert (await client.get("/_gateway/readyz")).status == 200


async def test_busy_pool_waits_instead_of_failing(make_gateway, private_redis) -> None:
    """200 concurrent requests through an 8-connection pool: all wait their turn, no 503."""
    port, _proc = private_redis
    client = await make_gateway(**_redis(port, redis_max_connections=8))

    async def one(n: int) -> int:
        resp = await client.get("/cart", headers={
            "Accept": "application/json", "Cookie": f"csrgw_session={n:043d}"})
        await resp.read()
        return resp.status

    statuses = await asyncio.gather(*(one(n) for n in range(200)))
    probes = await asyncio.gather(*(client.get("/_gateway/readyz") for _ in range(5)))
    print(f"\n200 concurrent, 8 Redis connections: {statuses.count(503)} x 503")
    assert statuses.count(503) == 0 and set(statuses) == {401}
    assert [p.status for p in probes] == [200] * 5
    pool = gw_of(client).sessions._redis.connection_pool  # type: ignore[attr-defined]
    assert pool.max_connections == 8
