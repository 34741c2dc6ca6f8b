"""Other spellings of a protected path or an identity header never reach the shop as
something else: the real proxy, a fallback route to the storefront, a recording upstream."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from gateway.cli.demo import FOREIGN_SHOP_FALLBACK
from gateway.config.load import load_settings
from tests.support.gateway import ROOT, audit_lines, impersonate, login

ROUTES = (*load_settings(ROOT / "config" / "gateway.yaml").routes, FOREIGN_SHOP_FALLBACK)

# Each a spelling a lenient shop (IIS, Rails, a case-folding router) may answer as the
# buyer's password, 2FA or admin page.
SPELLINGS = {
    "upper": "/ACCOUNT/PASSWORD",
    "mixed": "/Account/Password",
    "one-letter": "/account/passworD",
    "trailing-dot": "/account/password.",
    "trailing-dots": "/account/password..",
    "trailing-space": "/account/password%20",
    "trailing-tab-like-nbsp": "/account/password%C2%A0",
    "json": "/account/password.json",
    "xml": "/account/password.xml",
    "html": "/account/password.html",
    "suffix-then-dot": "/account/password.json.",
    "space-then-suffix": "/account/password%20.json",
    "semicolon": "/account/password;x=1",
    "extra-segment": "/account/password/x",
    "extra-segments": "/account/password/a/b/c",
    "extra-under-2fa": "/account/2fa/setup",
    "suffix-on-parent": "/account.json/password",
    "fullwidth": "/%EF%BD%81%EF%BD%83%EF%BD%83%EF%BD%8F%EF%BD%95%EF%BD%8E%EF%BD%94/password",
    "fullwidth-solidus": "/account%EF%BC%8Fpassword",
    "ligature-under-account": "/account/pa%EF%AC%86word",
    "soft-hyphen": "/account/pass%C2%ADword",
    "zero-width-joiner": "/account/pass%E2%80%8Dword",
    "zero-width-space": "/account/2fa%E2%80%8B",
    "mathematical-bold": "/account/%F0%9D%90%A9assword",
    "admin-case": "/ADMIN",
    "admin-extra": "/Admin/users",
    "admin-suffix": "/admin.php",
    "email-upper": "/ACCOUNT/EMAIL",
    "orders-assign-extra": "/orders/1/assign/x",
    "reports-suffix": "/reports.csv",
}


@pytest.fixture
async def impersonating(make_gateway: Any) -> Any:
    client = await make_gateway(routes=ROUTES)
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == 303
    return client


async def _send(client: Any, method: str, raw: str, headers: dict[str, str] | None = None
                ) -> Any:
    url = URL(str(client.make_url("")).rstrip("/") + raw, encoded=True)
    return await client.session.request(method, url, allow_redirects=False, headers={
        "Accept": "application/json", **(headers or {})})


@pytest.mark.parametrize("raw", list(SPELLINGS.values()), ids=list(SPELLINGS))
async def test_protected_spelling_is_never_a_storefront_page(impersonating, upstream,
                                                             raw) -> None:
    """While impersonating, no spelling of a protected path is forwarded to the shop."""
    resp = await _send(impersonating, "GET", raw)
    assert resp.status in (400, 403, 404, 405), (raw, resp.status)
    assert upstream.seen == [], [s.raw_path for s in upstream.seen]
    line = audit_lines(impersonating)[-1]
    assert line["decision"] == "deny"
    assert line["page"] != "storefront"


async def test_storefront_still_falls_back(impersonating, upstream) -> None:
    """An unknown shop path is still the storefront, forwarded as the buyer."""
    resp = await _send(impersonating, "GET", "/wp/anything.json")
    assert resp.status == 200
    assert upstream.last.header("X-Remote-User") == "buyer-alice"


@pytest.mark.parametrize(("method", "raw", "allow"), [
    ("DELETE", "/account/password", "GET, HEAD, POST"),
    ("PUT", "/account/2fa", "GET, HEAD, POST"),
    ("PATCH", "/account/email", "GET, HEAD, POST"),
    ("OPTIONS", "/account/password", "GET, HEAD, POST"),
    ("POST", "/cart", "GET, HEAD"),
    ("DELETE", "/admin", "GET, HEAD"),
    ("DELETE", "/_gateway/login", "GET, HEAD, POST"),
    ("PUT", "/_gateway/impersonate", "POST"),
], ids=["delete-password", "put-2fa", "patch-email", "options-password", "post-cart",
        "delete-admin", "gateway-login", "gateway-impersonate"])
async def test_unlisted_method_is_405_not_fallback(impersonating, upstream, method, raw,
                                                   allow) -> None:
    """A route's unlisted method is a 405 with Allow, audited, never the fallback page."""
    resp = await _send(impersonating, method, raw)
    assert resp.status == 405
    assert resp.headers["Allow"] == allow
    assert upstream.seen == []
    line = audit_lines(impersonating)[-1]
    assert (line["status"], line["reason"], line["decision"]) == \
        (405, "method_not_allowed", "deny")


IDENTITY_SPELLINGS = ["X.Remote.User", "x.remote.user", "XRemoteUser", "xremoteuser",
                      "X-Remote.User", "X~Remote~User", "X!Remote!User", "X-Remote--User",
                      "X.Impersonator", "X.Gateway.Assertion", "XRequestId", "X.Forwarded.For"]


@pytest.mark.parametrize("name", IDENTITY_SPELLINGS, ids=IDENTITY_SPELLINGS)
async def test_identity_header_spelling_never_reaches_the_shop(impersonating, upstream,
                                                                name) -> None:
    """An identity header with other separators or none is refused, never forwarded."""
    resp = await _send(impersonating, "GET", "/wp/x", headers={name: "admin-ann"})
    assert resp.status == 400
    assert upstream.seen == []
    assert audit_lines(impersonating)[-1]["reason"] == "spoofed_header"
