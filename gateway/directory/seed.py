"""Loads a directory from YAML (the demo directory, or an export) into an empty database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gateway.directory.models import (
    AssignmentRow,
    CompanyRow,
    FenceRow,
    GroupRow,
    MembershipRow,
    UserRow,
)
from gateway.directory.passwords import HASHER

if TYPE_CHECKING:  # only for the annotation: the store calls this module when it opens
    from gateway.directory.store import Directory

USER_FIELDS = ("email", "first_name", "last_name", "mobile", "kind", "account_number",
               "active", "idle_minutes", "features", "tags", "allow_assistance", "created_by")


async def load_seed(directory: Directory, path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
            db.add(_user_row(spec))
        await directory.bump(db)


def _user_row(spec: dict[str, Any]) -> UserRow:
    password = spec.get("password")
    row = UserRow(username=spec["username"], company_id=spec.get("company"),
                  password_hash=spec.get("password_hash") or
                  (HASHER.hash(password) if password else None),
                  **{k: spec[k] for k in USER_FIELDS if k in spec})
    row.groups = [MembershipRow(group=g) for g in spec.get("groups", [])]
    row.assignments = [AssignmentRow(company_id=c) for c in spec.get("assigned_companies", [])]
    row.fences = [FenceRow(cidr=c) for c in spec.get("ip_fence", [])]
    return row
