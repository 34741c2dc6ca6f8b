"""Loads a directory from YAML (the demo directory, or an export) into an empty database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from argon2 import PasswordHasher

from gateway.directory.models import (
    AssignmentRow,
    CompanyRow,
    FenceRow,
    GroupRow,
    MembershipRow,
    UserRow,
)

if TYPE_CHECKING:  # only for the annotation: the store calls this module when it opens
    from gateway.directory.store import Directory

USER_FIELDS = ("email", "first_name", "last_name", "mobile", "kind", "account_number",
               "active", "idle_minutes", "features", "tags", "allow_assistance", "created_by")


def read_seed(path: Path | None) -> dict[str, Any]:
    """The seed file as data (companies, groups, users): the one reader of its YAML, for the
    directory, the policy tools and the checks alike. No file: an empty seed."""
    if path is None or not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


async def load_seed(directory: Directory, path: Path) -> None:
    data = read_seed(path)
    async with directory.sessions.begin() as db:
        for company in data.get("companies", []):
            db.add(CompanyRow(id=company["id"], name=company["name"],
                              allow_assistance=company.get("allow_assistance", False),
                              no_impersonation=company.get("no_impersonation", False)))
        known = {g.name for g in (await db.execute(GroupRow.__table__.select())).all()}
        for group in data.get("groups", []):
            if group["name"] not in known:
                db.add(GroupRow(name=group["name"], description=group.get("description", "")))
        await db.flush()
        for spec in data.get("users", []):
            db.add(_user_row(spec, directory.hasher))
        await directory.bump(db)


def _user_row(spec: dict[str, Any], hasher: PasswordHasher) -> UserRow:
    password = spec.get("password")
    row = UserRow(username=spec["username"], company_id=spec.get("company"),
                  password_hash=spec.get("password_hash") or
                  (hasher.hash(password) if password else None),
                  **{k: spec[k] for k in USER_FIELDS if k in spec})
    row.groups = [MembershipRow(group=g) for g in spec.get("groups", [])]
    row.assignments = [AssignmentRow(company_id=c) for c in spec.get("assigned_companies", [])]
    row.fences = [FenceRow(cidr=c) for c in spec.get("ip_fence", [])]
    return row
