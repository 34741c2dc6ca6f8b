"""Real-browser fixtures: `csr-gateway demo` as a user starts it, Debian's chromium."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.gateway import IN_CI, ROOT
from tests.support.processes import stop_process
from tests.support.services import free_port

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Demo:
    base: str
    audit: Path
    shop_port: int


def require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if IN_CI:
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """`csr-gateway demo` on free ports with its own state dir and audit log."""
    yield from running_demo(tmp_path)


def running_demo(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Demo]:
    """The demo as a user starts it; `env` adds CSRGW_ overrides of its configuration."""
    import time
    import urllib.request

    port, shop = free_port(), free_port()
    audit = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--port", str(port), "--upstream-port",
         str(shop), "--state-dir", str(tmp_path / "state"), "--audit-log", str(audit)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 40
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_gateway/healthz", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "no demo") \
                    from None
            time.sleep(0.2)
    yield Demo(f"http://127.0.0.1:{port}", audit, shop)
    stop_process(proc)


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    require_chromium()
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        await launched.close()


async def shot(page: object, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


async def log_in(page: object, base: str, username: str, password: str = "demo-pass-1") -> None:
    await page.goto(f"{base}/")  # type: ignore[attr-defined]
    await page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    await page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]


async def audit_until(demo: Demo, event: str, count: int = 1) -> list[dict[str, Any]]:
    """The demo flushes its audit every second: read until `event` is there `count` times."""
    lines: list[dict[str, Any]] = []
    for _ in range(50):
        lines = [orjson.loads(x) for x in demo.audit.read_bytes().splitlines()]
        if sum(r["event"] == event for r in lines) >= count:
            break
        await asyncio.sleep(0.1)
    return lines


async def tag_user(base: str, username: str, tag: str) -> None:
    """An administrator gives a user one tag through the admin API (the shipped policy's
    guards: `approval_required`, `mfa_required`)."""
    from aiohttp import ClientSession, CookieJar  # a plain client beside the browser

    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        async with session.post(f"{base}/_gateway/login", data={
                "username": "admin-ann", "password": "demo-pass-1"},
                allow_redirects=False) as resp:
            assert resp.status == 303
        async with session.get(f"{base}/_gateway/whoami") as resp:
            token = (await resp.json())["csrf_token"]
        async with session.patch(f"{base}/_gateway/api/users/{username}", json={"tags": [tag]},
                                 headers={"X-CSRF-Token": token}) as resp:
            assert resp.status == 200
