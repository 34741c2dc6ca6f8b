"""The `csr-gateway` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import aiohttp

from tests.support.gateway import PASSWORD
from tests.support.processes import stop_process
from tests.support.services import free_port


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_gateway/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("demo did not start")


async def test_demo_in_front_of_another_shop(tmp_path, upstream) -> None:
    """`demo --upstream URL` serves the demo directory in front of a foreign shop; paths
    the demo routes do not know are decided as Storefront; the audit goes where told."""
    port = free_port()
    audit = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--port", str(port), "--upstream",
         upstream.url, "--state-dir", str(tmp_path / "state"), "--audit-log", str(audit)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(port, proc)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            async with s.post(f"{base}/_gateway/login", data={
                    "username": "buyer-alice", "password": PASSWORD},
                    allow_redirects=False) as resp:
                assert resp.status == 303
            async with s.get(f"{base}/wp/some/product-page") as resp:
                assert resp.status == 200
            async with s.get(f"{base}/account/password") as resp:
                assert resp.status == 200
        assert upstream.last.raw_path == "/account/password"
        assert upstream.seen[-2].header("X-Remote-User") == "buyer-alice"
    finally:
        stop_process(proc)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert f"http://127.0.0.1:{port}/" in output and "csr-carol" in output
    assert audit.exists() and b'"event":"login"' in audit.read_bytes()
    assert (tmp_path / "state" / "directory.sqlite3").exists()


def test_check_shipped_config_passes() -> None:
    """`csr-gateway check --config config/gateway.yaml` succeeds on the shipped files."""
    result = subprocess.run([sys.executable, "-m", "gateway", "check", "--config",
                             "config/gateway.yaml"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_help_lists_every_contract_command() -> None:
    """The CLI offers demo, run, check, policy, audit and bench."""
    result = subprocess.run([sys.executable, "-m", "gateway", "--help"], capture_output=True,
                            text=True, timeout=60)
    for command in ("demo", "run", "check", "policy", "audit", "bench"):
        assert command in result.stdout
