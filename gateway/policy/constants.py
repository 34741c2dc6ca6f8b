"""The constants a policy file may read (`REQUIRE_CONSENT`...), from the configuration."""

from __future__ import annotations

from gateway.core.settings import Settings


def policy_constants(settings: Settings) -> dict[str, object]:
    return {"REQUIRE_CONSENT": settings.impersonation.require_consent}
