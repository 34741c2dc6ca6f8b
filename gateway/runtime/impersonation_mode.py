"""Read-only impersonation: which requests it refuses, and the switch to write or read mode."""

from __future__ import annotations

import dataclasses

from gateway.core.domain import Actor, Impersonation
from gateway.core.errors import BadRequest, Forbidden, GatewayError
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.impersonation import as_self, emit
from gateway.sessions.store import Session, update

READ, WRITE = "read", "write"
MODES = (READ, WRITE)


class ReadOnlyImpersonation(GatewayError):
    """A state-changing request while acting read-only: nothing is forwarded."""

    status = 403
    reason = "read_only_impersonation"
    public = "You are acting for this buyer in read-only mode."


def refused(actor: Actor | None, state_changing: bool | None) -> bool:
    """Is this request a write while the actor acts read-only for a buyer?"""
    if actor is None or actor.acting_as is None or actor.impersonation is None:
        return False
    return bool(state_changing) and actor.impersonation.mode == READ


def requested_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in MODES:
        raise BadRequest("bad_request", "mode must be read or write.",
                         detail=f"mode {text[:20]!r}")
    return mode


async def switch(gw: Gateway, ctx: RequestContext, actor: Actor, mode: str,
                 reason: str) -> Impersonation:
    """Change the running impersonation's mode: write only if `allow_write` says so (and
    with a reason when reasons are required), read always; audited either way."""
    session, imp = ctx.session, actor.impersonation
    assert session is not None and imp is not None and actor.acting_as is not None
    buyer = actor.acting_as
    if mode == WRITE and imp.mode != WRITE:
        refused = _write_refusal(gw, actor, reason)
        if refused is not None:
            ctx.deny(refused.reason, gw.policy.rev)
            _audit(gw, ctx, imp, buyer.company, mode, reason, refused.reason)
            raise refused
    changed = dataclasses.replace(imp, mode=mode)

    def switched(current: Session) -> Session:
        if current.impersonation is None or current.impersonation.id != imp.id:
            raise Forbidden("impersonation_ended", "Your session as this buyer has ended.")
        return dataclasses.replace(current, impersonation=dataclasses.replace(
            current.impersonation, mode=mode))

    # over any newer copy of the session, so a parallel request cannot undo the switch
    updated = await update(gw.sessions, session, switched)
    if updated is None:
        raise Forbidden("impersonation_ended", "Your session as this buyer has ended.")
    ctx.session = updated
    ctx.actor = dataclasses.replace(actor, impersonation=changed)
    ctx.allow(gw.policy.rev)
    _audit(gw, ctx, changed, buyer.company, mode, reason, "ok", previous=imp.mode)
    return changed


def _write_refusal(gw: Gateway, actor: Actor, reason: str) -> GatewayError | None:
    assert actor.acting_as is not None
    if gw.settings.impersonation.reason_required and not reason:
        return BadRequest("reason_required", "A reason is required to switch to write mode.")
    decision = gw.policy.allow_write(as_self(actor), actor.acting_as, gw.directory.snapshot)
    if decision.allowed:
        return None
    return Forbidden(decision.reason, "You may not switch to write mode for this buyer.")


def _audit(gw: Gateway, ctx: RequestContext, imp: Impersonation, company: str | None,
           mode: str, reason: str, outcome: str, previous: str | None = None) -> None:
    """One `impersonation_mode` line: the mode asked for, the one before, and why."""
    emit(gw, ctx, "impersonation_mode", imp, reason=outcome, company=company,
         detail=f"{previous or imp.mode} -> {mode}" if outcome == "ok"
         else f"{mode} refused", proof={"mode": mode, "mode_reason": reason or None})
    gw.metrics.impersonations.labels("impersonation_mode").inc()
