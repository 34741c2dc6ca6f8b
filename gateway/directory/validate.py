"""Rules for directory input: every problem named by its field, all at once."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from gateway.core.domain import USER_KINDS
from gateway.core.i18n import N_

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{4,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COMPANY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ValidationFailed(Exception):
    """Input that breaks a directory rule; `fields` maps each bad field to why."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))


def check_user(data: dict[str, Any], *, creating: bool) -> dict[str, str]:
    problems: dict[str, str] = {}
    username = data.get("username", "")
    if creating and not (isinstance(username, str) and USERNAME.match(username)):
        problems["username"] = N_("at least 5 characters: lowercase letters, digits, '.', '_' "
                                  "or '-', starting with a letter or digit")
    email = data.get("email", "")
    if (creating or "email" in data) and not (isinstance(email, str) and EMAIL.match(email)
                                              and len(email) <= 254):
        problems["email"] = N_("a valid email address is required")
    if "kind" in data and data["kind"] not in USER_KINDS:
        problems["kind"] = f"one of {', '.join(USER_KINDS)}"
    if "idle_minutes" in data and not (type(data["idle_minutes"]) is int
                                       and 1 <= data["idle_minutes"] <= 24 * 60):
        problems["idle_minutes"] = N_("a whole number of minutes from 1 to 1440")
    for key in ("groups", "features", "tags", "ip_fence", "assigned_companies"):
        if key in data and not (isinstance(data[key], list)
                                and all(isinstance(v, str) for v in data[key])):
            problems[key] = N_("a list of strings")
    for cidr in data.get("ip_fence", []) if isinstance(data.get("ip_fence"), list) else []:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems["ip_fence"] = f"not an address range: {cidr!r}"
    for key in ("active", "allow_assistance"):
        if key in data and not isinstance(data[key], bool):
            problems[key] = N_("true or false")
    if "company" in data and not isinstance(data["company"], (str, type(None))):
        problems["company"] = N_("a company id or null")
    for key in ("first_name", "last_name", "mobile", "account_number"):
        if key in data and (not isinstance(data[key], str) or len(data[key]) > 100):
            problems[key] = N_("text of at most 100 characters")
    return problems


def check_company(data: dict[str, Any], *, creating: bool) -> dict[str, str]:
    problems: dict[str, str] = {}
    company_id = data.get("id", "")
    if creating and not (isinstance(company_id, str) and COMPANY_ID.match(company_id)):
        problems["id"] = N_("lowercase letters, digits, '-' or '_'")
    name = data.get("name", "")
    if (creating or "name" in data) and not (isinstance(name, str) and name.strip()
                                             and len(name) <= 200):
        problems["name"] = N_("a name of 1 to 200 characters is required")
    for flag in ("allow_assistance", "no_impersonation"):
        if flag in data and not isinstance(data[flag], bool):
            problems[flag] = N_("true or false")
    return problems


IMMUTABLE_USER = {"username", "password_hash", "password"}
EDITABLE_USER = {"email", "first_name", "last_name", "mobile", "kind", "company",
                 "account_number", "active", "idle_minutes", "features", "tags",
                 "allow_assistance", "groups", "ip_fence", "assigned_companies"}
