"""`policy explain`: the route and page a request maps to, the decision, and the rules behind it.

The decision comes from the engine, exactly as the gateway asks it. The reasons come from
asking the policy's own sub-questions again (which grant facts match which group, which
refusal holds) and quoting the policy source lines that state them, so every sentence is
in the policy's words. `--trace` adds Polar's own query log for the deciding question.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.domain import Actor, User
from gateway.core.errors import GatewayError
from gateway.policy import engine as policy
from gateway.policy.views import AdminResource, PolarPage, PolarUser, polar_actor

if TYPE_CHECKING:
    from gateway.policylab.harness import Harness, Question


def explain(bench: Harness, username: str, acting_as: str | None, method: str, path: str,
            trace: bool = False) -> str:
    lines = [f"request:   {method.upper()} {path}"]
    try:
        asked = bench.question(method, path)
    except GatewayError as err:
        return "\n".join([*lines, f"decision:  DENY ({err.reason}: {err.detail or err.public})",
                          "because:   no route matches, so no policy rule is consulted"])
    user = bench.user(username)
    buyer = bench.user(acting_as) if acting_as else None
    verdict = bench.decide(username, acting_as, method, path)
    lines += [f"matched:   {_target(bench, method, path, asked)}",
              f"principal: {_who(user)}" + (f" acting as {_who(buyer)}" if buyer else ""),
              f"decision:  {verdict.decision.upper()} ({verdict.reason}) "
              f"under policy {bench.engine.rev}", "because:"]
    reasons = _reasons(bench, user, buyer, asked)
    lines += [f"  - {reason}" for reason in reasons]
    if _accounts_for(reasons) not in (None, verdict.decision):
        lines += ["  ! the facts above do not account for this decision: another rule made",
                  "    it. The rules Polar applied:",
                  *(f"    {line.strip()}" for line in _trace(bench, user, buyer, asked)
                    if line.strip().startswith("RULE:"))]
    if trace:
        lines += ["trace (Polar's query log for the deciding question):",
                  *(f"  {line}" for line in _trace(bench, user, buyer, asked))]
    return "\n".join(lines)


def _target(bench: Harness, method: str, path: str, asked: Question) -> str:
    if asked.kind == "admin":
        return f"gateway admin area {asked.name!r}, action {asked.action}"
    page = bench.settings.pages[asked.name]
    flags = "".join(f" [{f}]" for f in ("sensitive", "public") if getattr(page, f))
    route = "gateway page /_gateway/select-user"
    if asked.name != "select_user":
        from gateway.request.canon import canonicalize

        match = bench.routes.match(method.upper(), canonicalize(path).path)
        route = f"route {match.route.spec.path} {sorted(match.route.methods)}"
    return f"{route} -> page {page.name} ({page.title}){flags}, action {asked.action}"


def _who(user: User) -> str:
    return f"{user.username} (groups: {', '.join(user.groups) or 'none'})"


ALLOWING = ("matched via group", "allow_impersonation holds", "is public", ": allow_admin(")


def _accounts_for(reasons: list[str]) -> str | None:
    """The decision the explanation's facts imply: every step found a grant, or one did not
    (None: nothing to compare, e.g. no route)."""
    if any(r.startswith(("no ", "buyer side: no ", "CSR side: no ")) or "may not act" in r
           or "is sensitive" in r or "never open" in r for r in reasons):
        return "deny"
    return "allow" if any(word in r for r in reasons for word in ALLOWING) else None


def _reasons(bench: Harness, user: User, buyer: User | None, asked: Question) -> list[str]:
    out: list[str] = []
    if buyer is not None:
        out += _impersonation(bench, user, buyer)
        if out[0].startswith("no:"):
            return [out[0][4:], "the page is not asked: the impersonation ends first"]
    if asked.kind == "admin":
        return out + _admin(bench, user, buyer, asked)
    page = bench.settings.pages[asked.name]
    if page.public:
        return [*out, f"page {page.name} is public: no login and no policy question"]
    if buyer is None or asked.name == "select_user":
        return out + _own_grants(bench, user, asked)
    return out + _acting(bench, user, buyer, asked)


def _impersonation(bench: Harness, user: User, buyer: User) -> list[str]:
    decision = bench.engine.impersonation(Actor(user), buyer, bench.directory)
    if decision.allowed:
        return [f"{user.username} may still act for {buyer.username}: "
                f"allow_impersonation holds{source(bench, 'allow_impersonation(')}"]
    refusal = clause(bench, 'why = "' + decision.reason + '"')
    return [f'no: {user.username} may not act for {buyer.username}: impersonation_refused '
            f'gives "{decision.reason}": {refusal}']


def _own_grants(bench: Harness, user: User, asked: Question) -> list[str]:
    found = grants(bench, "grant", user, asked.action, asked.name)
    if found:
        return [f"{user.username} acts as themselves: allow_page -> page_access(false, ...)"
                f"{source(bench, 'page_access(false')}", *found]
    return [f'no grant(group, "{asked.name}", "{asked.action}") or grant(group, '
            f'"{asked.name}", "*") for any of {user.username}\'s groups '
            f"({', '.join(user.groups) or 'none'}): denied by default"]


def _acting(bench: Harness, user: User, buyer: User, asked: Question) -> list[str]:
    out = [f"acting for a buyer: allow_page -> page_access(true, ...)"
           f"{source(bench, 'page_access(true')}"]
    if bench.settings.pages[asked.name].sensitive:
        return [*out, f"page {asked.name} is sensitive, and the acting rule requires "
                      f"page.sensitive = false{source(bench, 'page.sensitive = false')}: "
                      "never while a CSR acts for a buyer"]
    theirs = grants(bench, "grant", buyer, asked.action, asked.name)
    out += [f"buyer side: {g}" for g in theirs] or [
        f"buyer side: no grant for {buyer.username}'s groups on {asked.name}: denied"]
    own = grants(bench, "grant", user, asked.action, asked.name) + grants(
        bench, "acting_grant", user, asked.action, asked.name)
    out += [f"CSR side: {g}" for g in own] or [
        f"CSR side: no grant or acting_grant for {user.username}'s groups on "
        f"{asked.name}: denied"]
    return out


def _admin(bench: Harness, user: User, buyer: User | None, asked: Question) -> list[str]:
    if buyer is not None:
        return ["the admin area is never open while acting for a buyer: allow_admin "
                f"requires actor.impersonating = false{source(bench, 'allow_admin(')}"]
    found = [f'admin_group("{g}") matched via group {g}{source(bench, "admin_group(")}'
             for g in user.groups if policy.ask(bench.engine, "admin_group", g)]
    actor = polar_actor(Actor(user), bench.directory)
    if not found and policy.ask(bench.engine, policy.ADMIN_RULE, actor, asked.action,
                                AdminResource(asked.name)):
        rule = f'allow_admin(actor, "{asked.action}"'
        found = [f"{asked.action} on {asked.name}: {clause(bench, rule)}"]
    return found or [f"no allow_admin rule holds for {user.username}'s groups "
                     f"({', '.join(user.groups) or 'none'}): denied by default"]


def grants(bench: Harness, fact: str, user: User, action: str, page: str) -> list[str]:
    """The facts, e.g. grant("CSR", "reports", "view"), that give this user the action."""
    found = []
    for group in user.groups:
        for wanted in dict.fromkeys((action, "*")):
            if policy.ask(bench.engine, fact, group, page, wanted):
                text = f'{fact}("{group}", "{page}", "{wanted}")'
                found.append(f"{text} matched via group {group}{source(bench, text)}")
    return found


def source(bench: Harness, needle: str) -> str:
    """' (file:line)' of the first policy line containing `needle`, or ''."""
    for path in bench.engine.current.files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if needle in line and not line.lstrip().startswith("#"):
                return f" ({_short(path)}:{number})"
    return ""


def clause(bench: Harness, needle: str) -> str:
    """The policy text from the line containing `needle` to the end of its clause, on one
    line, with its place: the rule in the author's own words."""
    for path in bench.engine.current.files:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if needle in line and not line.lstrip().startswith("#"):
                text = []
                for part in lines[number - 1:]:
                    part = part.split("#", 1)[0].strip()
                    if part.endswith(" or"):  # one alternative of several: just this one
                        text.append(part[:-3])
                        break
                    text.append(part)
                    if part.endswith(";"):
                        break
                return f"{' '.join(text)} ({_short(path)}:{number})"
    return f"(no policy line contains {needle})"


def _short(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _trace(bench: Harness, user: User, buyer: User | None, asked: Question) -> list[str]:
    if buyer is not None:
        holds, lines = policy.traced(bench.engine, policy.IMPERSONATION_RULE,
                                     polar_actor(Actor(user), bench.directory),
                                     PolarUser(buyer, bench.directory))
        if not holds:
            return lines
    actor = Actor(user, None if asked.name == "select_user" else buyer)
    if asked.kind == "admin":
        return policy.traced(bench.engine, policy.ADMIN_RULE, polar_actor(actor, bench.directory),
                             asked.action, AdminResource(asked.name))[1]
    page = PolarPage(bench.settings.pages[asked.name])
    return policy.traced(bench.engine, policy.PAGE_RULE, polar_actor(actor, bench.directory),
                         asked.action, page)[1]


__all__ = ["explain", "grants", "source"]
