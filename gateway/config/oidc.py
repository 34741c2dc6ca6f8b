"""Checks of `login:` and `public_url` that parse but could not work, reported with their path."""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any
from urllib.parse import urlsplit

from gateway.config.yamlsrc import Source
from gateway.core.settings import LoginSettings, OidcSettings

ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
PROVISION = ("existing", "create")
REQUIRED = ("name", "issuer", "client_id", "client_secret")


def from_environment(src: Source, raw: dict[str, Any]) -> dict[str, Any]:
    """`client_secret: ${NAME}` reads the variable NAME, so the secret stays out of the file."""
    secret = raw.get("client_secret")
    found = ENV_REF.match(secret) if isinstance(secret, str) else None
    if found is None:
        return raw
    value = os.environ.get(found.group(1))
    if not value:
        src.problem(("login", "oidc", "client_secret"),
                    f"environment variable {found.group(1)} is not set")
        return {k: v for k, v in raw.items() if k != "client_secret"}
    return {**raw, "client_secret": value}


def loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def url_problem(text: str) -> str | None:
    """https anywhere; plain http only to this machine (a test or a local provider)."""
    url = urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        return "must be an http(s) URL with a host"
    if url.scheme == "http" and not loopback(url.hostname):
        return "http:// is allowed only on a loopback address; use https://"
    if url.query or url.fragment:
        return "must not have a query or fragment"
    return None


def check(src: Source, login: LoginSettings, public_url: str | None) -> None:
    if public_url is not None:
        url = urlsplit(public_url)
        if url.scheme not in ("http", "https") or not url.hostname or url.query:
            src.problem(("public_url",), "must be an http(s) URL with a host and no query")
    if login.oidc is not None:
        _check_oidc(src, login.oidc)


def _check_oidc(src: Source, oidc: OidcSettings) -> None:
    where = ("login", "oidc")
    for key in REQUIRED:
        if not getattr(oidc, key):
            src.problem((*where, key), "is required")
    problem = url_problem(oidc.issuer) if oidc.issuer else None
    if problem:
        src.problem((*where, "issuer"), problem)
    if oidc.token_auth_method not in TOKEN_AUTH_METHODS:
        src.problem((*where, "token_auth_method"),
                    f"{oidc.token_auth_method!r} is not one of {', '.join(TOKEN_AUTH_METHODS)}")
    if oidc.provision not in PROVISION:
        src.problem((*where, "provision"),
                    f"{oidc.provision!r} is not one of {', '.join(PROVISION)}")
    if "openid" not in oidc.scopes:
        src.problem((*where, "scopes"), "must include openid")
    groups = oidc.groups
    if not isinstance(groups, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in groups.items()):
        src.problem((*where, "groups"), "must map IdP group names to gateway group names")
    for key in ("refresh_seconds", "clock_skew_seconds"):
        value = getattr(oidc, key)
        if not 0 <= value <= 86400:
            src.problem((*where, key), f"must be between 0 and 86400, got {value}")
