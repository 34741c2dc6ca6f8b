"""Whether a session holds the proof of a second factor the policy may ask for."""

from __future__ import annotations

from gateway.runtime.gateway import Gateway
from gateway.sessions.store import Session

# RFC 8176 values that prove more than a password
SECOND_FACTORS = frozenset({"mfa", "otp", "hwk", "swk", "sms", "tel", "fpt", "face", "iris",
                            "sc", "retina", "vbm"})


def acr_values(gw: Gateway) -> tuple[str, ...]:
    """The provider's `acr` values configured as proof of a second factor."""
    return gw.oidc.settings.mfa_acr_values if gw.oidc is not None else ()


def has_second_factor(gw: Gateway, session: Session) -> bool:
    """An `amr` with a second factor (the provider's, or the gateway's own TOTP), or an
    `acr` the configuration names as one; an `acr` counts only from the provider."""
    if SECOND_FACTORS & set(session.amr):
        return True
    return bool(session.acr) and session.idp is not None and session.acr in acr_values(gw)
