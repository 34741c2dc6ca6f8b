"""The edges found from outside: unsafe `next`, disconnects, malformed requests, HTTP/2.0
request lines, line separators in audit lines, who may read metrics and the OpenAPI
document, framing and the Server header."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from gateway.audit.verify import Verified, verify_files
from tests.support.gateway import audit_lines, gw_of, impersonate, login
from tests.support.processes import start_gateway_process, stop_process, write_config
from tests.support.services import free_port


async def _raw(host: str, port: int, data: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(65536), wait)
    finally:
        writer.close()
    return answer


def _headers(answer: bytes) -> dict[str, str]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


@pytest.mark.parametrize("bad", ["/cart\x00x", "/cart\x0bx", "/cart\x1b[2J", "/cart\x7f",
                                 "/cart\x85", "/cart\u2028x", "/cart\u200ex", "/cart\rx",
                                 "/ cart"],
                         ids=["nul", "vt", "escape", "del", "nel", "line-separator",
                              "direction-mark", "cr", "space"])
async def test_unsafe_next_falls_back_to_root(gateway, bad) -> None:
    """A `next` with any control, format or space character is refused: the login still
    answers, with a redirect to `/`."""
    resp = await gateway.post("/_gateway/login", data={
        "username": "buyer-alice", "password": "demo-pass-1", "next": bad},
        allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/"
    resp = await gateway.get("/_gateway/login", params={"next": bad})
    assert resp.status in (200, 303)


async def test_client_disconnect_is_audited_as_such(gateway, upstream) -> None:
    """A client that goes away while the shop works is audited as 499
    client_disconnected, not as a 500 or a success."""
    port = gateway.server.port
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /static/slow.css HTTP/1.1\r\nHost: x\r\nX-Test-Delay: 1\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    for _ in range(100):
        await asyncio.sleep(0.1)
        lines = [line for line in audit_lines(gateway) if line.get("path") == "/static/slow.css"]
        if lines:
            break
    assert lines, "no audit line for the abandoned request"
    line = lines[-1]
    assert (line["status"], line["reason"], line["outcome"]) == \
        (499, "client_disconnected", "aborted")


MALFORMED = {
    "garbage-line": b"HELLO\r\n\r\n",
    "tls-hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
    "nul-in-target": b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-header-line": b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    "space-in-name": b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    "bad-version": b"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
    "bad-length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "two-lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                   b"Content-Length: 2\r\n\r\nab",
}


async def test_malformed_requests_log_one_line_without_traceback(tmp_path, seeded_directory,
                                                                 upstream) -> None:
    """Each malformed request is answered 400 by a server named csr-gateway and logged as
    one line, never a traceback."""
    import shutil

    shutil.copyfile(seeded_directory, tmp_path / "directory.sqlite3")
    port = free_port()
    proc = start_gateway_process(write_config(tmp_path, upstream.url, port), port)
    answers = {}
    try:
        for name, data in MALFORMED.items():
            answers[name] = await _raw("127.0.0.1", port, data)
    finally:
        stop_process(proc)
    output = proc.stdout.read().decode("utf-8", "replace")
    for name, answer in answers.items():
        assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")), (name, answer[:80])
        assert _headers(answer).get("server") == "csr-gateway", name
    assert "Traceback" not in output, output[-3000:]
    assert output.count("malformed request from") >= len(MALFORMED) - 2, output[-3000:]


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/2", b"HTTP/3.0"],
                         ids=["2.0", "2", "3.0"])
async def test_http2_request_line_is_refused(gateway, upstream, version) -> None:
    """A request line naming HTTP/2 or later is refused in HTTP/1.1, never served or
    echoed."""
    answer = await _raw("127.0.0.1", gateway.server.port,
                        b"GET /static/x.css " + version + b"\r\nHost: x\r\n\r\n")
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith((b"HTTP/1.1 505", b"HTTP/1.1 400", b"HTTP/1.0 400")), \
        status_line
    assert upstream.seen == []


async def test_line_separators_are_escaped_in_audit_lines(gateway) -> None:
    """U+2028 and U+2029 from a request never appear raw in the audit file, and the chain
    still verifies."""
    await gateway.get("/products/a%E2%80%A8b%E2%80%A9c")
    gw = gw_of(gateway)
    gw.audit.flush()
    raw = Path(gw.settings.audit.path).read_bytes()
    assert b"\xe2\x80\xa8" not in raw and b"\xe2\x80\xa9" not in raw
    assert b"\\u2028" in raw
    assert any(line.get("path") == "/products/a\u2028b\u2029c"
               for line in map(orjson.loads, raw.splitlines()))
    assert isinstance(verify_files([gw.settings.audit.path]), Verified)


@pytest.mark.parametrize(("changes", "headers", "status"), [
    ({}, {}, 200),
    ({"ops": {"metrics_allow": ("10.0.0.0/8",)}}, {}, 404),
    ({"trusted_proxies": ("127.0.0.1/32",)}, {"X-Forwarded-For": "203.0.113.5"}, 404),
    ({"trusted_proxies": ("127.0.0.1/32",),
      "ops": {"metrics_allow": ("203.0.113.0/24",)}}, {"X-Forwarded-For": "203.0.113.5"}, 200),
], ids=["loopback-default", "not-listed", "outside-via-proxy", "listed-via-proxy"])
async def test_metrics_only_for_allowed_addresses(make_gateway, changes, headers,
                                                  status) -> None:
    """/_gateway/metrics answers only clients inside ops.metrics_allow."""
    import ipaddress

    if "ops" in changes:
        changes = {**changes, "ops": {"metrics_allow": tuple(
            ipaddress.ip_network(n) for n in changes["ops"]["metrics_allow"])}}
    if "trusted_proxies" in changes:
        changes = {**changes, "trusted_proxies": tuple(
            ipaddress.ip_network(n) for n in changes["trusted_proxies"])}
    client = await make_gateway(**changes)
    resp = await client.get("/_gateway/metrics", headers=headers)
    assert resp.status == status
    if status == 200:
        assert "csrgw_" in await resp.text()
    else:
        assert audit_lines(client)[-1]["reason"] == "metrics_not_allowed"


@pytest.mark.parametrize(("user", "status"), [
    (None, 401), ("buyer-alice", 403), ("csr-carol", 403), ("sales-sam", 403),
    ("admin-ann", 200),
], ids=["anonymous", "buyer", "csr", "sales-admin", "admin"])
async def test_openapi_document_needs_an_admin_session(gateway, user, status) -> None:
    """The admin API's OpenAPI document is served to administrators only."""
    if user:
        await login(gateway, user)
    resp = await gateway.get("/_gateway/api/openapi.json",
                             headers={"Accept": "application/json"})
    assert resp.status == status
    if status == 200:
        assert (await resp.json())["openapi"].startswith("3.")


PAGES = [
    (None, "/_gateway/login"),
    (None, "/_gateway/activate?token=nope"),
    (None, "/_gateway/reset?token=nope"),
    ("buyer-alice", "/_gateway/account"),
    ("buyer-alice", "/admin"),  # the gateway's own refusal page
    ("buyer-alice", "/_gateway/nowhere"),
    ("csr-carol", "/_gateway/select-user"),
    ("admin-ann", "/_gateway/admin/"),
    ("admin-ann", "/_gateway/admin/users"),
    ("admin-ann", "/_gateway/admin/users/buyer-alice"),
    ("admin-ann", "/_gateway/admin/users/buyer-alice/companies"),
    ("admin-ann", "/_gateway/admin/assign-csrs"),
    ("admin-ann", "/_gateway/admin/groups"),
    ("admin-ann", "/_gateway/admin/companies"),
    ("admin-ann", "/_gateway/admin/sessions"),
    ("admin-ann", "/_gateway/admin/transactions"),
]


@pytest.mark.parametrize(("user", "path"), PAGES, ids=[p for _, p in PAGES])
async def test_gateway_pages_cannot_be_framed(gateway, user, path) -> None:
    """Every gateway HTML page sends frame-ancestors 'none', X-Frame-Options DENY and a
    Server header that names no software."""
    if user:
        await login(gateway, user)
    resp = await gateway.get(path, headers={"Accept": "text/html"}, allow_redirects=False)
    assert resp.content_type == "text/html", (path, resp.status)
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Server"] == "csr-gateway"


async def test_shop_pages_keep_the_shops_headers(gateway, upstream) -> None:
    """A page relayed from the shop gets no gateway CSP (the shop's own pages would break),
    but the CSR's banner still rides on it."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    resp = await gateway.get("/cart")
    assert resp.status == 200
    assert "Content-Security-Policy" not in resp.headers
    assert "csrgw-banner" in await resp.text()


@pytest.mark.parametrize("request_bytes", [
    b"GET /_gateway/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /_gateway/nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
    b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n",
], ids=["healthz", "gateway-404", "no-route", "unknown-method", "parser-400"])
async def test_server_header_names_no_software(gateway, request_bytes) -> None:
    """The Server header is csr-gateway on every answer the gateway writes, even the
    parser's own 400."""
    answer = await _raw("127.0.0.1", gateway.server.port, request_bytes)
    server = _headers(answer).get("server", "")
    assert server == "csr-gateway", answer[:300]




async def test_shop_gets_only_the_decided_client_address(make_gateway, upstream) -> None:
    """Behind a trusted proxy the shop's X-Forwarded-For is the one address the gateway
    decided on and audited, never the client-written left part of the chain."""
    import ipaddress

    client = await make_gateway(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    resp = await client.get("/static/x.css",
                            headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
    assert resp.status == 200
    assert upstream.last.all("X-Forwarded-For") == ["203.0.113.7"]
    assert audit_lines(client)[-1]["client_ip"] == "203.0.113.7"


@pytest.mark.parametrize(("trusted", "proto", "host"), [
    (True, "https", "shop.example.com"),
    (False, "http", None),
], ids=["from-a-trusted-proxy", "from-anyone-else"])
async def test_shop_gets_the_scheme_and_host_the_browser_used(make_gateway, upstream, trusted,
                                                              proto, host) -> None:
    """Behind a trusted TLS proxy the shop's X-Forwarded-Proto/Host are the browser's (so
    its redirects and links stay https); from anyone else, the gateway's own."""
    import ipaddress

    networks = (ipaddress.ip_network("127.0.0.1/32"),) if trusted else ()
    client = await make_gateway(trusted_proxies=networks)
    resp = await client.get("/static/x.css", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com"})
    assert resp.status == 200
    assert upstream.last.all("X-Forwarded-Proto") == [proto]
    assert upstream.last.all("X-Forwarded-Host") == [host or resp.url.raw_authority]


@pytest.mark.parametrize(("canonical_only", "uri", "status", "reason"), [
    (False, "/products/x/../p-1", 401, "unauthenticated"),
    (True, "/products/x/../p-1", 403, "bad_path"),
    (True, "//products/p-1", 403, "bad_path"),
    (True, "/products/%70-1", 403, "bad_path"),
    (True, "/products/p-1?q=1", 401, "unauthenticated"),
], ids=["canonicalised", "dot-dot-refused", "double-slash-refused", "escape-refused",
        "canonical-passes"])
async def test_authz_can_refuse_non_canonical_paths(make_gateway, canonical_only, uri, status,
                                                    reason) -> None:
    """With ops.authz_canonical_only the decision service refuses a path that is not
    already canonical (for proxies that cannot send the shop the decided path)."""
    client = await make_gateway(ops={"authz_canonical_only": canonical_only})
    resp = await client.get("/_gateway/authz", headers={"X-Original-URI": uri,
                                                        "X-Original-Method": "GET"})
    assert resp.status == status
    assert resp.headers["X-Gateway-Reason"] == reason
    if status == 401:
        assert resp.headers["X-Gateway-Login"].startswith("/_gateway/login?next=%2Fproducts")
