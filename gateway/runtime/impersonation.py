"""Impersonation stage: start, stop, and the per-request re-check that ends it when it lapses."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.audit.records import ImpersonationEvent, Proof
from gateway.core.domain import Actor, Impersonation, User
from gateway.core.errors import GatewayError
from gateway.core.i18n import N_, gettext
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.sessions.store import Session, rotated

log = logging.getLogger("csr_gateway")
SWEEP_SECONDS = 30.0
SWEEP_GRACE = 60.0  # a session used this recently is left to its own next request

# What the CSR reads when the re-check ends an impersonation (the audit keeps the code).
ENDED_BECAUSE = {
    "impersonation_expired": N_("The time limit for acting as a buyer is up."),
    "not_assigned": N_("The buyer's company is no longer assigned to you."),
    "not_impersonator": N_("You are no longer allowed to log in as buyers."),
    "buyer_inactive": N_("The buyer's account has been deactivated."),
    "buyer_removed": N_("The buyer's account no longer exists."),
    "company_no_impersonation": N_("The buyer's company no longer allows impersonation."),
    "no_consent": N_("The buyer no longer allows assistance."),
}


class ImpersonationEnded(GatewayError):
    """The running impersonation lapsed: nothing is forwarded as the buyer."""

    status = 403
    reason = "impersonation_ended"
    public = N_("Your session as this buyer has ended.")


def lapse_reason(gw: Gateway, actor: Actor) -> str | None:
    """Why the running impersonation may not go on (None: it may)."""
    imp = actor.impersonation
    if imp is None:
        return None
    if actor.acting_as is None:
        return "buyer_removed"
    if time.time() - imp.started_at > gw.settings.impersonation.max_minutes * 60:
        return "impersonation_expired"
    decision = gw.policy.impersonation(as_self(actor), actor.acting_as, gw.directory.snapshot)
    return None if decision.allowed else decision.reason


def as_self(actor: Actor) -> Actor:
    return actor.alone()


async def recheck(gw: Gateway, ctx: RequestContext, actor: Actor) -> Actor:
    """End a lapsed impersonation (audited) and refuse the request that found it."""
    why = lapse_reason(gw, actor)
    if why is None:
        return actor
    imp = actor.impersonation
    assert ctx.session is not None and imp is not None
    ctx.extra.update(  # the refused request's line stays the impersonated one
        user=imp.buyer, actor=imp.csr, csr=imp.csr, impersonation_id=imp.id,
        company=actor.acting_as.company if actor.acting_as else None,
        impersonation_reason=imp.reason)
    await end(gw, ctx, ctx.session, event="impersonation_end", reason=why)
    ctx.actor = as_self(actor)  # the page that says so is the CSR's own
    public = gettext(ENDED_BECAUSE.get(why, ImpersonationEnded.public))
    again = gettext("You are yourself again.")
    raise ImpersonationEnded(why, f"{public} {again}",
                             detail=f"{imp.buyer}: {why}")


async def end(gw: Gateway, ctx: RequestContext, session: Session, *, event: ImpersonationEvent,
              reason: str) -> Session | None:
    """Stop acting for the buyer; the end is audited once, however many paths race to it.

    The request's own session is replaced by a new id for the CSR (the response sets the
    cookie). Any other session (the admin kill switch) is deleted: its browser cannot get
    a new cookie, so its CSR logs in again.
    """
    imp = session.impersonation
    restored = None
    if ctx.session is not None and ctx.session.id == session.id:
        restored = rotated(session, ctx.client_ip)
        await gw.sessions.save(restored)
        ctx.session = ctx.switched_session = restored
    await gw.sessions.delete(session.id)
    if imp is not None:
        await record_end(gw, ctx, imp, event=event, reason=reason)
    return restored


async def record_end(gw: Gateway, ctx: RequestContext | None, imp: Impersonation, *,
                     event: ImpersonationEvent, reason: str, detail: str | None = None) -> bool:
    """The end of an impersonation, written once (False: someone already did) and reported
    to the customer. For every path that ends one: stop, re-check, logout, idle expiry,
    the sweeper, the kill switch."""
    buyer = gw.directory.snapshot.user(imp.buyer)
    company = buyer.company if buyer else None
    if gw.notifier is not None and not await gw.notifier.ended(imp, company, reason,
                                                               gw.client):
        return False
    emit(gw, ctx, event, imp, reason=reason, company=company, detail=detail)
    gw.metrics.impersonations.labels(event).inc()
    return True


async def start(gw: Gateway, ctx: RequestContext, session: Session, buyer: User,
                reason: str, return_to: str) -> Session:
    """Act as the buyer from now on, in a new session id (no fixation across identities)."""
    imp = Impersonation(id=secrets.token_hex(8), csr=session.username, buyer=buyer.username,
                        reason=reason, started_at=time.time(), return_to=return_to,
                        mode=gw.settings.impersonation.default_mode)
    acting = rotated(session, ctx.client_ip, imp)
    await gw.sessions.save(acting)
    await gw.sessions.delete(session.id)
    ctx.session = ctx.switched_session = acting
    emit(gw, ctx, "impersonation_start", imp, reason="ok", company=buyer.company,
         proof=proof_fields(session))
    gw.metrics.impersonations.labels("impersonation_start").inc()
    if gw.limits is not None:
        await gw.limits.started(gw, ctx, imp)
    if gw.notifier is not None:
        gw.notifier.started(imp, buyer.company, gw.client)
    return acting


def proof_fields(session: Session) -> Proof:
    """How the CSR authenticated, for audit lines and the assertion."""
    return {"auth_method": session.auth_method, "amr": list(session.amr) or None,
            "acr": session.acr or None,
            "auth_time": int(session.auth_time) if session.auth_time else None}


def emit(gw: Gateway, ctx: RequestContext | None, event: ImpersonationEvent, imp: Impersonation, *,
         reason: str, company: str | None, detail: str | None = None,
         proof: Mapping[str, Any] | None = None) -> None:
    """One impersonation event line (ctx None: the sweeper, outside any request); `proof`:
    how the CSR authenticated, or the mode asked for (keys of the event's record)."""
    gw.audit.emit(event, **(proof or {}), request_id=ctx.request_id if ctx else None,
                  user=imp.buyer, actor=imp.csr, csr=imp.csr, company=company,
                  method=ctx.method if ctx else None, path=ctx.path if ctx else None,
                  decision="allow" if reason == "ok" else "deny", reason=reason,
                  client_ip=ctx.client_ip if ctx else None, policy_rev=gw.policy.rev,
                  impersonation_id=imp.id, impersonation_reason=imp.reason,
                  impersonation_mode=imp.mode, detail=detail or f"{imp.csr} acting as {imp.buyer}")


def abandoned(gw: Gateway, session: Session, now: float) -> str | None:
    """Why the sweeper may end this session's impersonation (None: leave it alone)."""
    imp = session.impersonation
    if imp is None:
        return None
    if session.idle_expired(now):
        return "session_expired"
    over = now - imp.started_at > gw.settings.impersonation.max_minutes * 60
    if over and now - session.last_seen > SWEEP_GRACE:
        return "impersonation_expired"
    return None


async def sweep(gw: Gateway, now: float | None = None) -> int:
    """End the impersonations nobody comes back to (closed tab, idle CSR): audited and
    reported like any other end. An idle-expired session is deleted; one only past its
    time limit stays, and its next request (refused by the re-check) switches the CSR back
    without a second audit line."""
    now = time.time() if now is None else now
    ended = 0
    for session in await gw.sessions.all():
        why = abandoned(gw, session, now)
        if why is None or session.impersonation is None:
            continue
        if why == "session_expired":
            await gw.sessions.delete(session.id)
        ended += await record_end(gw, None, session.impersonation, event="impersonation_end",
                                reason=why, detail="ended by the sweeper")
    return ended


async def sweeper(gw: Gateway, every: float = SWEEP_SECONDS) -> None:
    """Background task (app cleanup_ctx): sweep, forever; approval requests past their time
    are expired (and audited) here too, not only when someone next looks at them."""
    from gateway.runtime import approvals  # its store is the directory's; here for the sweep

    while True:
        await asyncio.sleep(every)
        try:
            await sweep(gw)
            await approvals.expire_due(gw, None)
        except Exception:
            log.exception("impersonation sweep failed; trying again in %.0f s", every)


def set_session_cookie(response: web.StreamResponse, gw: Gateway, session: Session) -> None:
    cfg = gw.settings.sessions
    response.set_cookie(cfg.cookie_name, session.id, httponly=True, samesite="Lax",
                        secure=cfg.secure_cookie, path="/")


def clear_upstream_cookies(response: web.StreamResponse, gw: Gateway) -> None:
    """On every identity switch the shop's own session starts afresh (no mixed carts)."""
    for name in gw.settings.upstream.session_cookies:
        response.del_cookie(name, path="/")


async def expire(gw: Gateway, ctx: RequestContext, session: Session, why: str) -> None:
    """A dead session (idle, too old, its account gone or inactive) is deleted, and an
    impersonation running in it ends with it: audited once, whoever else gets there."""
    await gw.sessions.delete(session.id)
    gw.audit.emit("session_expired", user=session.username, actor=session.username,
                  reason=why, client_ip=ctx.client_ip, request_id=ctx.request_id)
    if session.impersonation is not None:
        await record_end(gw, ctx, session.impersonation,
                                     event="impersonation_end", reason=why)
