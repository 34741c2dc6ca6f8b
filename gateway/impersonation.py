"""Impersonation stage: start, stop, and the per-request re-check that ends it when it lapses."""

from __future__ import annotations

import dataclasses
import secrets
import time

from aiohttp import web

from gateway.context import RequestContext
from gateway.domain import Actor, Impersonation, User
from gateway.errors import GatewayError
from gateway.sessions import Session, new_session
from gateway.state import Gateway


class ImpersonationEnded(GatewayError):
    """The running impersonation lapsed: nothing is forwarded as the buyer."""

    status = 403
    reason = "impersonation_ended"
    public = "Your session as this buyer has ended."


def lapse_reason(gw: Gateway, actor: Actor) -> str | None:
    """Why the running impersonation may not go on (None: it may)."""
    imp = actor.impersonation
    if imp is None:
        return None
    if actor.acting_as is None:
        return "buyer_removed"
    if time.time() - imp.started_at > gw.settings.impersonation.max_minutes * 60:
        return "impersonation_expired"
    decision = gw.policy.impersonation(dataclasses.replace(actor, acting_as=None,
                                                           impersonation=None),
                                       actor.acting_as, gw.directory.snapshot)
    return None if decision.allowed else decision.reason


async def recheck(gw: Gateway, ctx: RequestContext, actor: Actor) -> Actor:
    """End a lapsed impersonation (audited) and refuse the request that found it."""
    why = lapse_reason(gw, actor)
    if why is None:
        return actor
    assert ctx.session is not None and actor.impersonation is not None
    await end(gw, ctx, ctx.session, event="impersonation_end", reason=why)
    raise ImpersonationEnded(why, detail=f"{actor.impersonation.buyer}: {why}")


async def end(gw: Gateway, ctx: RequestContext, session: Session, *, event: str,
              reason: str) -> Session:
    """Back to the CSR's own identity, in a new session id; one audit event."""
    imp = session.impersonation
    restored = dataclasses.replace(
        new_session(session.username, session.idle_minutes, ctx.client_ip),
        created=session.created)
    await gw.sessions.save(restored)
    await gw.sessions.delete(session.id)
    ctx.session = ctx.switched_session = restored
    if imp is not None:
        buyer = gw.directory.snapshot.user(imp.buyer)
        company = buyer.company if buyer else None
        emit(gw, ctx, event, imp, reason=reason, company=company)
        gw.metrics.impersonations.labels(event).inc()
        if gw.notifier is not None:
            gw.notifier.finished(imp, company, reason, gw.client)
    return restored


async def start(gw: Gateway, ctx: RequestContext, session: Session, buyer: User,
                reason: str, return_to: str) -> Session:
    imp = Impersonation(id=secrets.token_hex(8), csr=session.username, buyer=buyer.username,
                        reason=reason, started_at=time.time(), return_to=return_to)
    rotated = new_session(session.username, session.idle_minutes, ctx.client_ip, imp)
    rotated = dataclasses.replace(rotated, created=session.created)
    await gw.sessions.save(rotated)
    await gw.sessions.delete(session.id)
    ctx.session = ctx.switched_session = rotated
    emit(gw, ctx, "impersonation_start", imp, reason="ok", company=buyer.company)
    gw.metrics.impersonations.labels("impersonation_start").inc()
    return rotated


def emit(gw: Gateway, ctx: RequestContext, event: str, imp: Impersonation, *,
         reason: str, company: str | None) -> None:
    gw.audit.emit(event, request_id=ctx.request_id, user=imp.buyer, actor=imp.csr,
                  csr=imp.csr, company=company, method=ctx.method, path=ctx.path,
                  decision="allow" if reason == "ok" else "deny", reason=reason,
                  client_ip=ctx.client_ip, policy_rev=gw.policy.rev,
                  impersonation_id=imp.id, impersonation_reason=imp.reason,
                  detail=f"{imp.csr} acting as {imp.buyer}")


def set_session_cookie(response: web.StreamResponse, gw: Gateway, session: Session) -> None:
    cfg = gw.settings.sessions
    response.set_cookie(cfg.cookie_name, session.id, httponly=True, samesite="Lax",
                        secure=cfg.secure_cookie, path="/")


def clear_upstream_cookies(response: web.StreamResponse, gw: Gateway) -> None:
    """On every identity switch the shop's own session starts afresh (no mixed carts)."""
    for name in gw.settings.upstream.session_cookies:
        response.del_cookie(name, path="/")
