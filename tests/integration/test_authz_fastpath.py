"""The forward-auth fast path (gateway/app/fastpath.py) decides, answers and audits exactly
as the ordinary way through aiohttp's router and the pipeline middleware."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gateway import audit_lines, login

# Answer headers that differ from request to request by nature.
PER_REQUEST = {"x-request-id", "x-gateway-assertion", "date"}
PER_LINE = {"request_id", "duration_ms", "ts", "seq", "prev_hash", "hash", "trace_id"}

ASKED = [
    ("GET", "/products/1", {}),
    ("GET", "/admin", {}),
    ("POST", "/cart/add", {}),
    ("GET", "/products/%2e%2e/admin", {}),
    ("GET", "/products/1", {"X_Remote_User": "buyer-bob"}),
    ("GET", "/products/1", {"X-Remote-User": "buyer-bob"}),
    ("GET", "/products/1", {"X.Remote.User": "buyer-bob"}),
    ("GET", "/products/1", {"Remote-User": "buyer-bob"}),
    ("GET", "/products/1", {"Forwarded": "for=10.0.0.1"}),
    ("GET", "/no-such-route", {}),
    ("TRACE", "/products/1", {}),
]


async def _ask(client: Any, path: str, method: str, uri: str, extra: dict[str, str],
               cookie: bool) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"X-Original-URI": uri, "X-Original-Method": method,
               "Accept": "application/json", **extra}
    if not cookie:
        client.session.cookie_jar.clear()
    resp = await client.get(path, headers=headers)
    await resp.read()
    line = [r for r in audit_lines(client) if r["event"] == "request"][-1]
    assert line["request_id"] == resp.headers.get("X-Request-Id", line["request_id"])
    kept = {k: v for k, v in resp.headers.items() if k.lower() not in PER_REQUEST}
    return resp.status, kept, {k: v for k, v in line.items() if k not in PER_LINE}


@pytest.mark.parametrize("who", [None, "buyer-alice"])
async def test_fast_and_ordinary_way_agree(make_gateway, who) -> None:
    """The exact path takes the fast path; with a query string the same question goes the
    ordinary way (router, middleware): status, answer headers and audit line agree."""
    client = await make_gateway()
    if who is not None:
        await login(client, who)
    for method, uri, extra in ASKED:
        fast = await _ask(client, "/_gateway/authz", method, uri, extra, who is not None)
        slow = await _ask(client, "/_gateway/authz?via=router", method, uri, extra,
                          who is not None)
        assert fast == slow, (method, uri, extra)


async def test_spoofed_identity_spellings_are_refused(make_gateway) -> None:
    client = await make_gateway()
    await login(client, "buyer-alice")
    for name in ("X_Remote_User", "x-remote_user", "X-Remote-User", "X-REMOTE-USER"):
        resp = await client.get("/_gateway/authz", headers={
            "X-Original-URI": "/products/1", "X-Original-Method": "GET", name: "buyer-bob"})
        if "_" in name:
            assert resp.status == 403, name
            assert resp.headers["X-Gateway-Reason"] == "spoofed_header"
        else:  # the exact spelling is dropped (nginx replaces it), not refused
            assert resp.status == 200, name
            assert resp.headers["X-Remote-User"] == "buyer-alice"


async def test_refusals_asked_by_nginx_carry_no_body(make_gateway) -> None:
    """nginx keeps its connection to the gateway only for an answer without a body; Envoy's
    form (the path after /_gateway/authz) keeps the JSON body its client is shown."""
    client = await make_gateway()
    await login(client, "buyer-alice")
    resp = await client.get("/_gateway/authz", headers={
        "X-Original-URI": "/admin", "X-Original-Method": "GET"})
    assert resp.status == 403 and resp.headers["X-Gateway-Reason"] == "policy_denied"
    assert resp.headers["Content-Length"] == "0" and await resp.read() == b""
    resp = await client.get("/_gateway/authz/admin")
    assert resp.status == 403 and (await resp.json())["error"] == "policy_denied"
