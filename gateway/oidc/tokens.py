"""ID token and logout token validation against the provider's keys (joserfc), with reasons."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class TokenRefused(Exception):
    """A token the gateway will not accept; `reason` is the audit reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def key_id(token: str) -> str | None:
    # joserfc only where a provider is configured (a worker without one never loads it)
    from joserfc import jws
    from joserfc.errors import JoseError

    try:
        kid = jws.extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError) as exc:
        raise TokenRefused("oidc_token_invalid", f"unreadable token: {exc}") from exc
    return str(kid) if kid is not None else None


def verified_claims(token: str, keys: KeySet, *, issuer: str, audience: str,
                    leeway: int, **required: Any) -> dict[str, Any]:
    """Signature, issuer, audience, expiry and issue time: any failure is refused."""
    # joserfc only where a provider is configured (a worker without one never loads it)
    from joserfc import jwt
    from joserfc.errors import ExpiredTokenError, JoseError

    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise TokenRefused("oidc_token_invalid", f"signature: {exc}") from exc
    claims = dict(decoded.claims)
    options: dict[str, Any] = {"iss": {"essential": True, "value": issuer},
                               "aud": {"essential": True, "value": audience},
                               "iat": {"essential": True}}
    options |= {k: {"essential": True} for k in required}
    registry = jwt.JWTClaimsRegistry(leeway=leeway, **options)
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise TokenRefused("oidc_token_expired", str(exc)) from exc
    except JoseError as exc:
        raise TokenRefused("oidc_token_invalid", str(exc)) from exc
    if float(claims["iat"]) > time.time() + leeway:
        raise TokenRefused("oidc_token_invalid", "issued in the future")
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != audience:
        raise TokenRefused("oidc_token_invalid", "azp is not this client")
    return claims


def id_token_claims(token: str, keys: KeySet, *, issuer: str, audience: str, leeway: int,
                    nonce: str | None) -> dict[str, Any]:
    claims = verified_claims(token, keys, issuer=issuer, audience=audience, leeway=leeway,
                             exp=True, sub=True)
    if nonce is not None and claims.get("nonce") != nonce:
        raise TokenRefused("oidc_nonce_mismatch", "nonce differs from the one sent")
    return claims


def logout_token_claims(token: str, keys: KeySet, *, issuer: str, audience: str,
                        leeway: int) -> dict[str, Any]:
    """OpenID Back-Channel Logout 1.0, section 2.6."""
    claims = verified_claims(token, keys, issuer=issuer, audience=audience, leeway=leeway,
                             jti=True)
    events = claims.get("events")
    if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
        raise TokenRefused("oidc_token_invalid", "not a back-channel logout event")
    if "nonce" in claims:
        raise TokenRefused("oidc_token_invalid", "a logout token carries no nonce")
    if not claims.get("sid") and not claims.get("sub"):
        raise TokenRefused("oidc_token_invalid", "neither sid nor sub")
    return claims
