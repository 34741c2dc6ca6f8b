"""`csr-gateway run` as a real process: its configuration, start, stop and login."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.support.gateway import CHEAP_PASSWORDS, PASSWORD, ROOT
from tests.support.services import free_port


def write_config(tmp_path: Path, upstream_url: str, port: int, **changes: Any) -> Path:
    """A gateway.yaml for a subprocess: the shipped one with absolute paths into tmp_path."""
    import yaml

    data = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    data["listen"] = {"host": "127.0.0.1", "port": port}
    data["upstream"]["url"] = upstream_url
    data["directory"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'directory.sqlite3'}"
    data["directory"]["seed"] = str(ROOT / "config" / "directory.yaml")
    data["directory"].update(CHEAP_PASSWORDS)
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


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


async def readiness(base: str) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as session, \
            session.get(f"{base}/_gateway/readyz") as resp:
        return await resp.json()  # type: ignore[no-any-return]


async def until(check, seconds: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = await check()
        except aiohttp.ClientConnectionError:
            # a connection the kernel had queued on a worker that just died is reset (one
            # SO_REUSEPORT socket per worker): not yet, ask again
            found = None
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("never happened")


def pg_config(tmp_path: Path, url: str, port: int, redis_prefix: str,
              upstream_url: str = "http://127.0.0.1:1", **extra: object) -> Path:
    return write_config(tmp_path, upstream_url, port,
                        directory={"url": url, "seed": str(ROOT / "config" / "directory.yaml")},
                        sessions={"store": "redis", "redis_prefix": redis_prefix}, **extra)


async def both_up(base: str, master: int) -> bool:
    body = await readiness(base)
    return body.get("workers") == {"alive": 2, "configured": 2} and body["ready"] \
        and len(children(master)) == 2
