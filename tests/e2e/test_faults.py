"""Fault injection under load: Redis killed or frozen, PostgreSQL stopped, with the shop's
request log compared with the audit by request id."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.disk import records
from tests.support.processes import http_login, launch_gateway, stop_process
from tests.support.services import free_port, postgres_url

JSON = {"Accept": "application/json"}
CLIENTS = 4


@dataclass
class Shop:
    """A tiny upstream that logs every request id it carried out, and whether the
    request's intent line was already in the audit when it arrived."""

    audit_glob: str
    seen: list[tuple[str, str, bool]] = field(default_factory=list)  # method, id, intent
    url: str = ""

    def intent_on_disk(self, request_id: str) -> bool:
        needle = request_id.encode()
        for path in glob.glob(self.audit_glob):
            for raw in Path(path).read_bytes().splitlines():
                if needle in raw and b'"request_intent"' in raw:
                    return True
        return False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id", "")
        intent = request.method == "GET" or self.intent_on_disk(request_id)
        self.seen.append((request.method, request_id, intent))
        return web.json_response({"ok": True})


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    found = Shop(str(tmp_path / "audit*.jsonl"))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    server = TestServer(app)
    await server.start_server()
    found.url = str(server.make_url("")).rstrip("/")
    yield found
    await server.close()


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(
        f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"{name} is missing: the fault suite needs it")
    return found


class PrivateRedis:
    """A redis-server of this test's own, without persistence: a restart loses sessions."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir = free_port(), workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = _binary("redis-server")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)], stdout=subprocess.DEVNULL)
        _wait_port(self.port)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


class PrivateCluster:
    """A PostgreSQL cluster of this test's own (initdb as the postgres user), so stopping
    it touches nobody else."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="csrgw-pg-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data, self.port = self.root / "data", free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        self._as_postgres(_binary("initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "--no-sync")

    def start(self) -> None:
        self._as_postgres(_binary("pg_ctl"), "start", "-w", "-D", str(self.data),
                          "-l", str(self.root / "log"), "-o",
                          f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                          "-c fsync=off")

    def stop(self, mode: str = "immediate") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(_binary("pg_ctl"), "stop", "-w", "-m", mode, "-D",
                              str(self.data))


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    cluster.init()
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.root, ignore_errors=True)


def _wait_port(port: int, seconds: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@dataclass
class Sent:
    at: float
    method: str
    status: int
    seconds: float
    request_id: str | None


@dataclass
class Load:
    """A few impersonating CSRs doing GET /cart and POST /cart/add until told to stop."""

    base: str
    sent: list[Sent] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _sign_in(self, session: aiohttp.ClientSession) -> bool:
        with contextlib.suppress(aiohttp.ClientError, AssertionError, KeyError, ValueError):
            session.cookie_jar.clear()
            token = await http_login(session, self.base, "csr-carol")
            async with session.post(f"{self.base}/_gateway/impersonate", data={
                    "buyer": "buyer-alice", "reason": "TICKET-9", "csrf_token": token},
                    allow_redirects=False) as resp:
                return resp.status == 303
        return False

    async def _client(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=timeout) as session:
            signed_in = await self._sign_in(session)
            n = 0
            while not self.stop.is_set():
                if not signed_in:  # a Redis restart without persistence loses sessions
                    signed_in = await self._sign_in(session)
                    if not signed_in:
                        await asyncio.sleep(0.1)
                        continue
                n += 1
                method, path = ("POST", "/cart/add") if n % 2 else ("GET", "/cart")
                started = time.monotonic()
                try:
                    async with session.request(method, f"{self.base}{path}", headers=JSON,
                                               data={"sku": "A-1"} if method == "POST"
                                               else None, allow_redirects=False) as resp:
                        await resp.read()
                        status, rid = resp.status, resp.headers.get("X-Request-Id")
                except aiohttp.ClientError:
                    status, rid = 0, None
                self.sent.append(Sent(started, method, status, time.monotonic() - started,
                                      rid))
                if status in (401, 303):
                    signed_in = False
                await asyncio.sleep(0.02)

    async def run(self, fault: Callable[[], Awaitable[float]]) -> float:
        """Load, the fault (which returns when it is repaired), load until every client is
        served again; returns the recovery time from the repair to the next 200."""
        tasks = [asyncio.create_task(self._client()) for _ in range(CLIENTS)]
        await asyncio.sleep(1.5)
        repaired = await fault()
        deadline = repaired + 20
        while time.monotonic() < deadline and not any(
                s.status == 200 and s.at >= repaired for s in self.sent):
            await asyncio.sleep(0.05)
        recovered = min((s.at + s.seconds for s in self.sent
                         if s.status == 200 and s.at >= repaired), default=None)
        await asyncio.sleep(1.0)
        self.stop.set()
        await asyncio.gather(*tasks)
        assert recovered is not None, "the gateway did not serve again by itself"
        return recovered - repaired

    def during(self, start: float, end: float) -> list[Sent]:
        return [s for s in self.sent if start <= s.at and s.at + s.seconds <= end]


def gateway(tmp_path: Path, seeded: Path, shop: Shop, redis: PrivateRedis,
            directory_url: str) -> tuple[Any, str]:
    return launch_gateway(
        tmp_path, seeded, shop.url, extra=("--workers", "2"),
        sessions={"store": "redis", "redis_url": f"redis://127.0.0.1:{redis.port}/0"},
        directory={"url": directory_url, "refresh_seconds": 1})


def compare(name: str, tmp_path: Path, shop: Shop, load: Load, recovery: float,
            extra: str = "") -> None:
    """The shop's log against every per-worker audit file, by request id; prints figures."""
    lines = records(*(Path(p) for p in glob.glob(str(tmp_path / "audit*.jsonl"))))
    intents = {r["request_id"] for r in lines if r.get("event") == "request_intent"}
    outcomes = {r["request_id"] for r in lines if r.get("event") == "request"}
    forwarded = [(m, rid) for m, rid, _ in shop.seen]
    posts = [rid for m, rid in forwarded if m == "POST"]
    late = [rid for m, rid, on_disk in shop.seen if not on_disk]
    refused = sum(1 for s in load.sent if s.status == 503)
    print(f"\n{name}: sent={len(load.sent)} forwarded={len(forwarded)} "
          f"(POST {len(posts)}) refused_503={refused} intent_lines={len(intents)} "
          f"recovery={recovery:.3f}s{extra}")
    assert not late, f"{len(late)} POSTs reached the shop before their intent line"
    assert not [rid for rid in posts if rid not in intents], "POSTs forwarded without intent"
    assert not [rid for _, rid in forwarded if rid not in outcomes], \
        "forwarded requests without their request line"
    assert posts, "no state-changing request was carried out"


def outage(window: list[float], seconds: float, down: Callable[[], object],
           up: Callable[[], object]) -> Callable[[], Awaitable[float]]:
    """A fault for Load.run: `down`, `seconds` of outage (its start and end kept in
    `window`), `up`; answers when it was over."""
    async def fault() -> float:
        down()
        window[0] = time.monotonic()
        await asyncio.sleep(seconds)
        window[1] = time.monotonic()
        up()
        return time.monotonic()
    return fault


async def test_redis_killed_fails_closed_then_recovers(tmp_path, seeded_directory, shop,
                                                      private_redis) -> None:
    """Redis SIGKILLed: every request fails closed (503, nothing forwarded as anyone)
    while it is down; once it is back on its port the gateway serves again by itself."""
    urls = postgres_url()
    proc, base = gateway(tmp_path, seeded_directory, shop, private_redis,
                         await urls.__anext__())
    load, window = Load(base), [0.0, 0.0]
    fault = outage(window, 2.0, lambda: private_redis.signal(signal.SIGKILL),
                   private_redis.start)
    try:
        recovery = await load.run(fault)
    finally:
        stop_process(proc)
        await urls.aclose()
    down = load.during(window[0] + 0.3, window[1])
    assert down, "no request was sent while Redis was down"
    assert {s.status for s in down} <= {503}, {s.status for s in down}
    compare("redis killed", tmp_path, shop, load, recovery,
            f" refused_while_down={len(down)}")


async def test_redis_frozen_fails_closed_fast_then_recovers(tmp_path, seeded_directory, shop,
                                                           private_redis) -> None:
    """Redis SIGSTOPped: each request fails closed within well under the old multi-second
    hang; after SIGCONT the same sessions are served again."""
    urls = postgres_url()
    proc, base = gateway(tmp_path, seeded_directory, shop, private_redis,
                         await urls.__anext__())
    load, window = Load(base), [0.0, 0.0]
    fault = outage(window, 2.5, lambda: private_redis.signal(signal.SIGSTOP),
                   lambda: private_redis.signal(signal.SIGCONT))

    try:
        recovery = await load.run(fault)
    finally:
        private_redis.signal(signal.SIGCONT)
        stop_process(proc)
        await urls.aclose()
    frozen = [s for s in load.sent if window[0] + 0.3 <= s.at < window[1]]
    assert frozen, "no request was sent while Redis was frozen"
    slowest = max(s.seconds for s in frozen)
    assert {s.status for s in frozen if s.at + s.seconds <= window[1]} <= {503}
    assert slowest < 2.0, f"a request hung {slowest:.2f}s on a frozen Redis"
    compare("redis frozen", tmp_path, shop, load, recovery,
            f" refused_while_frozen={len(frozen)} slowest_refusal={slowest:.3f}s")


async def test_postgres_stopped_keeps_serving_or_fails_closed(tmp_path, seeded_directory,
                                                             shop, private_redis,
                                                             private_cluster) -> None:
    """The directory's PostgreSQL stopped mid-load (immediate) and started again:
    proxied traffic is served from the snapshot or refused 503, never let through
    wrongly, and readyz recovers without a restart."""
    proc, base = gateway(tmp_path, seeded_directory, shop, private_redis, private_cluster.url)
    load, window = Load(base), [0.0, 0.0]

    async def ready() -> bool:
        async with aiohttp.ClientSession() as s, s.get(f"{base}/_gateway/readyz") as resp:
            return resp.status == 200

    async def fault() -> float:
        await asyncio.to_thread(private_cluster.stop, "immediate")
        window[0] = time.monotonic()
        await asyncio.sleep(2.5)
        window[1] = time.monotonic()
        readyz_down[0] = not await ready()
        await asyncio.to_thread(private_cluster.start)
        return time.monotonic()

    async def fault_seen_by_readyz() -> float:
        repaired = await fault()
        while not await ready() and time.monotonic() < repaired + 20:
            await asyncio.sleep(0.05)
        ready_after[0] = time.monotonic() - repaired
        return repaired

    ready_after, readyz_down = [-1.0], [False]
    try:
        recovery = await load.run(fault_seen_by_readyz)
        assert await ready(), "readyz did not recover after PostgreSQL came back"
    finally:
        stop_process(proc)
    stopped = load.during(window[0], window[1])
    assert stopped, "no request was sent while PostgreSQL was down"
    assert readyz_down[0], "readyz said ready with the directory database down"
    statuses = {s.status for s in stopped}
    assert statuses <= {200, 503}, statuses
    served = sum(1 for s in stopped if s.status == 200)
    compare("postgres stopped", tmp_path, shop, load, recovery,
            f" served_while_down={served}/{len(stopped)} readyz_recovery={ready_after[0]:.3f}s")
    assert os.path.exists(private_cluster.data)
