"""Read-only impersonation: writes refused on every path, the switch to write mode audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest

from gateway.cli.init import CONFIG
from tests.support.gateway import ROOT, audit_lines, gw_of, impersonate, login, whoami

READ_ONLY = {"impersonation": {"default_mode": "read"}}


async def acting(make_gateway: Any, buyer: str = "buyer-alice", **changes: Any) -> Any:
    client = await make_gateway(**(changes or READ_ONLY))
    await login(client, "csr-carol")
    assert await impersonate(client, buyer) == 303
    return client


async def switch(client: Any, mode: str, *, as_json: bool, reason: str = "TICKET-9",
                 token: str | None = None) -> Any:
    csrf = (await whoami(client))["csrf_token"] if token is None else token
    fields = {"mode": mode, "reason": reason, "csrf_token": csrf, "return_to": "/cart"}
    if as_json:
        return await client.post("/_gateway/impersonate/mode", json=fields,
                                 headers={"Accept": "application/json"},
                                 allow_redirects=False)
    return await client.post("/_gateway/impersonate/mode", data=fields, allow_redirects=False)


def events(client: Any, name: str) -> list[dict[str, Any]]:
    return [r for r in audit_lines(client) if r["event"] == name]


@pytest.mark.parametrize(("method", "path", "status", "reason"), [
    ("GET", "/cart", 200, "ok"),
    ("POST", "/cart/add", 403, "read_only_impersonation"),
    ("POST", "/checkout", 403, "read_only_impersonation"),
    ("POST", "/saved-jobs", 403, "read_only_impersonation"),
    ("POST", "/account/password", 403, "sensitive_page"),
    ("POST", "/orders/1/assign", 403, "policy_denied"),
], ids=["read-allowed", "cart-add", "checkout", "saved-jobs", "sensitive-first",
        "policy-first"])
async def test_read_mode_refuses_state_changing_routes(make_gateway, upstream, method, path,
                                                      status, reason) -> None:
    """In read mode every state-changing route is 403 read_only_impersonation and never
    reaches the shop; the policy's own refusals keep their reasons."""
    client = await acting(make_gateway)
    before = len(upstream.seen)
    resp = await client.request(method, path, headers={"Accept": "application/json"})
    assert resp.status == status, await resp.text()
    line = [r for r in audit_lines(client) if r["event"] == "request" and r["path"] == path][-1]
    assert line["reason"] == reason and line["impersonation_mode"] == "read"
    assert line["csr"] == "csr-carol" and line["user"] == "buyer-alice"
    assert len(upstream.seen) == before + (1 if status == 200 else 0)


async def test_state_changing_key_is_honoured(make_gateway, upstream) -> None:
    """A GET route marked `state_changing: true` is refused in read mode too."""
    from gateway.config.load import settings_from_text

    text = (ROOT / "config" / "gateway.yaml").read_text().replace(
        "- {path: /reports, page: reports}",
        "- {path: /reports, page: reports, state_changing: true}")
    routes = settings_from_text(text, base=ROOT / "config").routes
    client = await acting(make_gateway, routes=routes, **READ_ONLY)
    resp = await client.get("/reports", headers={"Accept": "application/json"})
    assert resp.status == 403 and (await resp.json())["error"] == "read_only_impersonation"


async def test_write_mode_is_todays_default(make_gateway, upstream) -> None:
    """Without the setting an impersonation writes, as before, and says so upstream."""
    client = await acting(make_gateway, impersonation={"reason_required": False})
    resp = await client.post("/cart/add", data={"sku": "1"})
    assert resp.status == 200
    claims = jwt.decode(upstream.last.header("X-Gateway-Assertion") or "",
                        options={"verify_signature": False})
    assert claims["impersonation_mode"] == "write" and claims["act"]["sub"] == "csr-carol"


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
async def test_switch_to_write_then_back(make_gateway, upstream, as_json) -> None:
    """The switch (form: 303 back; JSON: the new mode) lets writes through, is audited as
    impersonation_mode with its reason, and the assertion and banner say so."""
    client = await acting(make_gateway)
    resp = await switch(client, "write", as_json=as_json)
    if as_json:
        assert resp.status == 200 and (await resp.json())["mode"] == "write"
    else:
        assert resp.status == 303 and resp.headers["Location"] == "/cart"
    assert (await client.post("/cart/add", data={"sku": "1"})).status == 200
    claims = jwt.decode(upstream.last.header("X-Gateway-Assertion") or "",
                        options={"verify_signature": False})
    assert claims["impersonation_mode"] == "write"
    page = await (await client.get("/cart")).text()
    assert 'data-mode="write"' in page and "Back to read-only" in page
    (event,) = events(client, "impersonation_mode")
    assert event["mode"] == "write" and event["mode_reason"] == "TICKET-9"
    assert event["decision"] == "allow" and event["csr"] == "csr-carol"
    assert event["detail"] == "read -> write"
    assert (await switch(client, "read", as_json=as_json)).status in (200, 303)
    resp = await client.post("/cart/add", headers={"Accept": "application/json"})
    assert resp.status == 403
    assert [e["mode"] for e in events(client, "impersonation_mode")] == ["write", "read"]


@pytest.mark.parametrize(("mode", "token", "status", "reason"), [
    ("write", "wrong", 403, "csrf_failed"),
    ("delete", None, 400, "bad_request"),
    ("write", "", 403, "csrf_failed"),
], ids=["bad-csrf", "bad-mode", "no-csrf"])
async def test_bad_switch_requests(make_gateway, mode, token, status, reason) -> None:
    """A switch without the CSRF token or with an unknown mode changes nothing."""
    client = await acting(make_gateway)
    resp = await switch(client, mode, as_json=True, token=token)
    assert resp.status == status and (await resp.json())["error"] == reason
    assert (await client.post("/cart/add", headers={"Accept": "application/json"})
            ).status == 403


def policies_without(tmp_path: Path, rule: str) -> Path:
    """The shipped policies with every clause of one rule taken out."""
    folder = tmp_path / "policies"
    folder.mkdir()
    for source in (ROOT / "policies").glob("*.polar"):
        text = source.read_text()
        while (at := text.find(f"\n{rule}(")) != -1:
            text = text[:at] + text[text.index(";", at) + 1:]
        (folder / source.name).write_text(text)
    return folder


async def test_policy_refuses_the_switch(make_gateway, tmp_path) -> None:
    """`allow_write` false: 403 write_not_allowed, audited, and the mode stays read."""
    client = await acting(make_gateway, policies_dir=policies_without(tmp_path, "allow_write"),
                          **READ_ONLY)
    resp = await switch(client, "write", as_json=True)
    assert resp.status == 403 and (await resp.json())["error"] == "write_not_allowed"
    (event,) = events(client, "impersonation_mode")
    assert event["decision"] == "deny" and event["reason"] == "write_not_allowed"
    assert event["impersonation_mode"] == "read"
    assert (await client.post("/cart/add", headers={"Accept": "application/json"})
            ).status == 403


async def test_reason_required_for_write(make_gateway) -> None:
    """With reasons required, switching to write mode needs one too."""
    client = await acting(make_gateway, impersonation={"default_mode": "read",
                                                       "reason_required": True})
    resp = await switch(client, "write", as_json=True, reason="")
    assert resp.status == 400 and (await resp.json())["error"] == "reason_required"


async def test_switch_without_impersonation(make_gateway) -> None:
    """A CSR acting as themselves has no mode to switch: 409."""
    client = await make_gateway(**READ_ONLY)
    await login(client, "csr-carol")
    resp = await switch(client, "write", as_json=True)
    assert resp.status == 409 and (await resp.json())["error"] == "not_impersonating"


async def test_refusal_page_offers_the_switch(make_gateway) -> None:
    """The HTML refusal explains and carries the switch form with the session's token."""
    client = await acting(make_gateway)
    resp = await client.post("/cart/add", headers={"Referer": str(client.make_url("/cart"))})
    page = await resp.text()
    assert resp.status == 403 and "read-only mode" in page
    assert 'action="/_gateway/impersonate/mode"' in page and "Switch to write mode" in page
    assert (await whoami(client))["csrf_token"] in page and 'value="/cart"' in page


@pytest.mark.parametrize(("method", "uri", "status", "reason"), [
    ("GET", "/cart", 200, None),
    ("POST", "/cart/add", 403, "read_only_impersonation"),
    ("DELETE", "/saved-jobs", 403, "method_not_allowed"),
], ids=["read", "write-refused", "unknown-method"])
async def test_forward_auth_in_read_mode(make_gateway, method, uri, status, reason) -> None:
    """Forward-auth refuses the same writes with the reason in X-Gateway-Reason."""
    client = await acting(make_gateway)
    resp = await client.get("/_gateway/authz", headers={
        "X-Original-URI": uri, "X-Original-Method": method})
    assert resp.status == status
    assert resp.headers.get("X-Gateway-Reason") == reason
    if status == 200:
        claims = jwt.decode(resp.headers["X-Gateway-Assertion"],
                            options={"verify_signature": False})
        assert claims["impersonation_mode"] == "read"


async def test_forward_auth_after_switch(make_gateway) -> None:
    """After the switch forward-auth allows the write."""
    client = await acting(make_gateway)
    assert (await switch(client, "write", as_json=True)).status == 200
    resp = await client.get("/_gateway/authz", headers={
        "X-Original-URI": "/cart/add", "X-Original-Method": "POST"})
    assert resp.status == 200


async def test_mode_survives_redis(make_gateway, redis_prefix) -> None:
    """The mode is part of the stored session: read back from Redis it is the same."""
    client = await acting(make_gateway, sessions={"store": "redis",
                                                  "redis_prefix": redis_prefix}, **READ_ONLY)
    assert (await switch(client, "write", as_json=True)).status == 200
    gw = gw_of(client)
    stored = [s for s in await gw.sessions.all() if s.impersonation is not None]
    assert [s.impersonation.mode for s in stored if s.impersonation] == ["write"]


def test_starter_configuration_starts_read_only() -> None:
    """`csr-gateway init` writes a configuration whose impersonations start read-only."""
    import yaml

    assert yaml.safe_load(CONFIG)["impersonation"]["default_mode"] == "read"


async def test_admin_sees_the_mode(make_gateway) -> None:
    """The admin's session list shows whether each running impersonation is read-only."""
    import aiohttp

    client = await acting(make_gateway)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin:
        await admin.post(client.make_url("/_gateway/login"), data={
            "username": "admin-ann", "password": "demo-pass-1", "next": "/"})
        listed = await (await admin.get(client.make_url("/_gateway/api/sessions"))).json()
        page = await (await admin.get(client.make_url("/_gateway/admin/sessions"))).text()
    (acting_one,) = [s for s in listed if s["impersonating"]]
    assert acting_one["impersonating"]["mode"] == "read" and "read-only" in page


@pytest.mark.parametrize(("stored", "mode"), [
    ({}, "write"), ({"mode": "read"}, "read"), ({"mode": "write"}, "write"),
], ids=["stored-before-modes", "read", "write"])
def test_stored_sessions_keep_their_mode(stored: dict[str, str], mode: str) -> None:
    """A session written before modes existed reads back in write mode, as it ran."""
    import orjson

    from gateway.sessions.store import Session

    imp = {"id": "i1", "csr": "csr-carol", "buyer": "buyer-alice", "reason": "",
           "started_at": 1.0, "return_to": "/", **stored}
    raw = orjson.dumps({"id": "s", "username": "csr-carol", "csrf_token": "t", "created": 1.0,
                        "last_seen": 1.0, "impersonation": imp})
    session = Session.from_json(raw)
    assert session.impersonation is not None and session.impersonation.mode == mode
    assert Session.from_json(session.to_json()) == session
