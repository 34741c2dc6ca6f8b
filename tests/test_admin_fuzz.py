"""The admin API fuzzed from its own OpenAPI document (schemathesis): never a 500."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.conftest import (
    PASSWORD,
    free_port,
    start_gateway_process,
    stop_process,
    write_config,
)


async def test_admin_api_fuzz_finds_no_server_error(tmp_path, seeded_directory,
                                                    upstream) -> None:
    """Every admin endpoint with generated input answers 2xx/4xx, never 5xx."""
    shutil.copyfile(seeded_directory, tmp_path / "directory.sqlite3")
    port = free_port()
    proc = start_gateway_process(write_config(tmp_path, upstream.url, port), port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await s.post(f"{base}/_gateway/login", data={"username": "admin-ann",
                                                          "password": PASSWORD})
            token = (await (await s.get(f"{base}/_gateway/whoami")).json())["csrf_token"]
            cookie = next(c for c in s.cookie_jar if c.key == "csrgw_session").value
        result = subprocess.run(
            [str(Path(sys.executable).parent / "st"), "run",
             f"{base}/_gateway/api/openapi.json", "--url", base,
             "--checks", "not_a_server_error", "--max-examples", "15",
             "--exclude-path-regex", ".*/sessions.*",  # would end the fuzzer's own session
             "-H", f"Cookie: csrgw_session={cookie}", "-H", f"X-CSRF-Token: {token}",
             "--request-timeout", "10"],
            capture_output=True, text=True, timeout=600)
    finally:
        stop_process(proc)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
