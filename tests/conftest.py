"""Shared factories: a recording upstream on loopback and a real gateway in front of it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app.build import build_gateway, create_app
from gateway.app.protocol_audit import runner_kwargs
from gateway.config.load import load_settings
from gateway.core.settings import Settings
from gateway.runtime.gateway import GATEWAY, Gateway

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo-pass-1"
IN_CI = os.environ.get("CI") == "true"


@dataclass
class Seen:
    method: str
    raw_path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[0] if found else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower().replace("_", "-") == name.lower()]


@dataclass
class Upstream:
    """A shop stand-in that records what reached it and answers per path."""

    server: TestServer
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def last(self) -> Seen:
        return self.seen[-1]


UPSTREAM = web.AppKey("upstream", Upstream)


async def _record(request: web.Request) -> web.StreamResponse:
    upstream = request.app[UPSTREAM]
    body = await request.read()
    delay = float(request.headers.get("X-Test-Delay", "0"))
    if delay:
        await asyncio.sleep(delay)
    upstream.seen.append(Seen(request.method, request.raw_path,
                              [(k.decode(), v.decode()) for k, v in request.raw_headers], body))
    if request.path.endswith(".html") or request.path in ("/", "/cart", "/checkout"):
        return web.Response(text="<html><body><h1>shop page</h1></body></html>",
                            content_type="text/html")
    return web.json_response({"path": request.raw_path, "method": request.method})


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", _record)
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

    path = tmp_path_factory.mktemp("seed") / "directory.sqlite3"
    seed = ROOT / "config" / "directory.yaml"

    async def build() -> None:
        directory = await Directory.open(f"sqlite+aiosqlite:///{path}", seed)
        await directory.close()

    aio.run(build())
    return path


def test_settings(tmp_path: Path, upstream_url: str, **changes: Any) -> Settings:
    base = load_settings(ROOT / "config" / "gateway.yaml")
    sections = {k: v for k, v in changes.items() if isinstance(v, dict)}
    flat = {k: v for k, v in changes.items() if not isinstance(v, dict)}
    replaced = {name: dataclasses.replace(getattr(base, name), **values)
                for name, values in sections.items()}
    directory_url = sections.get("directory", {}).get(
        "url", f"sqlite+aiosqlite:///{tmp_path / 'directory.sqlite3'}")
    return dataclasses.replace(
        base, state_dir=tmp_path, watch_policies=False,
        directory=dataclasses.replace(replaced.pop("directory", base.directory),
                                      url=directory_url),
        upstream=dataclasses.replace(replaced.pop("upstream", base.upstream), url=upstream_url),
        assertion=dataclasses.replace(replaced.pop("assertion", base.assertion),
                                      keys_dir=tmp_path / "keys"),
        audit=dataclasses.replace(replaced.pop("audit", base.audit),
                                  path=str(tmp_path / "audit.jsonl")),
        **replaced, **flat)


GatewayFactory = Callable[..., Awaitable[TestClient]]


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


def gw_of(client: TestClient) -> Gateway:
    return client.server.app[GATEWAY]


async def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    resp = await client.post("/_gateway/login", data={"username": username,
                                                      "password": password, "next": "/"},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def whoami(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/_gateway/whoami", headers={"Accept": "application/json"})
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


async def impersonate(client: TestClient, buyer: str, reason: str = "TICKET-1") -> int:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/impersonate", data={
        "buyer": buyer, "reason": reason, "csrf_token": token}, allow_redirects=False)
    return resp.status


def audit_lines(client: TestClient) -> list[dict[str, Any]]:
    gw = gw_of(client)
    gw.audit.flush()
    with open(gw.settings.audit.path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def service_up(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """In CI a missing service fails the run; locally it skips with the reason."""
    if service_up(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, upstream_url: str, port: int, **changes: Any) -> Path:
    """A gateway.yaml for a subprocess: the shipped one with absolute paths into tmp_path."""
    import yaml

    data = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    data["listen"] = {"host": "127.0.0.1", "port": port}
    data["upstream"]["url"] = upstream_url
    data["directory"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'directory.sqlite3'}"
    data["directory"]["seed"] = str(ROOT / "config" / "directory.yaml")
    data["assertion"]["keys_dir"] = str(tmp_path / "keys")
    data["audit"]["path"] = str(tmp_path / "audit.jsonl")
    data["policies_dir"] = str(ROOT / "policies")
    for key, value in changes.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class RunningGateway:
    port: int
    audit_path: Path
    process: Any

    def audit(self) -> list[dict[str, Any]]:
        with open(self.audit_path, "rb") as fh:
            return [orjson.loads(line) for line in fh if line.strip()]


def start_gateway_process(config: Path, port: int, env: dict[str, str] | None = None,
                          extra: tuple[str, ...] = ()) -> Any:
    """`csr-gateway run` as a real process; returns once /_gateway/healthz answers."""
    import subprocess
    import sys
    import time
    import urllib.request

    # the shared fixtures serve the demo directory, which `run` refuses otherwise
    environment = {**os.environ, "CSRGW_ALLOW_DEMO_PASSWORDS": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config),
                             *extra], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_gateway/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gateway did not start")


def stop_process(proc: Any) -> None:
    import signal
    import subprocess

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def launch_gateway(tmp_path: Path, seeded: Path, upstream_url: str,
                   extra: tuple[str, ...] = (), **changes: Any) -> tuple[Any, str]:
    """A seeded `csr-gateway run` process in tmp_path; returns it and its base URL."""
    shutil.copyfile(seeded, tmp_path / "directory.sqlite3")
    port = free_port()
    proc = start_gateway_process(write_config(tmp_path, upstream_url, port, **changes), port,
                                 extra=extra)
    return proc, f"http://127.0.0.1:{port}"


async def http_login(session: Any, base: str, user: str, password: str = PASSWORD) -> str:
    """Log a plain aiohttp session in; returns its CSRF token."""
    async with session.post(f"{base}/_gateway/login", data={
            "username": user, "password": password}, allow_redirects=False) as resp:
        assert resp.status == 303
    async with session.get(f"{base}/_gateway/whoami") as resp:
        return str((await resp.json())["csrf_token"])
