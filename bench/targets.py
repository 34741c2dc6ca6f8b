"""The servers measured side by side: the upstream, minimal proxy, gateway and nginx."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import nginx
from bench.procs import HOST, Server, free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
SOURCE_ROOT = Path(__file__).resolve().parents[2]
DOWNLOADS = {"1m": 1024 ** 2, "1g": 1024 ** 3}
MAX_BODY = 2 * 1024 ** 3  # room for the 1 GB streaming budget line; costs nothing per request


def default_config() -> Path:
    from gateway.defaults import DEMO_CONFIG

    for base in (Path.cwd(), SOURCE_ROOT):
        if (base / "config" / "gateway.yaml").exists():
            return base / "config" / "gateway.yaml"
    return DEMO_CONFIG  # installed from a wheel: the bundled demo configuration


@dataclass
class GatewayConfig:
    """A temporary gateway.yaml: the given one with state, ports and stores of our own."""

    base: Path
    state: Path
    upstream_url: str
    policies: Path | None = None
    redis_prefix: str = field(default_factory=lambda: f"csrgw-bench-{secrets.token_hex(6)}:")

    @property
    def directory_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.state / 'directory.sqlite3'}"

    def data(self, port: int, workers: int) -> dict[str, Any]:
        raw: dict[str, Any] = yaml.safe_load(self.base.read_text())
        here = self.base.resolve().parent

        def absolute(value: str) -> str:
            return str((here / value).resolve())

        directory = raw.setdefault("directory", {})
        if directory.get("seed"):
            directory["seed"] = absolute(directory["seed"])
        directory["url"] = self.directory_url
        raw["policies_dir"] = str(self.policies or absolute(raw.get("policies_dir",
                                                                     "../policies")))
        raw["state_dir"] = str(self.state)
        raw["watch_policies"] = False
        raw["listen"] = {"host": HOST, "port": port}
        raw.setdefault("upstream", {})["url"] = self.upstream_url
        # the load is one session on many connections: its fair share is the whole pool
        raw["upstream"]["max_per_session"] = raw["upstream"].get("max_connections", 100)
        raw.setdefault("assertion", {})["keys_dir"] = str(self.state / "keys")
        raw.setdefault("audit", {})["path"] = str(self.state / f"audit-{workers}w.jsonl")
        raw.setdefault("limits", {})["max_body_bytes"] = MAX_BODY
        sessions = raw.setdefault("sessions", {})
        sessions["store"] = "redis" if workers > 1 else "memory"
        sessions["redis_url"] = REDIS_URL
        sessions["redis_prefix"] = self.redis_prefix
        return raw

    def write(self, port: int, workers: int) -> Path:
        path = self.state / f"gateway-{workers}w.yaml"
        path.write_text(yaml.safe_dump(self.data(port, workers), sort_keys=False))
        return path

    def cookie_name(self) -> str:
        raw = yaml.safe_load(self.base.read_text())
        return str((raw.get("sessions") or {}).get("cookie_name", "csrgw_session"))

    def seed(self) -> None:
        """Seed the directory once, before any worker starts (argon2 hashes are slow)."""
        asyncio.run(self.seed_async())

    async def seed_async(self) -> None:
        from gateway.directory import Directory

        seed = self.data(0, 1)["directory"].get("seed")
        self.state.mkdir(parents=True, exist_ok=True)
        directory = await Directory.open(self.directory_url, Path(seed) if seed else None)
        await directory.close()


def redis_up() -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection((HOST, 6379), timeout=1):
        return True
    return False


def drop_redis_keys(prefix: str) -> int:
    import redis

    conn = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(conn.scan_iter(match=prefix + "*", count=1000))
        if keys:
            conn.delete(*keys)
        return len(keys)
    finally:
        conn.close()


def upstream(folder: Path, use_nginx: bool = False, stream_mb: int = 1024) -> Server:
    """The shop stand-in. Python by default: nginx's `return` answers a POST before it has
    read the body, so uploads through it would not measure a whole body."""
    port = free_port()
    if use_nginx and nginx.available():
        sizes = {**DOWNLOADS, f"{stream_mb}m": stream_mb * 1024 ** 2}
        return nginx.upstream_server(folder / "nginx-upstream", port, sizes)
    return Server("python upstream", [sys.executable, "-m", "bench.upstream",
                                      str(port)], port, folder / "upstream.log")


def minproxy(folder: Path, upstream_url: str, workers: int) -> Server:
    port = free_port()
    return Server("minproxy", [sys.executable, "-m", "bench.minproxy", "--port",
                               str(port), "--upstream", upstream_url, "--workers",
                               str(workers)], port, folder / f"minproxy-{workers}w.log",
                  workers=workers)


def gateway(config: GatewayConfig, workers: int) -> Server:
    port = free_port()
    path = config.write(port, workers)
    # the bench logs in as the demo's personas, whose passwords `run` otherwise refuses
    argv = [sys.executable, "-m", "gateway", "run", "--config", str(path), "--workers",
            str(workers), "--allow-demo-passwords"]
    return Server("gateway", argv, port, config.state / f"gateway-{workers}w.log",
                  workers=workers)


def nginx_proxy(folder: Path, upstream_port: int, workers: int) -> Server | None:
    if not nginx.available():
        return None
    return nginx.proxy_server(folder / f"nginx-proxy-{workers}w", free_port(), upstream_port,
                              workers)


def authz_proxy(folder: Path, gateway_port: int, upstream_port: int,
                workers: int) -> Server | None:
    """Forward-auth: nginx keeps the data plane and asks the gateway about each request."""
    if not nginx.available():
        return None
    return nginx.authz_server(folder / f"nginx-authz-{workers}w", free_port(), gateway_port,
                              upstream_port, workers)


class AuditCounter:
    """Audit lines of one client address appended to a gateway's audit files (one per
    worker) since `mark()`: the proof that every request of a run was decided and logged."""

    def __init__(self, state: Path, workers: int, client_ip: str) -> None:
        self.pattern = f"audit-{workers}w*.jsonl"
        self.state = state
        self.needle = f'"client_ip":"{client_ip}"'.encode()
        self.offsets: dict[Path, int] = {}

    def mark(self) -> None:
        self.offsets = {p: p.stat().st_size for p in self.state.glob(self.pattern)}

    def count(self) -> int:
        found = 0
        for path in self.state.glob(self.pattern):
            with open(path, "rb") as fh:
                fh.seek(self.offsets.get(path, 0))
                found += fh.read().count(self.needle)
        return found

    def wait_for(self, expected: int, timeout: float = 2.5) -> int:
        """Lines are handed to the disk at the sink's 1-second commit: poll until there."""
        import time

        deadline = time.monotonic() + timeout
        found = self.count()
        while found < expected and time.monotonic() < deadline:
            time.sleep(0.1)
            found = self.count()
        return found
