"""The wheel as a new user installs it: a fresh venv, an empty directory, no source tree."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import ROOT, Upstream
from tests.support.processes import stop_process
from tests.support.services import free_port

BUNDLED = ("gateway/defaults/config/gateway.yaml", "gateway/defaults/config/directory.yaml",
           "gateway/defaults/policies/pages.polar",
           "gateway/defaults/policies/impersonation.polar",
           "gateway/defaults/policies/tests/pages.yaml",
           # the languages: compiled catalogues the pages read, and their sources
           "gateway/locale/messages.pot", "gateway/locale/de/LC_MESSAGES/messages.po",
           "gateway/locale/de/LC_MESSAGES/messages.mo")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One non-editable wheel per session, built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(out.glob("csr_gateway-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies from the
    configured package mirrors; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=900)
    return venv / "bin"


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    where = tmp_path / "empty"
    where.mkdir()
    return where


def _env() -> dict[str, str]:
    """The environment without anything that would let the source tree leak in."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CSRGW_ALLOW_DEMO_PASSWORDS")}


def test_wheel_carries_the_defaults(wheel: Path) -> None:
    """The demo configuration, seed, policies and their tables are inside the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(BUNDLED) <= names


def test_installed_package_is_not_the_checkout(installed: Path, empty_dir: Path) -> None:
    """The venv imports the installed copy, so the tests below prove the wheel."""
    out = subprocess.run([str(installed / "python"), "-c",
                          "import gateway, gateway.defaults as d; print(gateway.__file__); "
                          "print(d.DEMO_CONFIG.exists())"],
                         cwd=empty_dir, env=_env(), capture_output=True, text=True, check=True)
    where, exists = out.stdout.split()
    assert str(ROOT) not in where and "site-packages" in where and exists == "True"


def test_policy_tools_from_an_empty_directory(installed: Path, empty_dir: Path) -> None:
    """`policy test` and `policy matrix` work on the bundled policy with no --config."""
    test = subprocess.run([str(installed / "csr-gateway"), "policy", "test"], cwd=empty_dir,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert test.returncode == 0, test.stderr
    assert " passed, 0 failed" in test.stdout
    matrix = subprocess.run([str(installed / "csr-gateway"), "policy", "matrix"],
                            cwd=empty_dir, env=_env(), capture_output=True, text=True,
                            timeout=120)
    assert matrix.returncode == 0 and "storefront" in matrix.stdout.lower()
    assert list(empty_dir.iterdir()) == []


async def _healthy(proc: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"exited {proc.returncode}: {out}")
            try:
                async with session.get(f"{base}/_gateway/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("did not become healthy")




@pytest.fixture
def spawn() -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], cwd: Path, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, cwd=cwd, env={**_env(), **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        stop_process(proc)


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_demo_from_an_empty_directory(installed: Path, empty_dir: Path, spawn,
                                            client: aiohttp.ClientSession) -> None:
    """`csr-gateway demo` from an empty directory: csr-carol logs in and acts for
    buyer-alice; its state lands in ./var."""
    port, shop = free_port(), free_port()
    proc = spawn([str(installed / "csr-gateway"), "demo", "--port", str(port),
                  "--upstream-port", str(shop)], empty_dir)
    base = f"http://127.0.0.1:{port}"
    await _healthy(proc, base)
    async with client.post(f"{base}/_gateway/login", allow_redirects=False, data={
            "username": "csr-carol", "password": "demo-pass-1"}) as resp:
        assert resp.status == 303
    async with client.get(f"{base}/_gateway/whoami") as resp:
        csrf = (await resp.json())["csrf_token"]
    async with client.post(f"{base}/_gateway/impersonate", allow_redirects=False, data={
            "buyer": "buyer-alice", "reason": "TICKET-1", "csrf_token": csrf}) as resp:
        assert resp.status == 303
    async with client.get(f"{base}/_gateway/whoami") as resp:
        assert (await resp.json())["acting_as"] == "buyer-alice"
    async with client.get(f"{base}/cart") as resp:
        assert resp.status == 200
    stop_process(proc)  # flushes the audit
    assert proc.returncode == 0
    assert b"impersonation" in (empty_dir / "var" / "audit.jsonl").read_bytes()
    assert (empty_dir / "var" / "directory.sqlite3").exists()


async def test_init_check_run(installed: Path, tmp_path: Path, empty_dir: Path, spawn,
                              upstream: Upstream, client: aiohttp.ClientSession) -> None:
    """`init` writes a starter that `check` accepts and `run` serves, from another cwd."""
    cli = str(installed / "csr-gateway")
    made = subprocess.run([cli, "init", "shop"], cwd=empty_dir, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    config = empty_dir / "shop" / "config" / "gateway.yaml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    env = {"SHOP_URL": upstream.url, "CSRGW_LISTEN__PORT": str(port)}
    checked = subprocess.run([cli, "check", "--config", str(config)], cwd=elsewhere,
                             env={**_env(), **env}, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert ": ok (" in checked.stdout and "0 warning(s)" in checked.stdout
    tables = subprocess.run([cli, "policy", "test", "--config", str(config)], cwd=elsewhere,
                            env=_env(), capture_output=True, text=True, timeout=60)
    assert tables.returncode == 0, tables.stdout + tables.stderr
    proc = spawn([cli, "run", "--config", str(config)], elsewhere, env)
    base = f"http://127.0.0.1:{port}"
    await _healthy(proc, base)
    async with client.get(f"{base}/static/app.css") as resp:
        assert resp.status == 200
    assert upstream.last.raw_path == "/static/app.css"
    async with client.get(f"{base}/", allow_redirects=False) as resp:
        assert resp.status in (302, 303) and "/_gateway/login" in resp.headers["Location"]
    state = empty_dir / "shop" / "var"
    assert (state / "directory.sqlite3").exists() and (state / "keys").is_dir()
    assert not (elsewhere / "var").exists()
