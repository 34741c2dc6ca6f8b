"""A real OpenID provider on loopback: the `oidc-provider` npm package under Node.js."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import IN_CI
from tests.support.processes import stop_process
from tests.support.services import free_port

HERE = Path(__file__).resolve().parent.parent / "oidc"  # the provider: tests/oidc/
CLIENT_ID, CLIENT_SECRET = "csr-gateway", "test-client-secret-0123456789"
USERS: dict[str, dict[str, Any]] = {
    "csr-carol": {"password": "idp-pass-1", "email": "carol@example.com",
                  "groups": ["cs-agents", "staff"], "amr": ["pwd", "otp"]},
    "csr-dave": {"password": "idp-pass-1", "email": "dave@example.com",
                 "groups": ["cs-agents"], "amr": ["pwd"]},
    "new-nina": {"password": "idp-pass-1", "email": "nina@example.com",
                 "groups": ["cs-agents"]},
    "stranger-sue": {"password": "idp-pass-1", "email": "sue@example.com",
                     "groups": ["marketing"]},
}


def ensure_installed() -> None:
    """`npm ci` from the lock file when the provider's packages are not there yet."""
    if shutil.which("node") is None:
        if IN_CI:
            pytest.fail("node is missing")
        pytest.skip("node is missing")
    if not (HERE / "node_modules" / "oidc-provider").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       timeout=300, capture_output=True)


@dataclass
class Idp:
    tmp: Path
    port: int = field(default_factory=free_port)
    proc: Any = None
    gateway_base: str = ""

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, gateway_base: str, rotate: bool = False) -> None:
        self.gateway_base = gateway_base
        keys = self.tmp / "idp-key.json"
        if rotate:
            keys.unlink(missing_ok=True)
        config = self.tmp / "idp.json"
        config.write_text(json.dumps({
            "port": self.port, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uri": f"{gateway_base}/_gateway/oidc/callback",
            "post_logout_redirect_uri": f"{gateway_base}/_gateway/login",
            "backchannel_logout_uri": f"{gateway_base}/_gateway/oidc/backchannel-logout",
            "keys_file": str(keys), "users": USERS}))
        self.proc = subprocess.Popen(["node", str(HERE / "provider.mjs"), str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("ready"):
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("the test provider did not start")

    def restart(self, rotate: bool) -> None:
        stop_process(self.proc)
        self.start(self.gateway_base, rotate=rotate)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    async def control(self, what: str, **data: Any) -> None:
        async with aiohttp.ClientSession() as http, http.post(
                f"{self.issuer}test/{what}", json=data) as resp:
            assert resp.status == 200, await resp.text()


async def sign_in(http: aiohttp.ClientSession, gateway_base: str, user: str,
                  password: str = "idp-pass-1", start: str = "/_gateway/oidc/start?next=/"
                  ) -> str:
    """Through the provider's own login form, up to the callback URL (not yet followed)."""
    url = start if start.startswith("http") else gateway_base + start
    for _ in range(10):
        async with http.get(url, allow_redirects=False) as resp:
            if resp.status in (302, 303):
                url = str(resp.url.join(aiohttp.client.URL(resp.headers["Location"])))
                if url.startswith(gateway_base + "/_gateway/oidc/callback"):
                    return url
                continue
            assert resp.status == 200, await resp.text()
            login_url = str(resp.url) + "/login"
        async with http.post(login_url, data={"login": user, "password": password},
                             allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            url = str(resp.url.join(aiohttp.client.URL(resp.headers["Location"])))
    raise AssertionError("no callback reached")
