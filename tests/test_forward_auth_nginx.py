"""Forward-auth: real nginx asks /_gateway/authz per request and forwards to the shop."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import (
    IN_CI,
    PASSWORD,
    free_port,
    start_gateway_process,
    stop_process,
    write_config,
)

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                  else None)
CONF = """
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 128; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /_gateway/authz {{
      internal;
      proxy_pass http://127.0.0.1:{gateway}/_gateway/authz;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    location /_gateway/ {{ proxy_pass http://127.0.0.1:{gateway}; }}
    location / {{
      auth_request /_gateway/authz;
      auth_request_set $gw_user $upstream_http_x_remote_user;
      auth_request_set $gw_company $upstream_http_x_remote_company;
      auth_request_set $gw_groups $upstream_http_x_remote_groups;
      auth_request_set $gw_csr $upstream_http_x_impersonator;
      auth_request_set $gw_request $upstream_http_x_request_id;
      auth_request_set $gw_assertion $upstream_http_x_gateway_assertion;
      proxy_set_header X-Remote-User $gw_user;
      proxy_set_header X-Remote-Company $gw_company;
      proxy_set_header X-Remote-Groups $gw_groups;
      proxy_set_header X-Impersonator $gw_csr;
      proxy_set_header X-Request-Id $gw_request;
      proxy_set_header X-Gateway-Assertion $gw_assertion;
      proxy_pass {upstream};
    }}
  }}
}}
"""


@pytest.fixture
def nginx_front(tmp_path: Path, seeded_directory, upstream):
    if NGINX is None:
        if IN_CI:
            pytest.fail("nginx is missing (apt-get install nginx-light)")
        pytest.skip("nginx is missing")
    shutil.copyfile(seeded_directory, tmp_path / "directory.sqlite3")
    gw_port, port = free_port(), free_port()
    gateway = start_gateway_process(write_config(tmp_path, upstream.url, gw_port), gw_port)
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF.format(tmp=tmp_path, port=port, gateway=gw_port,
                                upstream=upstream.url))
    nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf), "-g",
                              "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
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
    (None, None, "/cart", 401, None, None),
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
    session = await _session(nginx_front, user, buyer)
    before = len(upstream.seen)
    async with session.get(f"{nginx_front}{path}", headers={
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
