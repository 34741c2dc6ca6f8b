"""Directory changes: validated, versioned for every replica, returned as before/after."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, select

from gateway.core.domain import CSR_GROUP, User
from gateway.core.i18n import N_
from gateway.directory.models import (
    AssignmentRow,
    CompanyRow,
    FenceRow,
    GroupRow,
    MembershipRow,
    UserRow,
)
from gateway.directory.store import Directory, to_company, to_user
from gateway.directory.validate import (
    EDITABLE_USER,
    IMMUTABLE_USER,
    ValidationFailed,
    check_company,
    check_user,
)

Change = tuple[dict[str, Any] | None, dict[str, Any] | None]


def public(user: User | None) -> dict[str, Any] | None:
    """A user as the API shows it (never a secret: the directory has none in User)."""
    return None if user is None else {**asdict(user), "display_name": user.display_name}


class DirectoryService:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    async def _known_groups(self, db: Any) -> set[str]:
        return set((await db.scalars(select(GroupRow.name))).all())

    async def _known_companies(self, db: Any) -> set[str]:
        return set((await db.scalars(select(CompanyRow.id))).all())

    async def create_user(self, data: dict[str, Any], created_by: User | None) -> Change:
        problems = check_user(data, creating=True)
        async with self.directory.sessions.begin() as db:
            problems |= await self._references(db, data)
            if not problems and await db.get(UserRow, data["username"]) is not None:
                problems["username"] = "already taken"
            if problems:
                raise ValidationFailed(problems)
            fence = data.get("ip_fence")
            if fence is None and created_by is not None:
                fence = list(created_by.ip_fence)  # a new user inherits its creator's fence
            row = UserRow(username=data["username"], email=data["email"],
                          created_by=created_by.username if created_by else None)
            self._apply(row, {**data, "ip_fence": fence or []})
            db.add(row)
            await self.directory.bump(db)
        await self.directory.changed()
        return None, public(self.directory.snapshot.user(data["username"]))

    async def update_user(self, username: str, data: dict[str, Any]) -> Change:
        before = self.directory.snapshot.user(username)
        fixed = sorted(set(data) & IMMUTABLE_USER)
        unknown = sorted(set(data) - EDITABLE_USER - IMMUTABLE_USER)
        problems = check_user(data, creating=False)
        problems |= {k: N_("cannot be changed") for k in fixed}
        problems |= {k: N_("unknown field") for k in unknown}
        async with self.directory.sessions.begin() as db:
            row = await db.get(UserRow, username)
            if row is None:
                raise KeyError(username)
            problems |= await self._references(db, data)
            if problems:
                raise ValidationFailed(problems)
            self._apply(row, data)
            await self.directory.bump(db)
        await self.directory.changed()
        return public(before), public(self.directory.snapshot.user(username))

    async def _references(self, db: Any, data: dict[str, Any]) -> dict[str, str]:
        problems = {}
        lists = ("groups", "assigned_companies", "features", "tags", "ip_fence")
        data = {k: v for k, v in data.items()  # shape errors are reported by check_user
                if (isinstance(v, list) and all(isinstance(x, str) for x in v))
                or (k not in lists and not isinstance(v, list))}
        groups = set(data.get("groups") or []) - await self._known_groups(db)
        if groups:
            problems["groups"] = f"unknown group(s): {', '.join(sorted(groups))}"
        companies = await self._known_companies(db)
        if isinstance(data.get("company"), str) and data["company"] \
                and data["company"] not in companies:
            problems["company"] = f"unknown company {data['company']!r}"
        assigned = set(data.get("assigned_companies") or []) - companies
        if assigned:
            problems["assigned_companies"] = f"unknown: {', '.join(sorted(assigned))}"
        return problems

    @staticmethod
    def _apply(row: UserRow, data: dict[str, Any]) -> None:
        for key in ("email", "first_name", "last_name", "mobile", "kind", "account_number",
                    "active", "idle_minutes", "features", "tags", "allow_assistance"):
            if key in data:
                setattr(row, key, data[key])
        if "company" in data:
            row.company_id = data["company"] or None
        if "groups" in data:
            row.groups = [MembershipRow(group=g) for g in dict.fromkeys(data["groups"])]
        if "assigned_companies" in data:
            row.assignments = [AssignmentRow(company_id=c)
                               for c in dict.fromkeys(data["assigned_companies"])]
        if "ip_fence" in data:
            row.fences = [FenceRow(cidr=c) for c in dict.fromkeys(data["ip_fence"] or [])]

    async def create_group(self, name: str, description: str = "") -> Change:
        if not name.strip() or len(name) > 64:
            raise ValidationFailed({"name": N_("a name of 1 to 64 characters")})
        async with self.directory.sessions.begin() as db:
            if await db.get(GroupRow, name) is not None:
                raise ValidationFailed({"name": N_("already exists")})
            db.add(GroupRow(name=name, description=description))
            await self.directory.bump(db)
        await self.directory.changed()
        return None, {"name": name, "description": description}

    async def delete_group(self, name: str) -> Change:
        """the CSR group (and every built-in group) cannot be deleted."""
        async with self.directory.sessions.begin() as db:
            row = await db.get(GroupRow, name)
            if row is None:
                raise KeyError(name)
            if row.builtin or name == CSR_GROUP:
                raise ValidationFailed({"name": f"the {name} group is built in and cannot "
                                                "be deleted"})
            await db.execute(delete(MembershipRow).where(MembershipRow.group == name))
            await db.delete(row)
            await self.directory.bump(db)
        await self.directory.changed()
        return {"name": name}, None

    async def groups(self) -> list[dict[str, Any]]:
        async with self.directory.sessions() as db:
            rows = (await db.scalars(select(GroupRow).order_by(GroupRow.name))).all()
        members: dict[str, list[str]] = {}
        for user in self.directory.snapshot.users.values():
            for group in user.groups:
                members.setdefault(group, []).append(user.username)
        return [{"name": r.name, "builtin": r.builtin, "description": r.description,
                 "members": sorted(members.get(r.name, []))} for r in rows]

    async def save_company(self, data: dict[str, Any], *, creating: bool) -> Change:
        problems = check_company(data, creating=creating)
        if problems:
            raise ValidationFailed(problems)
        async with self.directory.sessions.begin() as db:
            row = await db.get(CompanyRow, data["id"])
            if creating and row is not None:
                raise ValidationFailed({"id": "already exists"})
            if not creating and row is None:
                raise KeyError(data["id"])
            before = None if row is None else asdict(to_company(row))
            row = row or CompanyRow(id=data["id"], name=data["name"])
            db.add(row)
            for key in ("name", "allow_assistance", "no_impersonation"):
                if key in data:
                    setattr(row, key, data[key])
            await self.directory.bump(db)
        await self.directory.changed()
        return before, asdict(self.directory.snapshot.companies[data["id"]])

    async def assign(self, company: str, csrs: list[str], *, replace: bool) -> Change:
        """tick CSRs for a company; with `replace`, the ticked ones are exactly assigned."""
        snapshot = self.directory.snapshot
        if company not in snapshot.companies:
            raise ValidationFailed({"company": f"unknown company {company!r}"})
        bad = [c for c in csrs if CSR_GROUP not in getattr(snapshot.user(c), "groups", ())]
        if bad:
            raise ValidationFailed({"csrs": f"not CSRs: {', '.join(bad)}"})
        before = sorted(u.username for u in snapshot.users.values()
                        if company in u.assigned_companies)
        async with self.directory.sessions.begin() as db:
            if replace:
                await db.execute(delete(AssignmentRow).where(AssignmentRow.company_id == company))
                await db.flush()
            have = set((await db.scalars(select(AssignmentRow.username).where(
                AssignmentRow.company_id == company))).all())
            db.add_all(AssignmentRow(username=c, company_id=company) for c in csrs
                       if c not in have)
            await self.directory.bump(db)
        await self.directory.changed()
        after = sorted(u.username for u in self.directory.snapshot.users.values()
                       if company in u.assigned_companies)
        return {"company": company, "csrs": before}, {"company": company, "csrs": after}

    async def unassign(self, company: str, csr: str) -> Change:
        async with self.directory.sessions.begin() as db:
            await db.execute(delete(AssignmentRow).where(
                AssignmentRow.company_id == company, AssignmentRow.username == csr))
            await self.directory.bump(db)
        await self.directory.changed()
        return {"company": company, "csr": csr}, None


__all__ = ["DirectoryService", "ValidationFailed", "public", "to_user"]
