"""Policy authors' tools: decision tables, explanations, the access matrix, replay."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from gateway.config import load_settings
from gateway.domain import Actor, DirectorySnapshot, Page, User
from gateway.errors import GatewayError
from gateway.pathcanon import canonicalize
from gateway.policy.engine import PolicyEngine
from gateway.routes import RouteTable, compile_route
from gateway.settings import Settings


@dataclass(frozen=True)
class Verdict:
    decision: str
    reason: str
    page: str | None
    action: str | None


class Bench:
    """The real routes, pages, policy and seed directory, without a server."""

    def __init__(self, settings: Settings, policies: Path | None = None) -> None:
        self.settings = settings
        self.engine = PolicyEngine(policies or settings.policies_dir,
                                   {"REQUIRE_CONSENT": settings.impersonation.require_consent})
        self.routes = RouteTable([compile_route(s) for s in settings.routes])
        self.directory = seed_snapshot(settings)

    def user(self, name: str) -> User:
        user = self.directory.user(name)
        if user is None:
            raise SystemExit(f"unknown user {name!r} (not in {self.settings.directory.seed})")
        return user

    def decide(self, username: str, acting_as: str | None, method: str, path: str) -> Verdict:
        actor = Actor(self.user(username), self.user(acting_as) if acting_as else None,
                      directory_version=self.directory.version)
        try:
            target = canonicalize(path)
            match = self.routes.match(method.upper(), target.path)
        except GatewayError as err:
            return Verdict("deny", err.reason, None, None)
        page = self.settings.pages[match.page]
        if acting_as:
            imp = self.engine.impersonation(dataclasses.replace(actor, acting_as=None),
                                            actor.acting_as, self.directory)  # type: ignore[arg-type]
            if not imp.allowed:
                return Verdict("deny", imp.reason, page.name, match.action)
        if page.public:
            return Verdict("allow", "public_page", page.name, match.action)
        decision = self.engine.page(actor, match.action, page, self.directory)
        return Verdict("allow" if decision.allowed else "deny", decision.reason, page.name,
                       match.action)


def seed_snapshot(settings: Settings) -> DirectorySnapshot:
    """The directory as the seed file describes it (no database needed)."""
    from gateway.domain import Company

    seed = settings.directory.seed
    data: dict[str, Any] = yaml.safe_load(seed.read_text()) if seed and seed.exists() else {}
    fields = {f.name for f in dataclasses.fields(User)}
    users = {}
    for spec in data.get("users", []):
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()
                  if k in fields}
        users[spec["username"]] = User(**values)  # type: ignore[arg-type]
    companies = {c["id"]: Company(c["id"], c["name"], c.get("allow_assistance", False),
                                  c.get("no_impersonation", False))
                 for c in data.get("companies", [])}
    return DirectorySnapshot(version=1, users=users, companies=companies,
                             facts={name: i for i, name in enumerate(users, start=1)})


def _bench(args: argparse.Namespace) -> Bench:
    from gateway.demo_cli import default_config

    settings = load_settings(args.config or default_config())
    return Bench(settings, Path(args.policies) if getattr(args, "policies", None) else None)


def cmd_test(args: argparse.Namespace) -> int:
    bench = _bench(args)
    if args.replay:
        from gateway.policy.replay import replay

        return replay(bench, Path(args.replay))
    files = [Path(f) for f in args.files] or sorted(
        (bench.settings.policies_dir / "tests").glob("*.yaml"))
    if not files:
        print("no decision tables found (policies/tests/*.yaml)", file=sys.stderr)
        return 2
    failures = total = 0
    for path in files:
        for i, case in enumerate(yaml.safe_load(path.read_text()) or []):
            total += 1
            problem = _run_case(bench, case)
            if problem:
                failures += 1
                print(f"FAIL {path}:{i + 1} {problem}")
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def _run_case(bench: Bench, case: dict[str, Any]) -> str | None:
    method, _, path = str(case["request"]).partition(" ")
    got = bench.decide(case["persona"], case.get("as"), method, path)
    want = case["expect"]
    want_reason = case.get("reason")
    if got.decision == want and (want_reason is None or want_reason == got.reason):
        return None
    who = case["persona"] + (f" as {case['as']}" if case.get("as") else "")
    return (f"{who} {method} {path}: expected {want}"
            f"{'/' + want_reason if want_reason else ''}, got {got.decision}/{got.reason} "
            f"(page {got.page}, action {got.action})")


def cmd_explain(args: argparse.Namespace) -> int:
    from gateway.policy.explain import explain

    bench = _bench(args)
    print(explain(bench, args.user, args.acting_as, args.method, args.path))
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    from gateway.policy.matrix import access_matrix, render

    bench = _bench(args)
    print(render(access_matrix(bench), args.format))
    return 0


def dump(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


__all__ = ["Bench", "Page", "Verdict", "cmd_explain", "cmd_matrix", "cmd_test"]
