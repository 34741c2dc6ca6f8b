"""Who is asking: the gateway's headers, checked against its signed assertion when enabled."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from gateway.settings import HeaderNames

ALGORITHMS = ["EdDSA", "RS256", "ES256"]


class Untrusted(Exception):
    """The request's identity cannot be believed."""


@dataclass
class AssertionVerifier:
    """Verifies X-Gateway-Assertion with the gateway's published JWKS (fetched, cached)."""

    jwks_url: str
    audience: str
    keys: dict[str, Any] = field(default_factory=dict)
    fetched_at: float = 0.0

    async def claims(self, token: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
        except jwt.PyJWTError as exc:
            raise Untrusted(f"malformed assertion: {exc}") from exc
        if kid not in self.keys and time.time() - self.fetched_at > 1:
            await self._fetch()
        key = self.keys.get(kid)
        if key is None:
            raise Untrusted("unknown signing key")
        try:
            return jwt.decode(token, key=key.key, algorithms=ALGORITHMS, audience=self.audience,
                              options={"require": ["exp", "iat", "sub", "aud"]})
        except jwt.PyJWTError as exc:
            raise Untrusted(str(exc)) from exc

    async def _fetch(self) -> None:
        self.fetched_at = time.time()
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    self.jwks_url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Untrusted(f"cannot fetch JWKS: {type(exc).__name__}") from exc
        self.keys = {k.key_id or "": k for k in jwt.PyJWKSet.from_dict(data).keys}


async def identify(request: web.Request, names: HeaderNames,
                   verifier: AssertionVerifier | None) -> dict[str, Any]:
    """The effective user, company, CSR (if any) and the verified assertion's view."""
    h = request.headers
    who: dict[str, Any] = {
        "user": h.get(names.user), "company": h.get(names.company) or None,
        "groups": [g for g in h.get(names.groups, "").split(",") if g],
        "impersonator": h.get(names.impersonator), "request_id": h.get(names.request_id),
        "assertion_sub": None, "assertion_act": None, "verified": False,
    }
    if who["user"] is None:
        raise Untrusted("no identity")
    if verifier is None:
        return who
    token = h.get(names.assertion)
    if not token:
        raise Untrusted("no assertion")
    claims = await verifier.claims(token)
    act = (claims.get("act") or {}).get("sub")
    if claims["sub"] != who["user"] or act != who["impersonator"]:
        raise Untrusted("headers and assertion disagree")
    who.update(assertion_sub=claims["sub"], assertion_act=act, verified=True)
    return who
