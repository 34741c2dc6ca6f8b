"""The gateway's own administration areas: their path segments, resources and titles."""

from __future__ import annotations

from gateway.core.i18n import N_, gettext

GATEWAY_PREFIX = "/_gateway/"
# Path segment under /_gateway/admin/ (and /_gateway/api/) -> the admin resource the policy
# decides on.
AREA_OF_SEGMENT = {"users": "users", "groups": "groups", "companies": "companies",
                   "assign-csrs": "assignments", "assignments": "assignments",
                   "sessions": "sessions", "transactions": "transactions", "policy": "policy",
                   "approvals": "approvals"}
ADMIN_AREAS = ("users", "groups", "companies", "assignments", "sessions", "transactions",
               "policy", "approvals")
AREA_TITLES = {"users": N_("Users"), "groups": N_("Groups"), "companies": N_("Companies"),
               "assignments": N_("Assign CSRs"), "sessions": N_("Active sessions"),
               "transactions": N_("Transaction Log"), "policy": N_("Policy"),
               "approvals": N_("Approvals")}
ADMIN_TITLE = N_("Administration: %(area)s")


def admin_title(area: str, *, translate: bool = True) -> str:
    """An admin area as people call it: "Administration: Users", in the reader's language
    (`translate=False`: the English the policy tools print)."""
    say = gettext if translate else str
    return say(ADMIN_TITLE) % {"area": say(AREA_TITLES.get(area, area))}
