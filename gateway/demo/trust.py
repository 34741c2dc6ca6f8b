"""Who is asking: the gateway's headers, checked against its signed assertion when enabled."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from gateway.core.settings import HeaderNames

ALGORITHMS = ["EdDSA", "RS256", "ES256"]
REFETCH_AFTER = 1.0  # seconds: an unknown kid refetches the JWKS at most this often


class Untrusted(Exception):
    """The request's identity cannot be believed."""


@dataclass(frozen=True)
class Shopper:
    """Who the shop believes is asking: the effective user and, while impersonating, the CSR."""

    user: str
    company: str | None = None
    groups: tuple[str, ...] = ()
    impersonator: str | None = None
    request_id: str | None = None
    verified: bool = False
    assertion_sub: str | None = None
    assertion_act: str | None = None
    impersonation_reason: str | None = None


@dataclass
class AssertionVerifier:
    """Verifies X-Gateway-Assertion with the gateway's published JWKS (fetched, cached)."""

    jwks_url: str
    audience: str
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims, or Untrusted saying why not."""
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
        except jwt.PyJWTError as exc:
            raise Untrusted(f"malformed assertion: {exc}") from exc
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=ALGORITHMS, audience=self.audience,
                options={"require": ["exp", "iat", "sub", "aud"]})
        except jwt.PyJWTError as exc:
            raise Untrusted(str(exc)) from exc
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK:
        async with self._lock:  # concurrent first requests share one fetch
            if kid not in self.keys and time.monotonic() - self.fetched_at > REFETCH_AFTER:
                await self._fetch()
        key = self.keys.get(kid)
        if key is None:
            raise Untrusted("unknown signing key")
        return key

    async def _fetch(self) -> None:
        self.fetched_at = time.monotonic()
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    self.jwks_url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                resp.raise_for_status()
                found = jwt.PyJWKSet.from_dict(await resp.json()).keys
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            raise Untrusted(f"cannot fetch JWKS: {type(exc).__name__}") from exc
        self.keys = {k.key_id or "": k for k in found}


def _text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


def _actor(claims: dict[str, Any]) -> str | None:
    act = claims.get("act")
    if act is None:
        return None
    if not isinstance(act, dict) or not isinstance(act.get("sub"), str):
        raise Untrusted("malformed act claim")
    return str(act["sub"])


async def identify(request: web.Request, names: HeaderNames,
                   verifier: AssertionVerifier | None) -> Shopper:
    """The effective user, company, CSR (if any) and the verified assertion's view of them."""
    h = request.headers
    user = h.get(names.user, "").strip()
    if not user:
        raise Untrusted("no identity")
    shopper = Shopper(
        user=user, company=h.get(names.company, "").strip() or None,
        groups=tuple(g.strip() for g in h.get(names.groups, "").split(",") if g.strip()),
        impersonator=h.get(names.impersonator, "").strip() or None,
        request_id=h.get(names.request_id))
    if verifier is None:
        return shopper  # legacy mode: the headers alone are believed
    token = h.get(names.assertion)
    if not token:
        raise Untrusted("no assertion")
    claims = await verifier.claims(token)
    act = _actor(claims)
    if claims["sub"] != shopper.user or act != shopper.impersonator:
        raise Untrusted("headers and assertion disagree")
    return dataclasses.replace(shopper, verified=True, assertion_sub=claims["sub"],
                               assertion_act=act,
                               impersonation_reason=_text(claims, "impersonation_reason"))
