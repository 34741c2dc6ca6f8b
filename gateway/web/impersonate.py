"""Starting an impersonation from a form: the checks made again at the start, and the start."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway.core.domain import Actor, User
from gateway.core.errors import BadRequest, Forbidden
from gateway.runtime import impersonation
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.mfa import has_second_factor
from gateway.runtime.responses import safe_next, see_other
from gateway.sessions.store import Session
from gateway.web import approvals

SELECT_USER = "/_gateway/select-user"


REASON_MAX = 200


def require_page(gw: Gateway, ctx: RequestContext, actor: Actor, action: str) -> None:
    """The Select User page is granted per group like any page."""
    page = gw.settings.pages.get("select_user")
    if page is None:
        raise Forbidden("policy_denied")
    ctx.page, ctx.action = page.name, action
    decision = gw.policy.page(impersonation.as_self(actor), action, page,
                              gw.directory.snapshot)
    if not decision.allowed:
        ctx.deny(decision.reason, decision.policy_rev)
        raise Forbidden(decision.reason)
    ctx.allow(decision.policy_rev)


def clean_reason(text: str) -> str:
    """One printable line: the reason goes into audit lines, the JWT and the banner."""
    printable = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(printable.split())[:REASON_MAX]


def check_start(gw: Gateway, ctx: RequestContext, actor: Actor, buyer_name: str,
                 reason: str) -> User:
    buyer = gw.directory.snapshot.user(buyer_name)
    why = refusal(gw, actor, buyer, reason)
    if why is None:
        try:
            require_page(gw, ctx, actor, "submit")
        except Forbidden as err:
            why = err.reason
    if why is not None:
        denied(gw, ctx, actor, buyer_name, buyer, why, reason)
    assert buyer is not None
    return buyer


def needs_second_factor(gw: Gateway, actor: Actor, buyer: User, session: Session) -> bool:
    """The policy asks for a second factor for this buyer and the session has none."""
    return gw.policy.requires_mfa(actor, buyer, gw.directory.snapshot) \
        and not has_second_factor(gw, session)


async def begin(request: web.Request, gw: Gateway, ctx: RequestContext, actor: Actor,
                buyer_name: str, reason: str, back: str) -> web.StreamResponse:
    """Start acting as the buyer, every rule asked again (a step-up may have taken minutes,
    and a password alone never satisfies a start that needs a second factor); a running
    impersonation ends first (a switch), only once the new start is allowed."""
    assert ctx.session is not None
    me = impersonation.as_self(actor)
    reason = clean_reason(reason)
    buyer = check_start(gw, ctx, me, buyer_name, reason)
    if needs_second_factor(gw, me, buyer, ctx.session):
        denied(gw, ctx, me, buyer_name, buyer, "mfa_required", reason)
    ctx.page, ctx.action, ctx.state_changing = "select_user", "submit", True
    waiting = await approvals.admit(request, gw, ctx, me, buyer, reason)
    if waiting is not None:  # a running impersonation goes on until the approval
        return waiting
    session = ctx.session
    if session.impersonation is not None:
        restored = await impersonation.end(gw, ctx, session, event="impersonation_stop",
                                           reason="ok")
        assert restored is not None
        session = restored
    await impersonation.start(gw, ctx, session, buyer, reason,
                              return_target(back, SELECT_USER))
    ctx.actor = dataclasses.replace(me, acting_as=buyer,
                                    impersonation=ctx.session.impersonation)
    return see_other("/")


def refusal(gw: Gateway, actor: Actor, buyer: User | None, reason: str) -> str | None:
    if buyer is None:
        return "unknown_buyer"
    if gw.settings.impersonation.reason_required and not reason:
        return "reason_required"
    decision = gw.policy.impersonation(actor, buyer, gw.directory.snapshot)
    return None if decision.allowed else decision.reason


def denied(gw: Gateway, ctx: RequestContext, actor: Actor, name: str, buyer: User | None,
            why: str, reason: str) -> None:
    ctx.deny(why, gw.policy.rev)
    gw.audit.emit("impersonation_denied", request_id=ctx.request_id, user=name or None,
                  actor=actor.user.username, csr=actor.user.username,
                  company=buyer.company if buyer else None, method=ctx.method, path=ctx.path,
                  decision="deny", reason=why, status=400 if why == "reason_required" else 403,
                  client_ip=ctx.client_ip, policy_rev=gw.policy.rev,
                  impersonation_reason=reason or None)
    gw.metrics.impersonations.labels("impersonation_denied").inc()
    if why == "reason_required":
        raise BadRequest("reason_required", "A reason or ticket is required to log in as a buyer.")
    if why == "mfa_required":
        raise Forbidden(why, "Acting as this buyer needs multi-factor sign-in.")
    raise Forbidden(why, "You may not log in as this buyer.")


def return_target(target: str | None, default: str) -> str:
    """A local page to GET afterwards: never another site, never a gateway action."""
    path = safe_next(target, default)
    if path.startswith("/_gateway") and path.split("?")[0] not in (SELECT_USER,
                                                                   "/_gateway/account"):
        return default
    return path
