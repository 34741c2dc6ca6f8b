"""Serving as operators run it: a real `csr-gateway run` process, signals and workers."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import orjson

from tests.support.processes import http_login, launch_gateway, stop_process


async def test_sigterm_finishes_in_flight_and_flushes_audit(tmp_path, seeded_directory,
                                                           upstream) -> None:
    """SIGTERM lets a request in flight finish, then flushes the audit and exits 0."""
    proc, base = launch_gateway(tmp_path, seeded_directory, upstream.url)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            await http_login(session, base, "buyer-alice")
            pending = asyncio.create_task(session.get(f"{base}/reports",
                                                      headers={"X-Test-Delay": "1.0"}))
            await asyncio.sleep(0.4)
            proc.send_signal(signal.SIGTERM)
            resp = await pending
            assert resp.status == 200
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            stop_process(proc)
    lines = [orjson.loads(x) for x in (tmp_path / "audit.jsonl").read_bytes().splitlines()]
    assert any(r["path"] == "/reports" and r["status"] == 200 for r in lines)


async def test_workers_share_the_port_and_sessions(tmp_path, seeded_directory, upstream,
                                                   redis_prefix) -> None:
    """`run --workers 2` serves from two processes; a Redis session works on either."""
    proc, base = launch_gateway(tmp_path, seeded_directory, upstream.url,
                                extra=("--workers", "2"),
                                sessions={"store": "redis", "redis_prefix": redis_prefix})
    try:
        await asyncio.sleep(1.0)  # let the second worker bind too
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            await http_login(session, base, "buyer-alice")
            statuses = []
            for _ in range(20):
                async with (aiohttp.ClientSession(cookie_jar=session.cookie_jar) as fresh,
                            fresh.get(f"{base}/cart") as resp):  # a new connection each time
                    statuses.append(resp.status)
        assert statuses == [200] * 20
        assert {s.header("X-Remote-User") for s in upstream.seen} == {"buyer-alice"}
    finally:
        stop_process(proc)
    files = sorted(p.name for p in tmp_path.glob("audit.w*.jsonl"))
    assert files == ["audit.w1.jsonl", "audit.w2.jsonl"]
