"""The plain objects Polar sees: lists not tuples, no secrets, no methods, no I/O behind them.

Every attribute Polar reads is one round trip across the FFI (the dearest part of a decision), so
the objects carry precomputed copies of what the rules read most: a `Principal` carries the
real person's own attributes and the buyer's groups, and `User.standing` holds the
person's flags as words: one read instead of two or four. Reprs show usernames only:
Polar prints them in errors and traces.
"""

from __future__ import annotations

from gateway.core.domain import Actor, Company, DirectorySnapshot, Page, User


class PolarCompany:
    __slots__ = ("allow_assistance", "id", "name", "no_impersonation")

    def __init__(self, company: Company | None, company_id: str | None) -> None:
        self.id = company_id
        self.name = company.name if company else company_id
        self.allow_assistance = bool(company and company.allow_assistance)
        self.no_impersonation = bool(company and company.no_impersonation)

    def __repr__(self) -> str:
        return f"Company({self.id})"


def standing(user: User, company: PolarCompany) -> list[str]:
    """The user's flags as words, for one read: kind, status, consent, company flags."""
    words = [user.kind, "active" if user.active else "inactive"]
    if user.allow_assistance:
        words.append("allows_assistance")
    if company.allow_assistance:
        words.append("company_allows_assistance")
    if company.no_impersonation:
        words.append("company_no_impersonation")
    return words


# The only methods Polar may call: pure answers from the view's own frozen fields.
POLAR_METHODS = ("is_assigned",)
USER_FIELDS = ("active", "allow_assistance", "assigned_companies", "company", "company_info",
               "features", "groups", "kind", "standing", "tags", "username", "assigned")


class PolarUser:
    """`User`: `is_assigned(company)` answers in one call across the FFI what `company in
    user.assigned_companies` answers by copying the whole list into Polar (thousands of
    companies for a large CSR team: milliseconds, and past Polar's time limit under load)."""

    __slots__ = USER_FIELDS

    def __init__(self, user: User, companies: DirectorySnapshot | None = None) -> None:
        self.username = user.username
        self.kind = user.kind
        self.company = user.company
        self.groups = list(user.groups)
        self.features = list(user.features)
        self.tags = list(user.tags)
        self.assigned_companies = list(user.assigned_companies)
        self.assigned = frozenset(user.assigned_companies)
        self.active = user.active
        self.allow_assistance = user.allow_assistance
        found = companies.companies.get(user.company or "") if companies else None
        self.company_info = PolarCompany(found, user.company)
        self.standing = standing(user, self.company_info)

    def is_assigned(self, company: str | None) -> bool:
        return company is not None and company in self.assigned

    def __repr__(self) -> str:  # Polar prints reprs in errors: keep personal data out
        return f"User({self.username})"


class PolarActor:
    """`Principal`: the real person, with every `User` attribute of theirs copied on (one read
    instead of two), plus `user` (the same person as a User), `acting_as` (the buyer or
    None), `impersonating` and `buyer_groups` (the buyer's groups, [] when not acting)."""

    __slots__ = (*USER_FIELDS, "acting_as", "buyer_groups", "impersonating", "user")

    def __init__(self, user: PolarUser, acting_as: PolarUser | None) -> None:
        for name in USER_FIELDS:
            setattr(self, name, getattr(user, name))
        self.user = user
        self.acting_as = acting_as
        self.impersonating = acting_as is not None
        self.buyer_groups = acting_as.groups if acting_as is not None else []

    def is_assigned(self, company: str | None) -> bool:
        return self.user.is_assigned(company)

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


class ApprovalRequest:
    """`may_approve(approver, request)`: who asks to act for whom, for which company, why."""

    __slots__ = ("buyer", "company", "reason", "requester")

    def __init__(self, requester: PolarUser, buyer: PolarUser, company: str | None,
                 reason: str) -> None:
        self.requester, self.buyer, self.company, self.reason = requester, buyer, company, reason

    def __repr__(self) -> str:
        return f"ApprovalRequest({self.requester!r} for {self.buyer!r})"


def polar_actor(actor: Actor, directory: DirectorySnapshot | None) -> PolarActor:
    buyer = PolarUser(actor.acting_as, directory) if actor.acting_as else None
    return PolarActor(PolarUser(actor.user, directory), buyer)


POLAR_CLASSES = {"Principal": PolarActor, "User": PolarUser, "Page": PolarPage,
                 "Company": PolarCompany, "AdminResource": AdminResource,
                 "ApprovalRequest": ApprovalRequest}
