"""Decide a request offline, as the gateway would: the routes, pages, policy and directory
without a server, for the policy authors' tools and the admin area's access matrix."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.areas import AREA_OF_SEGMENT, GATEWAY_PREFIX
from gateway.core.domain import Actor, Company, DirectorySnapshot, Page, User
from gateway.core.errors import GatewayError, NotFound
from gateway.core.settings import Settings
from gateway.directory.seed import read_seed
from gateway.directory.store import Directory
from gateway.policy.constants import policy_constants
from gateway.policy.decide import decide
from gateway.policy.decision import Decision
from gateway.policy.engine import PolicyEngine
from gateway.request.canon import canonicalize
from gateway.request.routes import SAFE_METHODS, RouteTable, compile_route


@dataclass(frozen=True)
class Verdict:
    decision: str
    reason: str
    page: str | None
    action: str | None


@dataclass(frozen=True)
class Question:
    """What a request asks the policy: a page (with its action) or an admin area."""

    kind: str  # "page" | "admin"
    name: str
    action: str


class UnknownUser(LookupError):
    pass


class Harness:
    """The real routes, pages, policy and seed directory, without a server.

    The admin pages build one around the running gateway's own engine, routes and directory.
    """

    def __init__(self, settings: Settings, policies: Path | None = None,
                 directory: DirectorySnapshot | None = None, *,
                 engine: PolicyEngine | None = None, routes: RouteTable | None = None) -> None:
        self.settings = settings
        self.engine = engine or PolicyEngine(policies or settings.policies_dir,
                                             policy_constants(settings))
        self.routes = routes or RouteTable([compile_route(s) for s in settings.routes])
        self.directory = directory or seed_snapshot(settings)

    def user(self, name: str) -> User:
        user = self.directory.user(name)
        if user is None:
            raise UnknownUser(f"unknown user {name!r} (not in {self.settings.directory.seed})")
        return user

    def question(self, method: str, path: str) -> Question:
        """The route (or gateway-owned area) a request maps to; GatewayError if none."""
        target = canonicalize(path)
        if target.path.startswith(GATEWAY_PREFIX):
            return gateway_question(method.upper(), target.path)
        match = self.routes.match(method.upper(), target.path)
        return Question("page", match.page, match.action)

    def decide(self, username: str, acting_as: str | None, method: str, path: str) -> Verdict:
        """As the gateway decides: the route, then the verdict the proxy itself asks for."""
        actor = Actor(self.user(username), self.user(acting_as) if acting_as else None,
                      directory_version=self.directory.version)
        try:
            asked = self.question(method, path)
        except GatewayError as err:
            return Verdict("deny", err.reason, None, None)
        if asked.kind == "page" and asked.name != "select_user":
            page = self.settings.pages[asked.name]
            decision = decide(self.engine, self.directory, actor, page, asked.action)
        else:
            decision = self.gateway_owned(actor, asked)
        return Verdict("allow" if decision.allowed else "deny", decision.reason, asked.name,
                       asked.action)

    def gateway_owned(self, actor: Actor, asked: Question) -> Decision:
        """The gateway's own pages, as their handlers ask: an impersonation still allowed,
        then the admin area's rule, or Select User's page rule asked of the real person."""
        if actor.acting_as is not None:
            still = self.engine.impersonation(actor.alone(), actor.acting_as, self.directory)
            if not still.allowed:
                return still
        if asked.kind == "admin":
            return self.engine.admin(actor, asked.action, asked.name, self.directory)
        page = self.settings.pages[asked.name]
        return self.engine.page(actor.alone(), asked.action, page, self.directory)


def gateway_question(method: str, path: str) -> Question:
    """Select User and the admin area, as their handlers ask; other gateway paths: 404."""
    parts = path[len(GATEWAY_PREFIX):].split("/")
    if parts[0] == "select-user":
        return Question("page", "select_user", "view" if method in SAFE_METHODS else "submit")
    if parts[0] in ("admin", "api") and len(parts) > 1:
        area = AREA_OF_SEGMENT.get(parts[1] or "users")
        if area is not None:
            return Question("admin", area, "read" if method in ("GET", "HEAD") else "manage")
    raise NotFound("no_route", detail=path)


def seed_snapshot(settings: Settings) -> DirectorySnapshot:
    """The directory as the seed file describes it (no database needed)."""
    data = read_seed(settings.directory.seed)
    fields = {f.name for f in dataclasses.fields(User)}
    users = {}
    for spec in data.get("users", []):
        values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                                  for k, v in spec.items() if k in fields}
        users[spec["username"]] = User(**values)
    companies = {c["id"]: Company(c["id"], c["name"], c.get("allow_assistance", False),
                                  c.get("no_impersonation", False))
                 for c in data.get("companies", [])}
    return DirectorySnapshot(version=1, users=users, companies=companies,
                             facts={name: i for i, name in enumerate(users, start=1)})


async def live_snapshot(settings: Settings) -> DirectorySnapshot:
    """The directory database the configuration names, as the gateway reads it."""
    url = settings.directory.url
    if url.startswith("sqlite") and ":///" in url and not Path(url.split(":///", 1)[1]).exists():
        raise UnknownUser(f"no directory database at {url} (run the gateway once, or drop "
                          "--live-directory to use the seed file)")
    directory = await Directory.open(url)
    try:
        return directory.snapshot
    finally:
        await directory.close()


__all__ = ["Harness", "Page", "Question", "UnknownUser", "Verdict"]
