"""Policy authors' tools: decide a request offline, as the gateway would, and the CLI commands."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.config import load_settings
from gateway.domain import Actor, Company, DirectorySnapshot, Page, User
from gateway.errors import GatewayError
from gateway.pathcanon import canonicalize
from gateway.policy.engine import PolicyEngine
from gateway.routes import SAFE_METHODS, RouteTable, compile_route
from gateway.settings import Settings

GATEWAY_PREFIX = "/_gateway/"
# Gateway-owned areas the policy decides on: path segment -> admin resource.
ADMIN_AREAS = {"users": "users", "groups": "groups", "companies": "companies",
               "assign-csrs": "assignments", "assignments": "assignments",
               "sessions": "sessions", "transactions": "transactions", "policy": "policy"}


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


class Bench:
    """The real routes, pages, policy and seed directory, without a server.

    The admin pages build one around the running gateway's own engine, routes and directory.
    """

    def __init__(self, settings: Settings, policies: Path | None = None,
                 directory: DirectorySnapshot | None = None, *,
                 engine: PolicyEngine | None = None, routes: RouteTable | None = None) -> None:
        from gateway.app import policy_constants

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
        """As the pipeline decides: route, impersonation re-check, then the policy."""
        actor = Actor(self.user(username), self.user(acting_as) if acting_as else None,
                      directory_version=self.directory.version)
        try:
            asked = self.question(method, path)
        except GatewayError as err:
            return Verdict("deny", err.reason, None, None)
        if actor.acting_as is not None:
            alone = dataclasses.replace(actor, acting_as=None)
            imp = self.engine.impersonation(alone, actor.acting_as, self.directory)
            if not imp.allowed:
                return Verdict("deny", imp.reason, asked.name, asked.action)
        decision = self.ask(actor, asked)
        if decision is None:
            return Verdict("allow", "public_page", asked.name, asked.action)
        return Verdict("allow" if decision.allowed else "deny", decision.reason, asked.name,
                       asked.action)

    def ask(self, actor: Actor, asked: Question) -> Any:
        if asked.kind == "admin":
            return self.engine.admin(actor, asked.action, asked.name, self.directory)
        page = self.settings.pages[asked.name]
        if page.public:
            return None
        if asked.name == "select_user":  # asked as the real person, as the page does
            actor = dataclasses.replace(actor, acting_as=None)
        return self.engine.page(actor, asked.action, page, self.directory)


def gateway_question(method: str, path: str) -> Question:
    """Select User and the admin area, as their handlers ask; other gateway paths: 404."""
    from gateway.errors import NotFound

    parts = path[len(GATEWAY_PREFIX):].split("/")
    if parts[0] == "select-user":
        return Question("page", "select_user", "view" if method in SAFE_METHODS else "submit")
    if parts[0] in ("admin", "api") and len(parts) > 1:
        area = ADMIN_AREAS.get(parts[1] or "users")
        if area is not None:
            return Question("admin", area, "read" if method in ("GET", "HEAD") else "manage")
    raise NotFound("no_route", detail=path)


def seed_snapshot(settings: Settings) -> DirectorySnapshot:
    """The directory as the seed file describes it (no database needed)."""
    seed = settings.directory.seed
    data: dict[str, Any] = yaml.safe_load(seed.read_text()) if seed and seed.exists() else {}
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
    from gateway.directory.store import Directory

    url = settings.directory.url
    if url.startswith("sqlite") and ":///" in url and not Path(url.split(":///", 1)[1]).exists():
        raise UnknownUser(f"no directory database at {url} (run the gateway once, or drop "
                          "--live-directory to use the seed file)")
    directory = await Directory.open(url)
    try:
        return directory.snapshot
    finally:
        await directory.close()


def _bench(args: argparse.Namespace) -> Bench:
    import asyncio

    from gateway.demo_cli import default_config

    settings = load_settings(args.config or default_config())
    live = asyncio.run(live_snapshot(settings)) if getattr(args, "live_directory", False) \
        else None
    return Bench(settings, Path(args.policies) if getattr(args, "policies", None) else None,
                 live)


def cmd_test(args: argparse.Namespace) -> int:
    from gateway.policy.tables import run_tables

    bench = _bench(args)
    if args.replay:
        from gateway.policy.replay import replay

        return replay(bench, Path(args.replay))
    folder = bench.engine.directory / "tests"
    if not folder.is_dir():  # a candidate policy without tables: the shipped ones
        folder = bench.settings.policies_dir / "tests"
    files = [Path(f) for f in args.files] or sorted(folder.glob("*.yaml"))
    if not files:
        print(f"no decision tables found ({folder}/*.yaml)", file=sys.stderr)
        return 2
    return run_tables(bench, files)


def cmd_explain(args: argparse.Namespace) -> int:
    from gateway.policy.explain import explain

    bench = _bench(args)
    print(explain(bench, args.user, args.acting_as, args.method, args.path,
                  trace=getattr(args, "trace", False)))
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    from gateway.policy.matrix import access_matrix, render

    bench = _bench(args)
    matrix = access_matrix(bench)
    group = getattr(args, "group", None)
    if group and not matrix.showing(group):
        known = ", ".join(r for r in matrix.rows if " as " not in r)
        print(f"no such group: {group} (groups: {known})", file=sys.stderr)
        return 2
    print(render(matrix, args.format, group))
    return 0


__all__ = ["Bench", "Page", "Question", "UnknownUser", "Verdict", "cmd_explain", "cmd_matrix",
           "cmd_test"]
