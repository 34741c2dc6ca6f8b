"""`policy explain`: which route and page a request maps to, the decision, and the rules why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.domain import Actor, User
from gateway.errors import GatewayError
from gateway.pathcanon import canonicalize
from gateway.policy.engine import ask
from gateway.policy.views import PolarPage, PolarUser

if TYPE_CHECKING:
    from gateway.policy.tools import Bench


def grants(bench: Bench, fact: str, user: User, action: str, page: str) -> list[str]:
    """The facts (e.g. grant("CSR", "reports", "view")) that give this user the action."""
    found = []
    for group in user.groups:
        for wanted in (action, "*"):
            if ask(bench.engine, fact, group, page, wanted):
                found.append(f'{fact}("{group}", "{page}", "{wanted}") via group {group}')
    return found


def explain(bench: Bench, username: str, acting_as: str | None, method: str,
            path: str) -> str:
    lines = [f"request:   {method.upper()} {path}"]
    try:
        target = canonicalize(path)
        match = bench.routes.match(method.upper(), target.path)
    except GatewayError as err:
        return "\n".join([*lines, f"decision:  DENY ({err.reason}: {err.detail or err.public})",
                          "because:   no policy rule is consulted for this request"])
    page = bench.settings.pages[match.page]
    user = bench.user(username)
    buyer = bench.user(acting_as) if acting_as else None
    verdict = bench.decide(username, acting_as, method, path)
    lines += [f"route:     {match.route.spec.path} {sorted(match.route.methods)} -> page "
              f"{page.name} ({page.title}){' [sensitive]' if page.sensitive else ''}"
              f"{' [public]' if page.public else ''}, action {match.action}",
              f"principal: {_who(user)}" + (f" acting as {_who(buyer)}" if buyer else ""),
              f"decision:  {verdict.decision.upper()} ({verdict.reason}) "
              f"under policy {bench.engine.rev}", "because:"]
    lines += [f"  - {reason}" for reason in _reasons(bench, user, buyer, match.action, page)]
    return "\n".join(lines)


def _who(user: User) -> str:
    return f"{user.username} (groups: {', '.join(user.groups) or 'none'})"


def _reasons(bench: Bench, user: User, buyer: User | None, action: str, page) -> list[str]:  # type: ignore[no-untyped-def]
    if page.public:
        return [f"page {page.name} is public: no login, no policy question"]
    own = grants(bench, "grant", user, action, page.name)
    if buyer is None:
        return [f"{user.username} may {action} {page.name}: {g}" for g in own] or [
            f"no grant(group, \"{page.name}\", \"{action}\"|\"*\") for any of "
            f"{user.username}'s groups: denied by default"]
    out = []
    refusal = ask(bench.engine, "impersonation_refused_now", PolarUser(user, bench.directory),
                  PolarUser(buyer, bench.directory), None)
    if refusal:
        out.append(f"{user.username} may not act for {buyer.username}: "
                   f"impersonation_refused_now gives \"{next(iter(refusal[0].values()))}\"")
    if page.sensitive:
        out.append(f"page {page.name} is sensitive: never while impersonating (R18)")
    acting = grants(bench, "acting_grant", user, action, page.name)
    out += [f"CSR side: {g}" for g in own + acting] or [
        f"CSR side: no grant or acting_grant for {user.username}'s groups on {page.name}"]
    theirs = grants(bench, "grant", buyer, action, page.name)
    out += [f"buyer side: {g}" for g in theirs] or [
        f"buyer side: {buyer.username} has no grant on {page.name}"]
    if not refusal:
        out.append(f"{user.username} may still act for {buyer.username}: no "
                   "impersonation_refused_now rule holds")
    return out


__all__ = ["Actor", "PolarPage", "explain"]
