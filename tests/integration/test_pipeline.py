"""The whole request path through a real gateway and a real upstream on loopback."""

from __future__ import annotations

import socket

import pytest

from tests.support.gateway import audit_lines, impersonate, login

PERSONAS = {
    "anonymous": (None, None),
    "buyer-alice": ("buyer-alice", None),
    "prospect-pat": ("prospect-pat", None),
    "csr-carol": ("csr-carol", None),
    "carol-as-alice": ("csr-carol", "buyer-alice"),
    "admin-ann": ("admin-ann", None),
    "sales-sam": ("sales-sam", None),
}

# persona -> method, path -> expected status (303 = sent to the login page)
TABLE = [
    ("anonymous", "GET", "/", 303), ("anonymous", "GET", "/static/shop.css", 200),
    ("buyer-alice", "GET", "/", 200), ("buyer-alice", "GET", "/cart", 200),
    ("buyer-alice", "POST", "/checkout", 200), ("buyer-alice", "GET", "/account/password", 200),
    ("buyer-alice", "GET", "/admin", 403), ("buyer-alice", "GET", "/reports", 200),
    ("buyer-alice", "POST", "/orders/1/assign", 403),
    ("prospect-pat", "GET", "/", 200),
    ("csr-carol", "GET", "/", 200), ("csr-carol", "GET", "/reports", 200),
    ("csr-carol", "GET", "/saved-jobs", 200), ("csr-carol", "GET", "/print-services", 200),
    ("csr-carol", "GET", "/orders/1", 200), ("csr-carol", "POST", "/checkout", 403),
    ("csr-carol", "GET", "/admin", 403), ("csr-carol", "GET", "/account/password", 403),
    ("csr-carol", "POST", "/orders/1/assign", 403),
    ("carol-as-alice", "GET", "/cart", 200), ("carol-as-alice", "POST", "/checkout", 200),
    ("carol-as-alice", "GET", "/account/password", 403),
    ("carol-as-alice", "GET", "/account/email", 403), ("carol-as-alice", "GET", "/admin", 403),
    ("carol-as-alice", "GET", "/account", 200),
    ("admin-ann", "GET", "/admin/users", 200), ("admin-ann", "POST", "/orders/1/assign", 200),
    ("admin-ann", "GET", "/cart", 403),
    ("sales-sam", "POST", "/orders/1/assign", 200), ("sales-sam", "GET", "/admin", 403),
    ("buyer-alice", "GET", "/no/such/page", 404), ("buyer-alice", "DELETE", "/cart", 405),
]


@pytest.mark.parametrize(("persona", "method", "path", "status"), TABLE,
                         ids=[f"{p}-{m}-{u}" for p, m, u, _ in TABLE])
async def test_persona_page_table(make_gateway, upstream, persona, method, path,
                                  status) -> None:
    """Each persona reaches exactly the pages the default policy grants."""
    client = await make_gateway()
    user, buyer = PERSONAS[persona]
    if user:
        await login(client, user)
    if buyer:
        assert await impersonate(client, buyer) == 303
    before = len(upstream.seen)
    resp = await client.request(method, path, allow_redirects=False,
                                headers={"Accept": "text/html"})
    assert resp.status == status, await resp.text()
    assert (len(upstream.seen) > before) == (status == 200), "forwarded iff allowed"
    line = [r for r in audit_lines(client) if r["event"] == "request"][-1]
    assert line["decision"] == ("allow" if status == 200 else "deny")
    assert line["status"] == status


SPOOFS = [
    ("X-Remote-User", "admin-ann"), ("x-remote-user", "admin-ann"),
    ("X-REMOTE-USER", "admin-ann"), ("X-Impersonator", "csr-dave"),
    ("X-Remote-Groups", "Administrator"), ("X-Remote-Company", "initech"),
    ("X-Gateway-Assertion", "eyJhbGciOiJub25lIn0.e30."), ("X-Request-Id", "forged"),
    ("X-Original-URL", "/admin"), ("X-HTTP-Method-Override", "DELETE"),
]


@pytest.mark.parametrize(("name", "value"), SPOOFS, ids=[n for n, _ in SPOOFS])
async def test_spoofed_identity_headers_never_reach_upstream(gateway, upstream, name,
                                                             value) -> None:
    """Client-sent identity headers are removed; the upstream sees only the gateway's."""
    await login(gateway, "buyer-alice")
    resp = await gateway.get("/cart", headers={name: value})
    assert resp.status == 200
    seen = upstream.last
    assert value not in [v for _, v in seen.headers]
    assert seen.all("X-Remote-User") == ["buyer-alice"]


@pytest.mark.parametrize("name", ["X_Remote_User", "x_remote_user", "X-Remote_User"])
async def test_underscore_identity_header_is_refused(gateway, upstream, name) -> None:
    """An underscore spelling (CGI would map it onto X-Remote-User) is refused with 400."""
    await login(gateway, "buyer-alice")
    before = len(upstream.seen)
    resp = await gateway.get("/cart", headers={name: "admin-ann"})
    assert resp.status == 400
    assert len(upstream.seen) == before
    assert audit_lines(gateway)[-1]["reason"] == "spoofed_header"


async def test_unauthenticated_browser_goes_to_login_with_next(gateway) -> None:
    """A browser without a session is sent to the login page, keeping where it wanted to go."""
    resp = await gateway.get("/cart?x=1", allow_redirects=False,
                             headers={"Accept": "text/html"})
    assert resp.status == 303
    assert resp.headers["Location"] == "/_gateway/login?next=%2Fcart%3Fx%3D1"


async def test_unauthenticated_api_client_gets_401(gateway) -> None:
    """An API client (Accept: application/json) gets 401 JSON, not a redirect."""
    resp = await gateway.get("/api/orders", headers={"Accept": "application/json"})
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthenticated"


@pytest.mark.parametrize(("target", "expected"), [
    ("/cart", "/cart"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("", "/"),
], ids=["local", "protocol-relative", "absolute", "backslash", "empty"])
async def test_login_redirects_only_to_local_next(gateway, target, expected) -> None:
    """After login, `next` is followed only when it is a local path."""
    resp = await gateway.post("/_gateway/login", data={
        "username": "buyer-alice", "password": "demo-pass-1", "next": target},
        allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == expected


async def test_wrong_password_is_401_and_audited(gateway) -> None:
    """A failed login is refused and leaves a login_failed line."""
    resp = await gateway.post("/_gateway/login", data={
        "username": "buyer-alice", "password": "nope"}, allow_redirects=False)
    assert resp.status == 401
    assert any(r["event"] == "login_failed" and r["user"] == "buyer-alice"
               for r in audit_lines(gateway))


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_upstream_down_is_502_and_audited(make_gateway) -> None:
    """A shop that does not answer gives 502 with nothing internal in the page."""
    client = await make_gateway(f"http://127.0.0.1:{_dead_port()}")
    await login(client, "buyer-alice")
    resp = await client.get("/cart")
    assert resp.status == 502
    assert "127.0.0.1" not in await resp.text()
    line = audit_lines(client)[-1]
    assert (line["reason"], line["status"]) == ("upstream_unavailable", 502)


async def test_upstream_too_slow_is_504_and_audited(make_gateway) -> None:
    """A shop slower than first_byte_timeout gives 504."""
    client = await make_gateway(upstream={"first_byte_timeout": 0.3})
    await login(client, "buyer-alice")
    resp = await client.get("/cart", headers={"X-Test-Delay": "1.5"})
    assert resp.status == 504
    assert audit_lines(client)[-1]["reason"] == "upstream_timeout"


async def test_request_and_response_bodies_stream_through(gateway, upstream) -> None:
    """A POST body reaches the upstream byte for byte, with one framing."""
    await login(gateway, "buyer-alice")
    body = b"x" * (3 * 1024 * 1024 + 7)
    resp = await gateway.post("/cart/add", data=body)
    assert resp.status == 200
    assert upstream.last.body == body
    assert len([h for h, _ in upstream.last.headers
                if h.lower() in ("content-length", "transfer-encoding")]) == 1


async def test_upstream_cookies_pass_but_gateway_cookie_protected(gateway, upstream) -> None:
    """The gateway's own session cookie never reaches the upstream."""
    await login(gateway, "buyer-alice")
    await gateway.get("/cart", headers={"Cookie": "sessionid=shop1; theme=dark"})
    cookie = upstream.last.header("Cookie") or ""
    assert "csrgw_session" not in cookie
    assert "theme=dark" in cookie


async def test_slow_headers_are_cut_off(make_gateway) -> None:
    """A client dribbling its headers (slowloris) is disconnected at the header deadline."""
    import asyncio
    import time

    client = await make_gateway(limits={"header_timeout": 0.5})
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed_after = None
    for _ in range(40):
        await asyncio.sleep(0.1)
        try:
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()
        except ConnectionError:
            closed_after = time.monotonic() - started
            break
        if reader.at_eof() or writer.is_closing():
            closed_after = time.monotonic() - started
            break
        try:
            data = await asyncio.wait_for(reader.read(1), 0.01)
        except TimeoutError:
            continue
        if data == b"":
            closed_after = time.monotonic() - started
            break
    writer.close()
    assert closed_after is not None and closed_after < 2.0


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/_gateway/impersonate", 405), ("GET", "/_gateway/impersonate/stop", 405),
    ("PUT", "/_gateway/login", 405), ("GET", "/_gateway/nothing-here", 404),
    ("GET", "/_gateway", 404),
], ids=["get-impersonate", "get-stop", "put-login", "unknown", "bare"])
async def test_gateway_namespace_is_never_forwarded(gateway, upstream, method, path,
                                                    status) -> None:
    """Paths under /_gateway/ belong to the gateway: wrong method 405, unknown 404."""
    await login(gateway, "buyer-alice")
    before = len(upstream.seen)
    resp = await gateway.request(method, path, headers={"Accept": "application/json"})
    assert resp.status == status
    assert len(upstream.seen) == before


async def test_directory_down_at_login_is_503(gateway) -> None:
    """A directory database that went away fails closed: 503, audited, no session."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from tests.support.gateway import gw_of

    gw = gw_of(gateway)
    gw.directory.sessions = async_sessionmaker(
        create_async_engine("sqlite+aiosqlite:////nonexistent/dir/x.db"))
    resp = await gateway.post("/_gateway/login", data={
        "username": "buyer-alice", "password": "demo-pass-1"}, allow_redirects=False)
    assert resp.status == 503
    assert audit_lines(gateway)[-1]["reason"] == "dependency_unavailable"


@pytest.mark.parametrize(("user", "shown"), [("csr-carol", True), ("buyer-alice", False),
                                             ("admin-ann", False)],
                         ids=["csr", "buyer", "admin"])
async def test_csr_toolbar_offers_log_in_as_buyer(make_gateway, user, shown) -> None:
    """A CSR browsing the shop as themselves gets a "Log in as buyer" bar; others do not."""
    client = await make_gateway()
    await login(client, user)
    text = await (await client.get("/")).text()
    assert ('href="/_gateway/select-user"' in text) is shown
    assert "Logged In As" not in text


async def test_metrics_count_every_request_by_decision_and_time(gateway, upstream) -> None:
    """/_gateway/metrics: one count per request under its decision and reason, and every
    request in the duration histogram (cumulative buckets, +Inf = count)."""
    import re

    await login(gateway, "buyer-alice")
    for _ in range(3):
        assert (await gateway.get("/products/1")).status == 200
    assert (await gateway.get("/admin", allow_redirects=False)).status == 403
    text = await (await gateway.get("/_gateway/metrics")).text()
    counts = {m[0]: float(m[1]) for m in re.findall(
        r'csrgw_requests_total\{decision="([a-z]+)",reason="[a-z_]+"\} ([0-9.]+)', text)}
    assert counts["allow"] >= 3 and counts["deny"] >= 1
    buckets = [float(v) for v in re.findall(
        r'csrgw_request_duration_seconds_bucket\{le="[^"]+"\} ([0-9.]+)', text)]
    total = float(re.search(r"csrgw_request_duration_seconds_count ([0-9.]+)", text)[1])
    assert buckets == sorted(buckets) and buckets[-1] == total >= 4
    assert 'le="1.0"' in text and 'le="+Inf"' in text


async def test_error_pages_are_per_person_and_per_request(gateway, upstream) -> None:
    """Error pages are rendered once per person and reason, then reused: each still carries
    its own request id, and nobody ever sees a page rendered for someone else."""
    await login(gateway, "buyer-alice")
    first = await (await gateway.get("/admin", allow_redirects=False)).text()
    second = await (await gateway.get("/admin", allow_redirects=False)).text()
    ids = [r["request_id"] for r in audit_lines(gateway) if r["path"] == "/admin"]
    assert len(ids) == 2 and ids[0] != ids[1]
    assert ids[0] in first and ids[1] in second and ids[0] not in second
    assert "buyer-alice" in first and "buyer-alice" in second
    gateway.session.cookie_jar.clear()
    await login(gateway, "buyer-bob")
    bob = await (await gateway.get("/admin", allow_redirects=False)).text()
    assert "buyer-bob" in bob and "buyer-alice" not in bob
