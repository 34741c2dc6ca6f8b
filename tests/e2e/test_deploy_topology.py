"""The topology deploy/ describes, on this machine: two `csr-gateway run` replicas sharing the
real Redis and PostgreSQL behind the real nginx site file, in front of the demo shop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.nginx import nginx_main_config, render_nginx_site, require_nginx
from tests.support.processes import start_gateway_process, stop_process, write_config
from tests.support.services import free_port, postgres_url

PASSWORD = "topology-pass-5"  # not the demo one: `run` serves only real directories
SEED = {"companies": [{"id": "acme", "name": "Acme Corp"}], "users": [
    {"username": "admin-ann", "email": "ann@example.com", "kind": "staff",
     "groups": ["Administrator"], "password": PASSWORD},
    {"username": "csr-carol", "email": "carol@example.com", "kind": "staff", "groups": ["CSR"],
     "assigned_companies": ["acme"], "password": PASSWORD},
    {"username": "buyer-alice", "email": "alice@acme.example", "kind": "customer",
     "first_name": "Alice", "last_name": "Anders", "company": "acme",
     "account_number": "ACME-0001", "groups": ["Buyer"], "password": PASSWORD}]}


@dataclass
class Topology:
    base: str  # nginx
    gateways: list[Any]
    audit_paths: list[Path]
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def audit(self) -> list[dict[str, Any]]:
        lines = []
        for path in self.audit_paths:
            if path.exists():
                lines += [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
        return lines


async def _shop(topology_seen: list[tuple[str, str, dict[str, str]]], jwks: str) -> TestServer:
    from gateway.demo.shop import create_shop_app

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        topology_seen.append((request.method, request.path,
                              {k.lower(): v for k, v in request.headers.items()}))
        return await handler(request)

    shop = create_shop_app(jwks_url=jwks)
    shop.middlewares.append(record)
    server = TestServer(shop, host="127.0.0.1")
    await server.start_server()
    return server


def _start_nginx(nginx: str, tmp: Path, gateways: list[int], port: int) -> subprocess.Popen[bytes]:
    site = tmp / "csr-gateway.conf"
    site.write_text(render_nginx_site(gateways, port))
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_main_config(tmp, site))
    proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
                            stderr=subprocess.PIPE)
    import socket

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.1)
    raise RuntimeError("nginx did not start")


@pytest.fixture
async def topology(tmp_path: Path, redis_prefix: str) -> AsyncIterator[Topology]:
    nginx = require_nginx()
    urls = postgres_url()
    database = await urls.__anext__()
    seen: list[tuple[str, str, dict[str, str]]] = []
    port = free_port()
    shop = await _shop(seen, f"http://127.0.0.1:{port}/_gateway/.well-known/jwks.json")
    seed = tmp_path / "users.yaml"
    seed.write_text(yaml.safe_dump(SEED))
    keys = tmp_path / "keys"  # one signing key for both, as the compose volume / k8s Secret
    procs: list[Any] = []
    nginx_proc = None
    try:
        ports, audits = [], []
        for n in (1, 2):  # one after the other, as compose's depends_on orders them
            state = tmp_path / f"gateway-{n}"
            state.mkdir()
            gw_port = free_port()
            config = write_config(
                state, str(shop.make_url("")).rstrip("/"), gw_port,
                sessions={"store": "redis", "redis_prefix": redis_prefix},
                directory={"url": database, "seed": str(seed), "refresh_seconds": 0.2},
                assertion={"keys_dir": str(keys)},
                audit={"fsync": "always"}, trusted_proxies=["127.0.0.1/32"])
            procs.append(start_gateway_process(config, gw_port))
            ports.append(gw_port)
            audits.append(state / "audit.jsonl")
        nginx_proc = _start_nginx(nginx, tmp_path, ports, port)
        yield Topology(f"http://127.0.0.1:{port}", procs, audits, seen)
    finally:
        if nginx_proc is not None:
            nginx_proc.terminate()
            nginx_proc.wait(timeout=10)
        for proc in procs:
            if proc.poll() is None:
                stop_process(proc)
        await shop.close()
        await urls.aclose()


def _browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(browser: aiohttp.ClientSession, base: str, user: str) -> str:
    async with browser.post(f"{base}/_gateway/login", data={
            "username": user, "password": PASSWORD}, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
    async with browser.get(f"{base}/_gateway/whoami") as resp:
        return str((await resp.json())["csrf_token"])


@pytest.mark.nginx
@pytest.mark.postgres
async def test_revocation_through_the_balancer_ends_the_impersonation(topology) -> None:
    """Logged in and impersonating through nginx; the admin revokes the assignment (on
    whichever replica nginx picks); the CSR's next requests no longer act as the buyer."""
    base = topology.base
    async with _browser() as csr, _browser() as admin:
        token = await _login(csr, base, "csr-carol")
        async with csr.post(f"{base}/_gateway/impersonate", data={
                "buyer": "buyer-alice", "reason": "TICKET-9", "csrf_token": token},
                allow_redirects=False) as resp:
            assert resp.status == 303
        for _ in range(4):  # both replicas (round robin) serve the impersonation
            async with csr.get(f"{base}/cart") as resp:
                assert resp.status == 200
            _method, _path, headers = topology.seen[-1]
            assert headers["x-remote-user"] == "buyer-alice"
            assert headers["x-impersonator"] == "csr-carol"
        admin_token = await _login(admin, base, "admin-ann")
        async with admin.delete(f"{base}/_gateway/api/assignments/acme/csr-carol",
                                headers={"X-CSRF-Token": admin_token}) as resp:
            assert resp.status in (200, 204), await resp.text()
        deadline = time.monotonic() + 10
        while True:
            async with csr.get(f"{base}/cart") as resp:
                if resp.status != 200:
                    break
            assert time.monotonic() < deadline, "the impersonation outlived its revocation"
            await asyncio.sleep(0.1)
        ended_at = len(topology.seen)
        for _ in range(4):  # and on every replica from now on
            async with csr.get(f"{base}/_gateway/whoami") as resp:
                assert (await resp.json())["acting_as"] is None
            async with csr.get(f"{base}/cart") as resp:
                assert resp.status != 200
        assert all(h.get("x-impersonator") is None for _m, _p, h in topology.seen[ended_at:])
    ended = [r for r in topology.audit() if r["event"] == "impersonation_end"]
    assert ended and ended[-1]["csr"] in ("csr-carol", None)


@pytest.mark.nginx
@pytest.mark.postgres
async def test_a_killed_replica_fails_over_and_nothing_reaches_the_shop_unaudited(
        topology) -> None:
    """Under a light load through nginx, SIGKILL one gateway: every request still succeeds
    (nginx retries on the other), and every request the shop received carries a request id
    found in one of the two audit files, except requests cut inside the killed replica,
    which nginx re-sent, audited, through the other."""
    base = topology.base
    statuses: list[int] = []
    stop = asyncio.Event()
    async with _browser() as buyer:
        await _login(buyer, base, "buyer-alice")

        async def load() -> None:
            while not stop.is_set():
                async with buyer.get(f"{base}/cart") as resp:
                    await resp.read()
                    statuses.append(resp.status)

        workers = [asyncio.create_task(load()) for _ in range(3)]
        await asyncio.sleep(1.0)
        victim = topology.gateways[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        before_kill = len(statuses)
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*workers)
    assert before_kill > 0 and len(statuses) > before_kill + 5
    assert set(statuses) == {200}, [s for s in statuses if s != 200]
    stop_process(topology.gateways[1])  # flushes the survivor's audit
    audited = {r["request_id"] for r in topology.audit() if r["event"] == "request"}
    received = [(m, p, h["x-request-id"]) for m, p, h in topology.seen]
    missing = [(m, p) for m, p, rid in received if rid not in audited]
    # Only GETs in flight inside the killed process at the moment of the kill (at most one
    # per load task); nginx re-sent each, so the client still got an audited 200.
    assert len(missing) <= len(workers), missing
    assert all(m == "GET" for m, _p in missing), missing
