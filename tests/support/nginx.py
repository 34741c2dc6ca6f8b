"""nginx in front of gateways: the site and main configuration tests write."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.gateway import IN_CI, ROOT

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                  else None)


def render_nginx_site(gateways: list[int], port: int) -> str:
    """deploy/nginx/csr-gateway.conf with loopback addresses for the replicas and nginx."""
    text = (DEPLOY / "nginx" / "csr-gateway.conf").read_text()
    lines = iter(f"server 127.0.0.1:{p}" for p in gateways)
    text = re.sub(r"server gateway-\d+:8080", lambda _m: next(lines), text)
    return text.replace("listen 80;", f"listen 127.0.0.1:{port};")


def nginx_main_config(tmp: Path, site: Path) -> str:
    return f"""
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  include {site};
}}
"""


def require_nginx() -> str:
    if NGINX is None:
        if IN_CI:
            pytest.fail("nginx is missing (apt-get install nginx-light)")
        pytest.skip("nginx is missing")
    return NGINX
