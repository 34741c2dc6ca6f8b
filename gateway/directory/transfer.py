"""Import and export of the directory as YAML (the format of config/directory.yaml)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.directory.models import GroupRow, UserRow
from gateway.directory.service import DirectoryService
from gateway.directory.store import Directory

USER_KEYS = ("username", "email", "first_name", "last_name", "mobile", "kind", "company",
             "account_number", "active", "idle_minutes", "features", "tags",
             "allow_assistance", "groups", "assigned_companies", "ip_fence")


async def export(directory: Directory, with_hashes: bool = False) -> dict[str, Any]:
    """Everything but secrets; password hashes only when asked (moving to a new store)."""
    snapshot = await directory.reload()
    async with directory.sessions() as db:
        groups = (await db.scalars(select(GroupRow).where(GroupRow.builtin.is_(False)))).all()
        hashes = {r.username: r.password_hash for r in (await db.scalars(select(UserRow)))}
    users = []
    for user in sorted(snapshot.users.values(), key=lambda u: u.username):
        entry: dict[str, Any] = {}
        for key in USER_KEYS:
            value = getattr(user, key)
            entry[key] = list(value) if isinstance(value, tuple) else value
        if with_hashes and hashes.get(user.username):
            entry["password_hash"] = hashes[user.username]
        users.append(entry)
    return {
        "companies": [{"id": c.id, "name": c.name, "allow_assistance": c.allow_assistance,
                       "no_impersonation": c.no_impersonation}
                      for c in sorted(snapshot.companies.values(), key=lambda c: c.id)],
        "groups": [{"name": g.name, "description": g.description} for g in groups],
        "users": users,
    }


async def import_(directory: Directory, data: dict[str, Any]) -> dict[str, int]:
    """Create what is missing, update what exists; validated like the admin API."""
    service = DirectoryService(directory)
    counts = {"companies": 0, "groups": 0, "users": 0}
    for company in data.get("companies", []):
        creating = company["id"] not in directory.snapshot.companies
        await service.save_company(dict(company), creating=creating)
        counts["companies"] += 1
    known = {g["name"] for g in await service.groups()}
    for group in data.get("groups", []):
        if group["name"] not in known:
            await service.create_group(group["name"], group.get("description", ""))
            counts["groups"] += 1
    for spec in data.get("users", []):
        user = {k: v for k, v in spec.items() if k in USER_KEYS}
        if directory.snapshot.user(user["username"]) is None:
            await service.create_user(user, None)
        else:
            await service.update_user(user["username"],
                                      {k: v for k, v in user.items() if k != "username"})
        if spec.get("password_hash"):
            await _set_hash(directory, user["username"], spec["password_hash"])
        counts["users"] += 1
    return counts


async def _set_hash(directory: Directory, username: str, password_hash: str) -> None:
    async with directory.sessions.begin() as db:
        row = await db.get(UserRow, username)
        if row is not None:
            row.password_hash = password_hash
