"""Lints for `check`: risky people, routes and pages the policy never mentions, dead rules.

Warnings, not errors: the gateway runs, but something is probably not what was meant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.core.domain import ADMIN_GROUP, BUILTIN_GROUPS, CSR_GROUP, Actor
from gateway.core.settings import Settings
from gateway.directory.seed import read_seed
from gateway.policy.engine import OPTIONAL_QUESTIONS, QUESTIONS, REFUSAL_RULE, PolicyEngine, ask
from gateway.policy.rulegraph import FACT, read_graph
from gateway.policy.views import PolarUser, polar_actor
from gateway.policylab.harness import seed_snapshot
from gateway.request.routes import compile_route

GATEWAY_PAGES = ("select_user",)  # pages the gateway serves itself: no route needed


def lint(settings: Settings, engine: PolicyEngine) -> list[str]:
    files = engine.current.files
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    seed = _seed(settings)
    return [*csr_admin_warnings(seed), *route_warnings(settings, text),
            *unused_rules(files), *unused_grants(settings, text, seed),
            *print_warnings(files), *list_walk_warnings(files),
            *impersonation_disagreements(settings, engine),
            *[f"polar: {w.splitlines()[0]}" for w in engine.current.warnings]]


def csr_admin_warnings(seed: dict[str, Any]) -> list[str]:
    """A CSR who is also an Administrator has more rights than intended."""
    return [f'user "{u["username"]}" is both CSR and Administrator: more rights than '
            "intended; while impersonating they still get only what an acting CSR gets"
            for u in seed.get("users", []) if {CSR_GROUP, ADMIN_GROUP} <= set(u.get("groups", []))]


def route_warnings(settings: Settings, text: str) -> list[str]:
    """Routes to pages no rule mentions (nobody may use them), pages no route reaches."""
    out = []
    for i, route in enumerate(settings.routes):
        page = settings.pages.get(route.page)
        if page is not None and not page.public and f'"{route.page}"' not in text:
            out.append(f'routes[{i}] {route.path} -> page "{route.page}": no policy rule '
                       "mentions this page, so nobody may use it")
    routed = {r.page for r in settings.routes}
    out += [f'pages.{name}: no route reaches this page' for name in settings.pages
            if name not in routed and name not in GATEWAY_PAGES]
    return out


def unused_rules(files: tuple[Path, ...]) -> list[str]:
    """Rules no question the gateway asks (nor any `?=` self-check) can ever reach."""
    return [f"{rule.file}:{rule.line}: rule {rule.name} is never used: no question the gateway "
            f"asks ({', '.join(QUESTIONS + OPTIONAL_QUESTIONS)}) reaches it"
            for rule in read_graph(files).unused(QUESTIONS + OPTIONAL_QUESTIONS)]


def unused_grants(settings: Settings, text: str, seed: dict[str, Any]) -> list[str]:
    """Grant facts that can never apply: unknown page, a group nobody can be in, an action
    no route of that page asks about."""
    groups = set(BUILTIN_GROUPS) | {g["name"] for g in seed.get("groups", [])}
    groups |= {g for u in seed.get("users", []) for g in u.get("groups", [])}
    actions = _route_actions(settings)
    out = []
    for fact, group, page, action in FACT.findall(text):
        head = f'{fact}("{group}", "{page}", "{action}")'
        if page not in settings.pages:
            out.append(f'{head} is never used: no page "{page}"')
        elif group not in groups:
            out.append(f'{head} is never used: no group "{group}"')
        elif action != "*" and action not in actions.get(page, set()):
            out.append(f'{head} is never used: no route of page "{page}" asks for '
                       f'"{action}" (it asks: {", ".join(sorted(actions.get(page, ())))})')
    return out


def _route_actions(settings: Settings) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"select_user": {"view", "submit"}}
    for spec in settings.routes:
        route = compile_route(spec)
        found.setdefault(spec.page, set()).update(route.action_for(m) for m in route.methods)
    return found


def print_warnings(files: tuple[Path, ...]) -> list[str]:
    """`print(...)` in a rule writes object reprs to stdout on every request."""
    return [f"{path}:{n}: print() writes to the gateway's stdout on every request"
            for path in files
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if "print(" in line.split("#", 1)[0]]


def list_walk_warnings(files: tuple[Path, ...]) -> list[str]:
    """`x in actor.assigned_companies` copies the whole list into Polar on every uncached
    decision; `actor.is_assigned(x)` gives the same answer in one call."""
    return [f"{path}:{n}: `in ....assigned_companies` walks the list in Polar (slow for "
            f"large teams); write `....is_assigned(company)`"
            for path in files
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if ".assigned_companies" in line.split("#", 1)[0]
            and " in " in line.split("#", 1)[0]]


def impersonation_disagreements(settings: Settings, engine: PolicyEngine) -> list[str]:
    """`allow_impersonation` decides and `impersonation_refused` names the reason: for
    every pair of people in the seed directory they must agree."""
    directory = seed_snapshot(settings)
    out = []
    for csr in directory.users.values():
        for buyer in directory.users.values():
            found = engine.impersonation(Actor(csr), buyer, directory)
            if found.reason in ("impersonation_not_allowed", "policy_error"):
                out.append(f"{csr.username} as {buyer.username}: allow_impersonation fails "
                           f"but impersonation_refused names no reason ({found.reason})")
            elif found.allowed and _refusal(engine, csr, buyer, directory):
                out.append(f"{csr.username} as {buyer.username}: allow_impersonation holds "
                           "but impersonation_refused names a reason: the rules disagree")
    return out


def _refusal(engine: PolicyEngine, csr: Any, buyer: Any, directory: Any) -> bool:
    return bool(ask(engine, REFUSAL_RULE, polar_actor(Actor(csr), directory),
                    PolarUser(buyer, directory), None))


def _seed(settings: Settings) -> dict[str, Any]:
    return read_seed(settings.directory.seed)
