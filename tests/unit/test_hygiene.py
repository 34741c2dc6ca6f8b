"""Header hygiene: identity headers in any spelling never pass; proxies believed only if
trusted."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from gateway.core.errors import BadRequest
from gateway.core.settings import HeaderNames
from gateway.request.hygiene import (
    HeaderPolicy,
    client_address,
    external_origin,
    reject_method_override,
    scrub_request_headers,
    scrub_response_headers,
)

POLICY = HeaderPolicy.default(HeaderNames().all(), ("X-Debug-Admin",))


@pytest.mark.parametrize("name", [
    "X-Remote-User", "x-remote-user", "X-REMOTE-USER", " X-Remote-User", "X-Impersonator",
    "X-Remote-Groups", "X-Remote-Company", "X-Gateway-Assertion", "X-Request-Id",
    "X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Original-URL", "X-Rewrite-URL",
    "X-Forwarded-Uri", "X-HTTP-Method-Override", "X-Method-Override", "X-Debug-Admin",
    "Proxy-Authorization", "Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Upgrade",
])
def test_stripped_in_every_spelling(name: str) -> None:
    """Identity, denied and hop-by-hop headers are removed, whatever their case or padding."""
    kept = scrub_request_headers([(name, "admin-ann"), ("Accept", "text/html")], POLICY)
    assert kept == [("Accept", "text/html")]


def test_duplicates_all_removed() -> None:
    """Two copies of an identity header: both go."""
    kept = scrub_request_headers([("X-Remote-User", "a"), ("x-remote-user", "b")], POLICY)
    assert kept == []


@pytest.mark.parametrize("name", ["X_Remote_User", "x_remote_user", "X-Remote_User",
                                  "X_Impersonator", "X_Forwarded_For"])
def test_underscore_identity_is_refused(name: str) -> None:
    """An underscore spelling that CGI would read as the identity header is a 400."""
    with pytest.raises(BadRequest) as err:
        scrub_request_headers([(name, "admin-ann")], POLICY)
    assert err.value.reason == "spoofed_header"


def test_other_underscore_headers_dropped() -> None:
    """Any other header with `_` is dropped: some upstreams merge it with `-`."""
    assert scrub_request_headers([("X_Custom", "1"), ("X-Custom", "2")], POLICY) == [
        ("X-Custom", "2")]


def test_connection_cannot_name_away_a_gateway_header() -> None:
    """Headers named in Connection are hop-by-hop and removed; the gateway sets its own
    identity headers after scrubbing, so naming them changes nothing."""
    kept = scrub_request_headers([("Connection", "close, X-Remote-User, X-Keep"),
                                  ("X-Keep", "1"), ("X-Other", "2")], POLICY)
    assert kept == [("X-Other", "2")]


def test_own_cookie_removed_others_kept() -> None:
    """The gateway session cookie never reaches the shop; the shop's cookies do."""
    kept = scrub_request_headers([("Cookie", "a=1; csrgw_session=secret; sessionid=s")],
                                 POLICY, ("csrgw_session",))
    assert kept == [("Cookie", "a=1; sessionid=s")]


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    ("203.0.113.9", {"X-Forwarded-For": "1.2.3.4"}, "203.0.113.9"),
    ("10.0.0.2", {"X-Forwarded-For": "1.2.3.4, 10.0.0.7"}, "1.2.3.4"),
    ("10.0.0.2", {"X-Forwarded-For": "6.6.6.6, 1.2.3.4"}, "1.2.3.4"),
    ("10.0.0.2", {"Forwarded": 'for="[2001:db8::1]:443";proto=https'}, "2001:db8::1"),
    ("10.0.0.2", {"Forwarded": "for=198.51.100.7:8080"}, "198.51.100.7"),
    ("10.0.0.2", {"X-Forwarded-For": "garbage, 1.2.3.4"}, "1.2.3.4"),
    ("10.0.0.2", {"X-Forwarded-For": "1.2.3.4, garbage"}, "10.0.0.2"),
    ("10.0.0.2", {}, "10.0.0.2"),
    ("10.0.0.2", {"Forwarded": "for=6.6.6.6", "X-Forwarded-For": "1.2.3.4"}, "1.2.3.4"),
    ("10.0.0.2", {"X-Forwarded-For": "1.2.3.4, 10.0.0.7, 10.0.0.8"}, "1.2.3.4"),
], ids=["untrusted-peer", "trusted-chain", "spoofed-left-ignored", "forwarded-ipv6",
        "forwarded-port", "garbage-left", "garbage-right", "no-header",
        "client-forwarded-ignored-when-xff", "several-trusted-hops"])
def test_client_address(peer: str, headers: dict[str, str], expected: str) -> None:
    """X-Forwarded-For/Forwarded are believed only from trusted proxies, right to left."""
    assert client_address(peer, CIMultiDict(headers), TRUSTED) == expected


def test_response_scrubbing() -> None:
    """The shop cannot set the gateway's cookie or pass hop-by-hop headers."""
    kept = scrub_response_headers([
        ("Set-Cookie", "csrgw_session=evil; Path=/"), ("Set-Cookie", "cart=1"),
        ("Connection", "X-Internal"), ("X-Internal", "1"), ("Keep-Alive", "5"),
        ("Content-Length", "10")], ("csrgw_session",))
    assert kept == [("Set-Cookie", "cart=1"), ("Content-Length", "10")]


@pytest.mark.parametrize("query", ["_method=DELETE", "a=1&_METHOD=put",
                                   "x-http-method-override=PUT"])
def test_method_override_parameters_refused(query: str) -> None:
    """`_method` and friends in the query are refused."""
    with pytest.raises(BadRequest):
        reject_method_override(query)


@pytest.mark.parametrize(("trusted", "headers", "expected"), [
    (False, {}, "http://gw.internal:8080"),
    (False, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
     "http://gw.internal:8080"),
    (True, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com"},
     "https://shop.example.com"),
    (True, {"X-Forwarded-Proto": "HTTPS, http"}, "https://gw.internal:8080"),
    (True, {"X-Forwarded-Host": "shop.example.com:8443, inner"},
     "http://shop.example.com:8443"),
    (True, {"Forwarded": 'for=1.2.3.4;proto=https;host="shop.example.com", for=10.0.0.1'},
     "https://shop.example.com"),
    (True, {"X-Forwarded-Proto": "javascript"}, "http://gw.internal:8080"),
    (True, {"X-Forwarded-Host": "evil.example/path"}, "http://gw.internal:8080"),
    (True, {"X-Forwarded-Host": "user@evil.example"}, "http://gw.internal:8080"),
    (True, {"X-Forwarded-Host": "[::1]:8443"}, "http://[::1]:8443"),
], ids=["untrusted-plain", "untrusted-ignored", "trusted-xf", "first-proto", "first-host",
        "forwarded", "bad-proto", "host-with-path", "host-with-userinfo", "ipv6-host"])
def test_external_origin(trusted: bool, headers: dict[str, str], expected: str) -> None:
    """The redirect URI's origin believes forwarded scheme and host from trusted proxies
    only, and only when they are a plain scheme and host."""
    assert external_origin("http", "gw.internal:8080", CIMultiDict(headers), trusted) == expected
