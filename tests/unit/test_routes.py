"""Route table: one route per request or none; HEAD decided as GET."""

from __future__ import annotations

import pytest

from gateway.core.errors import MethodNotAllowed, NotFound
from gateway.core.settings import RouteSpec
from gateway.request.routes import RouteTable, compile_route, conflicts, overlaps, split

TABLE = RouteTable([compile_route(s) for s in (
    RouteSpec("/", "storefront"),
    RouteSpec("/products/*", "storefront"),
    RouteSpec("/orders/*/assign", "order_assignment", methods=("POST",), action="assign"),
    RouteSpec("/admin/**", "shop_admin", methods=("GET", "POST")),
    RouteSpec("/Reports", "reports", case_sensitive=False),
    RouteSpec("/strict", "cart", strict_slash=True),
)])


@pytest.mark.parametrize(("method", "path", "page", "action"), [
    ("GET", "/", "storefront", "view"),
    ("HEAD", "/", "storefront", "view"),
    ("GET", "/products/p-1", "storefront", "view"),
    ("POST", "/orders/7/assign", "order_assignment", "assign"),
    ("GET", "/admin/users/x", "shop_admin", "view"),
    ("POST", "/admin/x", "shop_admin", "submit"),
    ("GET", "/reports", "reports", "view"),
    ("GET", "/REPORTS/", "reports", "view"),
    ("GET", "/strict", "cart", "view"),
], ids=["root", "head-as-get", "one-segment", "inner-star", "rest", "rest-post",
        "case-insensitive", "case-and-slash", "strict-exact"])
def test_match(method: str, path: str, page: str, action: str) -> None:
    """Each request maps to exactly the configured page and action."""
    found = TABLE.match(method, path)
    assert (found.page, found.action) == (page, action)


@pytest.mark.parametrize(("method", "path", "error"), [
    ("GET", "/nowhere", NotFound),
    ("GET", "/products", NotFound),
    ("GET", "/products/a/b", NotFound),
    ("GET", "/admin", NotFound),
    ("GET", "/strict/", NotFound),
    ("DELETE", "/", MethodNotAllowed),
    ("GET", "/orders/7/assign", MethodNotAllowed),
], ids=["unknown", "star-needs-segment", "star-one-only", "rest-needs-one", "strict-slash",
        "method", "post-only"])
def test_no_match_is_refused(method: str, path: str, error: type[Exception]) -> None:
    """No route: 404; route without the method: 405. Deny by default."""
    with pytest.raises(error):
        TABLE.match(method, path)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("/a", "/a", True), ("/a", "/b", False), ("/a/*", "/a/b", True), ("/a/**", "/a/b/c", True),
    ("/a/**", "/a", False), ("/*/x", "/y/*", True), ("/a/*", "/a/*/b", False),
], ids=["same", "different", "star", "rest", "rest-needs-one", "cross-stars", "lengths"])
def test_overlaps(a: str, b: str, expected: bool) -> None:
    """Two patterns overlap when some path matches both."""
    assert overlaps(split(a), split(b)) is expected


def test_conflicts_only_for_shared_methods() -> None:
    """Overlapping patterns with disjoint methods are fine (GET page vs POST action)."""
    routes = [compile_route(RouteSpec("/x", "a")),
              compile_route(RouteSpec("/x", "b", methods=("POST",))),
              compile_route(RouteSpec("/*", "c", methods=("POST",)))]
    assert conflicts(routes) == [(1, 2)]


def test_fallback_answers_only_when_nothing_else_matches() -> None:
    """A fallback route never overlaps: specific routes win, the rest falls back."""
    specs = (RouteSpec("/cart", "cart"), RouteSpec("/**", "storefront", fallback=True,
                                                   methods=("GET", "POST")))
    routes = [compile_route(s) for s in specs]
    assert conflicts(routes) == []
    table = RouteTable(routes)
    assert table.match("GET", "/cart").page == "cart"
    assert table.match("GET", "/wp/anything").page == "storefront"
    with pytest.raises(MethodNotAllowed):  # a route's unlisted method never falls back
        table.match("POST", "/cart")
    with pytest.raises(NotFound):  # nor does another spelling of, or a path under, a route
        table.match("GET", "/CART.json")


def test_two_fallbacks_conflict() -> None:
    """Two fallbacks for the same method are as ambiguous as two routes."""
    routes = [compile_route(RouteSpec("/**", "a", fallback=True)),
              compile_route(RouteSpec("/x/**", "b", fallback=True))]
    assert conflicts(routes) == [(0, 1)]
