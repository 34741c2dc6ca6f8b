"""Header hygiene: strip every spelling of identity headers, believe proxies only if trusted."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from urllib.parse import parse_qsl

from gateway.core.errors import BadRequest

Network = IPv4Network | IPv6Network
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-authenticate",
                        "proxy-authorization", "host", "content-length", "expect"})
RESPONSE_HOP_BY_HOP = HOP_BY_HOP - {"content-length"}
FORWARDING = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded",
              "X-Real-IP")
DENY = ("X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Uri", "X-Forwarded-Path",
        "X-Forwarded-Prefix", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
        "X-Original-Method", "X-Forwarded-Method", "X-Forwarded-Server", "X-Envoy-Original-Path",
        "X-Authenticated-User", "X-Remote-Addr", "X-Client-IP", "X-Original-URI",
        "X-Forwarded-User", "X-Forwarded-Email", "X-Auth-Request-User", "Remote-User")
# The gateway sets the trace context it forwards (gateway/request/tracecontext.py); the client's
# copies never pass on as they came.
TRACE_HEADERS = ("traceparent", "tracestate")
METHOD_OVERRIDE_PARAMS = frozenset({"_method", "x-http-method-override", "_httpmethod"})


_FOLDED: dict[str, str] = {}


def fold(name: str) -> str:
    """Header names repeat from request to request: the common ones come from a memo
    (bounded in count and name length, so odd names cannot fill memory)."""
    found = _FOLDED.get(name)
    if found is None:
        found = name.strip().lower().replace("_", "-")
        if len(name) <= 64 and len(_FOLDED) < 2048:
            _FOLDED[name] = found
    return found


_SEPARATORS = re.compile(r"[^a-z0-9]+")
_SQUASHED: dict[str, str] = {}


def squash(name: str) -> str:
    """The name with case and every separator gone: some frameworks fold `X.Remote.User`,
    `X_Remote_User` or `XRemoteUser` onto `X-Remote-User`, so all of them are one name."""
    found = _SQUASHED.get(name)
    if found is None:
        found = _SEPARATORS.sub("", name.lower())
        if len(name) <= 64 and len(_SQUASHED) < 2048:
            _SQUASHED[name] = found
    return found


@dataclass(frozen=True)
class HeaderPolicy:
    identity: frozenset[str]  # folded names the gateway sets
    deny: frozenset[str]  # folded names never forwarded
    trusted_proxies: tuple[Network, ...] = ()

    @functools.cached_property
    def dropped(self) -> frozenset[str]:
        """Every folded name a request header is dropped for, whatever its value."""
        return HOP_BY_HOP | self.identity | self.deny

    @functools.cached_property
    def dropped_squashed(self) -> frozenset[str]:
        return frozenset(squash(n) for n in self.dropped)

    @functools.cached_property
    def identity_squashed(self) -> frozenset[str]:
        return frozenset(squash(n) for n in self.identity)

    @classmethod
    def default(cls, identity: Iterable[str], extra_deny: Iterable[str] = (),
                trusted: tuple[Network, ...] = ()) -> HeaderPolicy:
        return cls(frozenset(fold(n) for n in (*identity, *FORWARDING)),
                   frozenset(fold(n) for n in (*DENY, *TRACE_HEADERS, *extra_deny)), trusted)


def scrub_request_headers(headers: Iterable[tuple[str, str]], policy: HeaderPolicy,
                          own_cookies: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop, identity (any spelling) and denied ones, and
    minus those its Connection header names."""
    out = []
    connection = ""
    dropped, identity = policy.dropped_squashed, policy.identity_squashed
    for name, value in headers:
        folded, squashed = fold(name), squash(name)
        if squashed in dropped or "_" in name or name != name.strip():
            if squashed in identity and ("_" in name or folded not in policy.identity):
                raise BadRequest("spoofed_header", "An identity header was sent by the client.",
                                 detail=name)
            if folded == "connection":
                connection += "," + value
            continue
        if folded == "cookie" and own_cookies:
            value = strip_cookies(value, own_cookies)
            if not value:
                continue
        out.append((name, value))
    return _without_named(out, connection)


def _without_named(headers: list[tuple[str, str]], connection: str) -> list[tuple[str, str]]:
    """Also drop the headers a Connection header names (they are hop-by-hop too)."""
    if not connection:
        return headers
    named = {fold(token) for token in connection.split(",")}
    return [(name, value) for name, value in headers if fold(name) not in named]


def strip_cookies(header: str, names: tuple[str, ...]) -> str:
    kept = [part for part in header.split(";")
            if part.strip().split("=", 1)[0].strip() not in names]
    return ";".join(kept).strip()


def scrub_response_headers(headers: Iterable[tuple[str, str]],
                           own_cookies: tuple[str, ...]) -> list[tuple[str, str]]:
    """The shop's headers minus hop-by-hop ones, those its Connection header names, and any
    Set-Cookie for the gateway's own cookie."""
    out = []
    connection = ""
    for name, value in headers:
        folded = fold(name)
        if folded in RESPONSE_HOP_BY_HOP:
            if folded == "connection":
                connection += "," + value
            continue
        if folded == "set-cookie" and value.split("=", 1)[0].strip() in own_cookies:
            continue
        out.append((name, value))
    return _without_named(out, connection)


def is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def _parse_ip(text: str) -> str | None:
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _chain(headers: Mapping[str, str]) -> list[str]:
    """X-Forwarded-For first: nginx, Traefik and Envoy set it and pass a client's own
    `Forwarded` through untouched, so that one counts only when no X-Forwarded-For came."""
    getall = getattr(headers, "getall", None)
    xff = getall("X-Forwarded-For", []) if getall else [headers.get("X-Forwarded-For", "")]
    chain = [p for p in ",".join(xff).split(",") if p.strip()]
    forwarded = getall("Forwarded", []) if getall else []
    if chain or not forwarded:
        return chain
    return [pair.split("=", 1)[1] for entry in ",".join(forwarded).split(",")
            for pair in entry.split(";") if pair.strip().lower().startswith("for=")]


def client_address(peer: str | None, headers: Mapping[str, str],
                   trusted: tuple[Network, ...]) -> str:
    """The peer, unless it is a trusted proxy: then the nearest untrusted hop, right to left."""
    if peer is None:
        return ""
    if not trusted or not is_trusted(peer, trusted):
        return peer
    found = peer
    for entry in reversed(_chain(headers)):
        ip = _parse_ip(entry)
        if ip is None:
            break
        found = ip
        if not is_trusted(ip, trusted):
            break
    return found


def forwarded_headers(client_ip: str, proto: str, host: str,
                      prior_xff: str | None) -> list[tuple[str, str]]:
    chain = f"{prior_xff}, {client_ip}" if prior_xff else client_ip
    return [("X-Forwarded-For", chain), ("X-Forwarded-Proto", proto),
            ("X-Forwarded-Host", host)]


def reject_method_override(query: str) -> None:
    if not query:
        return
    for key, _ in parse_qsl(query, keep_blank_values=True):
        if key.lower() in METHOD_OVERRIDE_PARAMS:
            raise BadRequest("method_override", "Method override parameters are refused.",
                             detail=key)


def decoded(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The request's headers exactly as sent (every copy and spelling), for scrubbing."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


def from_trusted_proxy(peer: str | None, trusted: tuple[Network, ...]) -> bool:
    return bool(trusted) and peer is not None and is_trusted(peer, trusted)


HOST_TEXT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")


def _first_forwarded(headers: Mapping[str, str], key: str) -> str:
    """`key=` of the first element of `Forwarded` (the hop nearest the client)."""
    first = headers.get("Forwarded", "").split(",", 1)[0]
    for pair in first.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.lower() == key:
            return value.strip().strip('"')
    return ""


def external_origin(scheme: str, host: str, headers: Mapping[str, str],
                    from_trusted: bool) -> str:
    """`scheme://host` as the browser used them (see `external_scheme_host`)."""
    scheme, host = external_scheme_host(scheme, host, headers, from_trusted)
    return f"{scheme}://{host}"


def external_scheme_host(scheme: str, host: str, headers: Mapping[str, str],
                         from_trusted: bool) -> tuple[str, str]:
    """The scheme and host the browser used: as a trusted proxy forwarded them, otherwise
    (or when what it forwarded is not a plain scheme and host) the request's own."""
    if from_trusted:
        proto = (headers.get("X-Forwarded-Proto", "").split(",", 1)[0].strip().lower()
                 or _first_forwarded(headers, "proto").lower())
        forwarded_host = (headers.get("X-Forwarded-Host", "").split(",", 1)[0].strip()
                          or _first_forwarded(headers, "host"))
        if proto in ("http", "https"):
            scheme = proto
        if forwarded_host and HOST_TEXT.match(forwarded_host):
            host = forwarded_host
    return scheme, host
