"""nginx as the fast upstream (static answers) and as the `proxy_pass` baseline."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from bench.procs import HOST, Server
from bench.upstream import PAGE

COMMON = """\
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
worker_processes {workers};
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 0;
    keepalive_requests 1000000;
    sendfile on;
{body}
}}
"""

UPSTREAM = """\
    server {{
        listen {host}:{port} reuseport backlog=1024;
        location / {{ default_type "text/html; charset=utf-8"; return 200 '{page}'; }}
        location = /saved-jobs {{ default_type text/plain; return 200 "ok\\n"; }}
        location /products/download- {{ root {root}; default_type application/octet-stream; }}
    }}
"""

PROXY = """\
    upstream shop {{ server {upstream}; keepalive 128; }}
    server {{
        listen {host}:{port} reuseport backlog=1024;
        location / {{
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
"""

# Forward-auth as docs/forward-auth.md gives it: deploy/nginx/forward-auth.conf, the one
# configuration the doc shows and the e2e test runs. nginx keeps the data plane and asks the
# gateway about every request (keep-alive connections to both), nothing cached in nginx.
# The subrequests leave from AUTHZ_SOURCE, so the gateway's audit lines of this target can
# be told from its own proxied requests' (the bench counts them: every request audited).
AUTHZ_SOURCE = "127.0.0.2"
FORWARD_AUTH_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "forward-auth.conf"
SHOP = """\
    upstream shop {{ server {upstream}; keepalive 128; }}
"""


def forward_auth(gateway: str, shop: str, listen: str, authz_extra: str = "") -> str:
    """deploy/nginx/forward-auth.conf with its placeholders filled in."""
    text = FORWARD_AUTH_CONF.read_text()
    for mark, value in (("@GATEWAY@", gateway), ("@SHOP@", shop), ("@LISTEN@", listen),
                        ("# @AUTHZ_EXTRA@", authz_extra)):
        if mark not in text:
            raise ValueError(f"{FORWARD_AUTH_CONF}: no {mark}")
        text = text.replace(mark, value)
    return text


def available() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def _user_line() -> str:
    """As root nginx would switch workers to `nobody`, who cannot read our temp dir."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};"


def _server(name: str, prefix: Path, port: int, workers: int, body: str) -> Server:
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(COMMON.format(prefix=prefix, user=_user_line(), workers=workers,
                                  body=body))
    binary = available()
    assert binary is not None
    argv = [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf),
            "-g", "daemon off;"]
    return Server(name, argv, port, prefix / "stdout.log", workers=workers)


def make_download_files(root: Path, sizes: dict[str, int]) -> None:
    """Sparse files: nginx sends zeros without a gigabyte on disk."""
    folder = root / "products"
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        with open(folder / f"download-{name}", "wb") as fh:
            fh.truncate(size)


def upstream_server(prefix: Path, port: int, sizes: dict[str, int]) -> Server:
    root = prefix / "root"
    make_download_files(root, sizes)
    page = PAGE.decode().replace("'", "\\'").rstrip("\n")
    body = UPSTREAM.format(host=HOST, port=port, page=page, root=root)
    return _server("nginx upstream", prefix, port, 1, body)


def proxy_server(prefix: Path, port: int, upstream_port: int, workers: int) -> Server:
    body = PROXY.format(host=HOST, port=port, upstream=f"{HOST}:{upstream_port}")
    return _server("nginx", prefix, port, workers, body)


def authz_server(prefix: Path, port: int, gateway_port: int, upstream_port: int,
                 workers: int) -> Server:
    """nginx `auth_request` to the gateway in front of the shop (forward-auth)."""
    body = SHOP.format(upstream=f"{HOST}:{upstream_port}") + forward_auth(
        f"{HOST}:{gateway_port}", "http://shop", f"{HOST}:{port} reuseport backlog=1024",
        f"proxy_bind {AUTHZ_SOURCE};")
    return _server("nginx auth_request", prefix, port, workers, body)
