"""The plain objects Polar sees: lists not tuples, no secrets, no I/O behind attributes."""

from __future__ import annotations

from gateway.domain import Actor, Company, DirectorySnapshot, Page, User


class PolarCompany:
    __slots__ = ("allow_assistance", "id", "name", "no_impersonation")

    def __init__(self, company: Company | None, company_id: str | None) -> None:
        self.id = company_id
        self.name = company.name if company else company_id
        self.allow_assistance = bool(company and company.allow_assistance)
        self.no_impersonation = bool(company and company.no_impersonation)

    def __repr__(self) -> str:
        return f"Company({self.id})"


class PolarUser:
    __slots__ = ("active", "allow_assistance", "assigned_companies", "company", "company_info",
                 "features", "groups", "kind", "tags", "username")

    def __init__(self, user: User, companies: DirectorySnapshot | None = None) -> None:
        self.username = user.username
        self.kind = user.kind
        self.company = user.company
        self.groups = list(user.groups)
        self.features = list(user.features)
        self.tags = list(user.tags)
        self.assigned_companies = list(user.assigned_companies)
        self.active = user.active
        self.allow_assistance = user.allow_assistance
        found = companies.companies.get(user.company or "") if companies else None
        self.company_info = PolarCompany(found, user.company)

    def __repr__(self) -> str:  # Polar prints reprs in errors: keep personal data out
        return f"User({self.username})"


class PolarActor:
    __slots__ = ("acting_as", "user")

    def __init__(self, user: PolarUser, acting_as: PolarUser | None) -> None:
        self.user = user
        self.acting_as = acting_as

    def __repr__(self) -> str:
        return f"Principal({self.user!r} as {self.acting_as!r})"


class PolarPage:
    __slots__ = ("name", "public", "sensitive")

    def __init__(self, page: Page) -> None:
        self.name = page.name
        self.sensitive = page.sensitive
        self.public = page.public

    def __repr__(self) -> str:
        return f"Page({self.name})"


class AdminResource:
    """An area of the admin API/pages, e.g. users, groups, assignments, sessions, policy."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"AdminResource({self.name})"


def polar_actor(actor: Actor, directory: DirectorySnapshot | None) -> PolarActor:
    buyer = PolarUser(actor.acting_as, directory) if actor.acting_as else None
    return PolarActor(PolarUser(actor.user, directory), buyer)


POLAR_CLASSES = {"Principal": PolarActor, "User": PolarUser, "Page": PolarPage,
                 "Company": PolarCompany, "AdminResource": AdminResource}
