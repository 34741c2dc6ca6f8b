"""The gateway's own administration areas: their path segments, resources and titles."""

from __future__ import annotations

GATEWAY_PREFIX = "/_gateway/"
# Path segment under /_gateway/admin/ (and /_gateway/api/) -> the admin resource the policy
# decides on.
AREA_OF_SEGMENT = {"users": "users", "groups": "groups", "companies": "companies",
                   "assign-csrs": "assignments", "assignments": "assignments",
                   "sessions": "sessions", "transactions": "transactions", "policy": "policy",
                   "approvals": "approvals"}
ADMIN_AREAS = ("users", "groups", "companies", "assignments", "sessions", "transactions",
               "policy", "approvals")
AREA_TITLES = {"users": "Users", "groups": "Groups", "companies": "Companies",
               "assignments": "Assign CSRs", "sessions": "Active sessions",
               "transactions": "Transaction Log", "policy": "Policy",
               "approvals": "Approvals"}
