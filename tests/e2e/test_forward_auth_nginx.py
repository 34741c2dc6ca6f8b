"""Forward-auth: real nginx asks /_gateway/authz per request (over keep-alive connections,
as docs/forward-auth.md configures it) and forwards to the shop."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import pytest
from yarl import URL

from tests.support.gateway import IN_CI, PASSWORD
from tests.support.processes import start_gateway_process, stop_process, write_config
from tests.support.services import free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                  else None)
# The configuration docs/forward-auth.md shows (one file, also the bench's), in a minimal
# nginx of the test's own.
FORWARD_AUTH = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "forward-auth.conf"
CONF = """
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 128; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
{forward_auth}
}}
"""


def forward_auth(gateway: str, shop: str, listen: str) -> str:
    text = FORWARD_AUTH.read_text()
    for mark, value in (("@GATEWAY@", gateway), ("@SHOP@", shop), ("@LISTEN@", listen),
                        ("# @AUTHZ_EXTRA@", "")):
        assert mark in text, mark
        text = text.replace(mark, value)
    return text


@dataclass
class Front:
    base: str
    audit_path: Path

    def audit(self) -> list[dict[str, Any]]:
        with open(self.audit_path, "rb") as fh:
            return [orjson.loads(line) for line in fh if line.strip()]


FENCED_CSR, FENCE, INSIDE_FENCE = "csr-dave", "10.9.0.0/16", "10.9.0.5"


async def _fence(directory: Path) -> None:
    from gateway.directory import Directory
    from gateway.directory.service import DirectoryService

    opened = await Directory.open(f"sqlite+aiosqlite:///{directory}")
    await DirectoryService(opened).update_user(FENCED_CSR, {"ip_fence": [FENCE]})
    await opened.close()


@pytest.fixture
async def nginx_front(tmp_path: Path, seeded_directory, upstream) -> AsyncIterator[Front]:
    if NGINX is None:
        if IN_CI:
            pytest.fail("nginx is missing (apt-get install nginx-light)")
        pytest.skip("nginx is missing")
    shutil.copyfile(seeded_directory, tmp_path / "directory.sqlite3")
    await _fence(tmp_path / "directory.sqlite3")
    gw_port, port = free_port(), free_port()
    gateway = start_gateway_process(write_config(
        tmp_path, upstream.url, gw_port, trusted_proxies=["127.0.0.1/32"],
        audit={"fsync": "always"}), gw_port)
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF.format(tmp=tmp_path, forward_auth=forward_auth(
        f"127.0.0.1:{gw_port}", upstream.url, f"127.0.0.1:{port}")))
    nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf), "-g",
                              "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield Front(f"http://127.0.0.1:{port}", tmp_path / "audit.jsonl")
    nginx.terminate()
    nginx.wait(timeout=10)
    stop_process(gateway)


async def _session(base: str, user: str | None, buyer: str | None) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    if user:
        await session.post(f"{base}/_gateway/login", data={"username": user,
                                                           "password": PASSWORD})
    if buyer:
        token = (await (await session.get(f"{base}/_gateway/whoami")).json())["csrf_token"]
        await session.post(f"{base}/_gateway/impersonate", data={"buyer": buyer,
                                                                  "csrf_token": token})
    return session


@pytest.mark.nginx
@pytest.mark.parametrize(("user", "buyer", "path", "status", "seen_user", "seen_csr"), [
    (None, None, "/cart", 303, None, None),
    ("buyer-alice", None, "/cart", 200, "buyer-alice", ""),
    ("buyer-alice", None, "/admin", 403, None, None),
    ("buyer-alice", None, "/a%2fb", 403, None, None),
    ("csr-carol", "buyer-alice", "/cart", 200, "buyer-alice", "csr-carol"),
    ("csr-carol", "buyer-alice", "/account/password", 403, None, None),
], ids=["anonymous", "buyer", "buyer-admin", "bad-path", "impersonating", "sensitive"])
async def test_nginx_auth_request(nginx_front, upstream, user, buyer, path, status, seen_user,
                                  seen_csr) -> None:
    """nginx forwards only what the gateway allowed, with the gateway's identity headers,
    never the client's."""
    session = await _session(nginx_front.base, user, buyer)
    before = len(upstream.seen)
    async with session.get(f"{nginx_front.base}{path}", allow_redirects=False, headers={
            "X-Remote-User": "admin-ann", "Accept": "application/json"}) as resp:
        assert resp.status == status
    await session.close()
    if status != 200:
        assert len(upstream.seen) == before
        return
    seen = upstream.last
    assert seen.all("X-Remote-User") == [seen_user]
    assert (seen.header("X-Impersonator") or "") == seen_csr
    assert seen.header("X-Gateway-Assertion")


FORGED = {"X-Forwarded-For": INSIDE_FENCE}


@pytest.mark.nginx
@pytest.mark.parametrize("forged", [
    {"X-Forwarded-For": INSIDE_FENCE},
    {"X-Forwarded-For": f"{INSIDE_FENCE}, 127.0.0.1"},
    {"Forwarded": f"for={INSIDE_FENCE}"},
    {"X-Real-IP": INSIDE_FENCE},
], ids=["xff", "xff-ending-in-trusted", "forwarded", "x-real-ip"])
async def test_forged_client_address_is_ignored(nginx_front, forged) -> None:
    """A client's own forwarding headers never become its address: the audit records the
    real one and an IP-fenced CSR stays outside its fence."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f"{nginx_front.base}/_gateway/login", headers=forged,
                                data={"username": FENCED_CSR, "password": PASSWORD},
                                allow_redirects=False) as resp:
            assert resp.status == 403
        async with session.get(f"{nginx_front.base}/cart", headers=forged,
                               allow_redirects=False) as resp:
            assert resp.status == 303
    lines = nginx_front.audit()
    assert {line["client_ip"] for line in lines if line.get("event") == "request"} == \
        {"127.0.0.1"}
    assert any(line.get("reason") == "ip_fenced" for line in lines)


@pytest.mark.nginx
@pytest.mark.parametrize("target", [
    "/cart?item=a&qty=2",
    "/products/p-1?q=a%26b%3Dc&x=%2F%2F",
    "/orders/a%20b?next=%2F%2Fevil.example",
], ids=["two-params", "encoded-specials", "nested-next"])
async def test_login_redirect_keeps_the_whole_target(nginx_front, upstream, target) -> None:
    """The 401 redirect carries `next` encoded, and after login it leads back to the very
    same path and query."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        url = URL(nginx_front.base + target, encoded=True)
        async with session.get(url, allow_redirects=False) as resp:
            assert resp.status == 303
            location = resp.headers["Location"]
        assert urlsplit(location).path == "/_gateway/login"
        assert parse_qs(urlsplit(location).query)["next"] == [target]
        async with session.post(f"{nginx_front.base}/_gateway/login", data={
                "username": "buyer-alice", "password": PASSWORD,
                "next": parse_qs(urlsplit(location).query)["next"][0]},
                allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == target


@pytest.mark.nginx
async def test_gateway_cookie_never_reaches_the_shop(nginx_front, upstream) -> None:
    """The shop gets the client's other cookies, never the gateway's session cookie."""
    session = await _session(nginx_front.base, "buyer-alice", None)
    session.cookie_jar.update_cookies({"cart": "c-1", "lang": "de"},
                                      URL(nginx_front.base))
    async with session.get(f"{nginx_front.base}/cart") as resp:
        assert resp.status == 200
    await session.close()
    cookie = upstream.last.header("Cookie") or ""
    assert "csrgw_session" not in cookie
    assert sorted(part.strip() for part in cookie.split(";")) == ["cart=c-1", "lang=de"]


@pytest.mark.nginx
@pytest.mark.parametrize(("raw", "decided"), [
    ("/products/x/../../cart", "/cart"),
    ("//cart", "/cart"),
    ("/./cart", "/cart"),
    ("/products/%70-1", "/products/p-1"),
    ("/products/p-1/./", "/products/p-1/"),
], ids=["dot-dot", "double-slash", "dot", "encoded-letter", "trailing-dot-segment"])
async def test_shop_gets_the_decided_path(nginx_front, upstream, raw, decided) -> None:
    """The shop receives the canonical path the gateway decided on, not the raw one."""
    session = await _session(nginx_front.base, "buyer-alice", None)
    async with session.get(URL(nginx_front.base + raw, encoded=True)) as resp:
        assert resp.status == 200, raw
    await session.close()
    assert upstream.last.raw_path == decided


@pytest.mark.nginx
async def test_decided_path_refusal_reaches_no_shop(nginx_front, upstream) -> None:
    """A path the gateway refuses (an encoded slash) is refused by nginx too."""
    session = await _session(nginx_front.base, "buyer-alice", None)
    before = len(upstream.seen)
    async with session.get(URL(nginx_front.base + "/cart%2f..%2fadmin", encoded=True)) as resp:
        assert resp.status == 403
    await session.close()
    assert len(upstream.seen) == before


@pytest.mark.nginx
async def test_post_through_nginx_has_its_intent_line(nginx_front, upstream) -> None:
    """A POST nginx forwards after the gateway's 200 has its request_intent line, by the
    request id the shop received."""
    session = await _session(nginx_front.base, "csr-carol", "buyer-alice")
    async with session.post(f"{nginx_front.base}/cart/add", data={"sku": "A-1"},
                            allow_redirects=False) as resp:
        assert resp.status == 200
    await session.close()
    seen = upstream.last
    assert seen.method == "POST" and seen.header("X-Impersonator") == "csr-carol"
    intents = [line for line in nginx_front.audit() if line.get("event") == "request_intent"
               and line["request_id"] == seen.header("X-Request-Id")]
    assert len(intents) == 1 and intents[0]["csr"] == "csr-carol" \
        and intents[0]["user"] == "buyer-alice"
