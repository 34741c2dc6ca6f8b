"""Plain frozen facts about people, companies, pages and requests: what stages pass around."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CUSTOMER, PROSPECT, STAFF = "customer", "prospect", "staff"
USER_KINDS = (CUSTOMER, PROSPECT, STAFF)
CSR_GROUP = "CSR"
ADMIN_GROUP = "Administrator"
BUYER_GROUP = "Buyer"
BUILTIN_GROUPS = (ADMIN_GROUP, CSR_GROUP, BUYER_GROUP, "Site Admin", "Sales Admin")


@dataclass(frozen=True, slots=True)
class Company:
    id: str
    name: str
    allow_assistance: bool = False
    no_impersonation: bool = False


@dataclass(frozen=True, slots=True)
class User:
    """A directory entry as the gateway and the policy see it; never carries secrets."""

    username: str
    email: str
    kind: str = CUSTOMER
    company: str | None = None
    groups: tuple[str, ...] = ()
    first_name: str = ""
    last_name: str = ""
    mobile: str = ""
    account_number: str = ""
    active: bool = True
    idle_minutes: int = 60
    features: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    assigned_companies: tuple[str, ...] = ()
    ip_fence: tuple[str, ...] = ()
    allow_assistance: bool = False
    language: str = ""  # the person's choice for the gateway's pages; "": the browser's

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.username


@dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """Everything the hot path reads from the directory, swapped whole on every change."""

    version: int
    users: Mapping[str, User] = field(default_factory=dict)
    companies: Mapping[str, Company] = field(default_factory=dict)
    # username -> an id that stays the same while that user's facts (and company's) do:
    # decisions are cached by it, so one user's change never flushes everyone's.
    facts: Mapping[str, int] = field(default_factory=dict)

    def user(self, username: str) -> User | None:
        return self.users.get(username)

    def company_name(self, company_id: str | None) -> str:
        company = self.companies.get(company_id or "")
        return company.name if company else (company_id or "")


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    title: str
    sensitive: bool = False
    public: bool = False


@dataclass(frozen=True, slots=True)
class Impersonation:
    """A running 'log in as buyer': who acts for whom, why, since when."""

    id: str
    csr: str
    buyer: str
    reason: str
    started_at: float
    return_to: str = "/"


@dataclass(frozen=True, slots=True)
class Actor:
    """The real person behind a request and, while impersonating, the buyer they act as."""

    user: User
    acting_as: User | None = None
    impersonation: Impersonation | None = None
    directory_version: int = 0

    @property
    def effective(self) -> User:
        return self.acting_as or self.user

    def alone(self) -> Actor:
        """The real person as themselves: what an impersonation's own questions are asked of."""
        return Actor(self.user, None, None, self.directory_version)
