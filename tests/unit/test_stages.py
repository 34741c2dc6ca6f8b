"""The pipeline's pure stages, each called with what it needs: no app, no server."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.load import load_settings
from gateway.core.domain import Actor
from gateway.core.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound
from gateway.pipeline.authz import authorize
from gateway.pipeline.route import in_gateway_namespace, route
from gateway.pipeline.websocket import check_upgrade
from gateway.policy.constants import policy_constants
from gateway.policy.engine import PolicyEngine
from gateway.policylab.harness import seed_snapshot
from gateway.request import hygiene
from gateway.request.canon import canonicalize
from gateway.request.routes import RouteTable, compile_route
from gateway.runtime.context import RequestContext
from tests.support.gateway import ROOT

SETTINGS = load_settings(ROOT / "config" / "gateway.yaml")
ROUTES = RouteTable([compile_route(spec) for spec in SETTINGS.routes])
ENGINE = PolicyEngine(SETTINGS.policies_dir, policy_constants(SETTINGS))
DIRECTORY = seed_snapshot(SETTINGS)


@pytest.mark.parametrize(("method", "target", "page", "action", "changes"), [
    ("GET", "/", "storefront", "view", False),
    ("GET", "/cart", "cart", "view", False),
    ("POST", "/checkout", "checkout", "order", True),
    ("GET", "/static/app.css", "public", "view", False),
    ("HEAD", "/reports", "reports", "view", False),
], ids=["storefront", "cart", "checkout", "head", "public"])
def test_route_names_page_action_and_change(method: str, target: str, page: str, action: str,
                                            changes: bool) -> None:
    """The route stage says which page and action the policy is asked about."""
    routed = route(ROUTES, SETTINGS.pages, method, canonicalize(target))
    assert (routed.page.name, routed.action, routed.state_changing) == (page, action, changes)


@pytest.mark.parametrize(("method", "target", "error"), [
    ("BREW", "/", MethodNotAllowed),
    ("GET", "/no/such/page/anywhere", NotFound),
    ("GET", "/products/x;jsessionid=1", BadRequest),
], ids=["unknown-method", "no-route", "path-parameter"])
def test_route_refuses(method: str, target: str, error: type[Exception]) -> None:
    """Deny by default: no route is 404, an unknown method 405, a path parameter 400."""
    with pytest.raises(error):
        route(ROUTES, SETTINGS.pages, method, canonicalize(target, allow_semicolon=True))


@pytest.mark.parametrize(("path", "own"), [("/_gateway", True), ("/_gateway/login", True),
                                           ("/_gatewayx", False), ("/", False)])
def test_gateway_namespace(path: str, own: bool) -> None:
    assert in_gateway_namespace(path) is own


@pytest.mark.parametrize(("user", "acting", "page", "allowed", "reason"), [
    ("buyer-alice", None, "cart", True, "ok"),
    ("csr-carol", None, "cart", False, "policy_denied"),
    ("csr-carol", "buyer-alice", "cart", True, "ok"),
    ("csr-carol", "buyer-alice", "change_password", False, "sensitive_page"),
    (None, None, "public", True, "public_page"),
    (None, None, "storefront", False, "unauthenticated"),
], ids=["buyer-own-cart", "csr-no-cart", "csr-as-buyer-cart", "sensitive", "public", "anonymous"])
def test_authorize_records_the_verdict(user: str | None, acting: str | None, page: str,
                                       allowed: bool, reason: str) -> None:
    """The authorize stage: allowed requests carry the decision, refusals raise 403 with the
    policy's reason; both are on the request's context for the audit line."""
    actor = None
    if user is not None:
        found = DIRECTORY.user(user)
        assert found is not None
        actor = Actor(found, DIRECTORY.user(acting) if acting else None)
    ctx = RequestContext(method="GET", client_ip="127.0.0.1")
    spec = SETTINGS.pages[page]
    if allowed:
        authorize(ctx, ENGINE, DIRECTORY, actor, spec, "view")
    else:
        with pytest.raises(Forbidden):
            authorize(ctx, ENGINE, DIRECTORY, actor, spec, "view")
    assert (ctx.decision, ctx.reason) == ("allow" if allowed else "deny", reason)


@pytest.mark.parametrize(("upgrade", "route_allows", "result"), [
    (None, False, False), ("websocket", True, True), ("WebSocket ", True, True),
    ("websocket", False, BadRequest), ("h2c", True, BadRequest),
], ids=["none", "websocket", "spelling", "not-on-this-route", "h2c"])
def test_upgrade_stage(upgrade: str | None, route_allows: bool, result: object) -> None:
    """Only a WebSocket upgrade, and only where the route allows it."""
    headers = CIMultiDictProxy(CIMultiDict({"Upgrade": upgrade} if upgrade else {}))
    if result is BadRequest:
        with pytest.raises(BadRequest):
            check_upgrade(headers, route_allows)
    else:
        assert check_upgrade(headers, route_allows) is result


def test_raw_headers_are_decoded_as_sent() -> None:
    """Every copy and spelling survives decoding, so the scrub sees what the client sent."""
    raw = [(b"X-Remote-User", b"admin"), (b"x-remote-user", b"root"), (b"Host", b"shop")]
    assert hygiene.decoded(raw) == [("X-Remote-User", "admin"), ("x-remote-user", "root"),
                                    ("Host", "shop")]
