"""First end-to-end: login, impersonate, forward as the buyer, stop; audited."""

from __future__ import annotations

from tests.support.gateway import audit_lines, impersonate, login, whoami


async def test_csr_flow_reaches_upstream_as_buyer(gateway, upstream) -> None:
    """A CSR acting as buyer-alice is forwarded as alice with X-Impersonator carol."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303
    me = await whoami(gateway)
    assert me["acting_as"] == "buyer-alice"
    resp = await gateway.get("/cart", headers={"X-Remote-User": "admin-ann"})
    text = await resp.text()
    assert resp.status == 200, text
    assert "Logged In As Alice Anders (Acme Corp)" in text
    seen = upstream.last
    assert seen.all("x-remote-user") == ["buyer-alice"]
    assert seen.header("X-Impersonator") == "csr-carol"
    lines = audit_lines(gateway)
    req = [r for r in lines if r["event"] == "request" and r["path"] == "/cart"][-1]
    assert req["csr"] == "csr-carol" and req["user"] == "buyer-alice"
