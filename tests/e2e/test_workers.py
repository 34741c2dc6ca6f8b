"""`run --workers N` supervised: migrations once, dead workers restarted, crash loops end."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp

from gateway.directory.store import HEAD_REVISION
from tests.support.gateway import ROOT
from tests.support.processes import (
    both_up,
    children,
    pg_config,
    readiness,
    start_gateway_process,
    stop_process,
    until,
    write_config,
)
from tests.support.services import free_port, postgres_url


async def test_two_workers_on_a_new_postgres_database_five_times(tmp_path, redis_prefix) -> None:
    """Five fresh databases, `run --workers 2` on each: both up, no unique violation."""
    for attempt in range(5):
        urls = postgres_url()
        url = await urls.__anext__()
        try:
            port = free_port()
            proc = start_gateway_process(pg_config(tmp_path, url, port, redis_prefix), port,
                                         extra=("--workers", "2"))
            base = f"http://127.0.0.1:{port}"
            try:
                await until(lambda: both_up(base, proc.pid))  # noqa: B023 (awaited here)
            finally:
                stop_process(proc)
            output = proc.stdout.read().decode()
            assert "UniqueViolation" not in output and "Traceback" not in output, output
            assert proc.returncode == 0, (attempt, output)
        finally:
            await urls.aclose()


async def test_killed_worker_is_restarted_and_serves(tmp_path, redis_prefix) -> None:
    """kill -9 of a worker: the master starts another, readyz and metrics count it."""
    urls = postgres_url()
    url = await urls.__anext__()
    port = free_port()
    proc = start_gateway_process(pg_config(tmp_path, url, port, redis_prefix), port,
                                 extra=("--workers", "2"))
    base = f"http://127.0.0.1:{port}"
    try:
        first = await until(lambda: _pids(proc.pid, 2))
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)

        async def fewer() -> bool:
            return (await readiness(base))["workers"]["alive"] == 1
        await until(fewer, 5)
        body = await readiness(base)
        assert body["ready"] and body["degraded"]  # one serves meanwhile: ready, says so
        after = await until(lambda: _pids(proc.pid, 2, without=victim))
        assert victim not in after
        await until(lambda: _ready_with(base, 2))
        statuses = []
        for _ in range(20):  # a new connection each time: either worker answers
            async with aiohttp.ClientSession() as session, \
                    session.get(f"{base}/_gateway/healthz") as resp:
                statuses.append(resp.status)
        assert statuses == [200] * 20
        async with aiohttp.ClientSession() as session, \
                session.get(f"{base}/_gateway/metrics") as resp:
            text = await resp.text()
        assert "csrgw_workers_alive 2.0" in text and "csrgw_workers_configured 2.0" in text
    finally:
        stop_process(proc)
        await urls.aclose()
    assert proc.returncode == 0
    assert "died (exit code -9)" in proc.stdout.read().decode()


async def _pids(master: int, count: int, without: int | None = None) -> set[int] | None:
    found = children(master) - {without}
    return found if len(found) == count else None


async def _ready_with(base: str, alive: int) -> bool:
    body = await readiness(base)
    return bool(body["ready"]) and body["workers"]["alive"] == alive and not body["degraded"]


async def test_workers_dying_on_start_make_the_master_exit_non_zero(tmp_path) -> None:
    """A port taken by another program: every worker dies at start; the master gives up, 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, "http://127.0.0.1:1", port, worker_max_deaths=2,
                              worker_death_window=60)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config),
                               "--workers", "2", "--allow-demo-passwords"],
                              capture_output=True, timeout=120)
    output = proc.stdout.decode() + proc.stderr.decode()
    print(f"\nmaster gave up after {time.monotonic() - started:.1f} s")
    assert proc.returncode == 1, output
    assert "workers died within 60 s; stopping" in output


async def test_replicas_opening_a_new_database_together_migrate_once(tmp_path) -> None:
    """Three directories opened at once on a new PostgreSQL database: one migrates and
    seeds, the others wait for it; none fails."""
    from gateway.directory import Directory

    urls = postgres_url()
    url = await urls.__anext__()
    try:
        seed = ROOT / "config" / "directory.yaml"
        opened = await asyncio.gather(*(Directory.open(url, seed) for _ in range(3)))
        assert {d.schema for d in opened} == {HEAD_REVISION}
        assert len({len(d.snapshot.users) for d in opened}) == 1
        for directory in opened:
            await directory.close()
    finally:
        await urls.aclose()


async def test_migrate_command(tmp_path) -> None:
    """`csr-gateway migrate --config FILE` brings a new database up and says to what."""
    config = write_config(tmp_path, "http://127.0.0.1:1", free_port())
    done = subprocess.run([sys.executable, "-m", "gateway", "migrate", "--config", str(config)],
                          capture_output=True, timeout=120, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"directory schema at revision {HEAD_REVISION}"
    assert (tmp_path / "directory.sqlite3").exists()
