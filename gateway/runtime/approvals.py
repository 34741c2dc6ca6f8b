"""Four-eyes approval as the gateway lives it: each change of a request audited and told.

The requests themselves are the directory's (directory/approvals.py).
"""

from __future__ import annotations

import time

from gateway.audit.records import ApprovalEventName
from gateway.directory.approvals import (
    APPROVED,
    DENIED,
    EXPIRED,
    PENDING,
    USED,
    Approval,
    Approvals,
)
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway

EVENTS: dict[str, ApprovalEventName] = {APPROVED: "approval_granted", DENIED: "approval_denied",
                                         EXPIRED: "approval_expired"}


def store(gw: Gateway) -> Approvals:
    return Approvals(gw.directory.sessions, gw.settings.impersonation.approval_minutes)


def announce(gw: Gateway, ctx: RequestContext | None, event: ApprovalEventName,
             approval: Approval, *,
             approver: str | None = None) -> None:
    """One audit line for a request's change of state, and the webhook told of it."""
    actor = approver or approval.requester
    gw.audit.emit(event, request_id=ctx.request_id if ctx else None, user=approval.buyer,
                  actor=actor, csr=approval.requester, company=approval.company,
                  method=ctx.method if ctx else None, path=ctx.path if ctx else None,
                  decision="deny" if event in ("approval_denied", "approval_expired")
                  else "allow", reason="ok", client_ip=ctx.client_ip if ctx else None,
                  policy_rev=gw.policy.rev, impersonation_reason=approval.reason,
                  approval_id=approval.id, approver=approver,
                  detail=f"{approval.requester} for {approval.buyer}")
    gw.metrics.approvals.labels(event).inc()
    if gw.notifier is not None:
        gw.notifier.tell({"event": event, "id": f"approval-{approval.id}-{event}",
                          "request": approval.id, "csr": approval.requester,
                          "customer": approval.buyer, "company": approval.company,
                          "reason": approval.reason, "approver": approver,
                          "at": round(time.time(), 3)}, gw.client)


async def expire_due(gw: Gateway, ctx: RequestContext | None) -> None:
    """Requests past their time are expired, each audited once by whoever sees it first."""
    for approval in await store(gw).lapse():
        announce(gw, ctx, "approval_expired", approval, approver=approval.approver)


__all__ = [
    "APPROVED",
    "DENIED",
    "EVENTS",
    "EXPIRED",
    "PENDING",
    "USED",
    "Approval",
    "Approvals",
    "announce",
    "expire_due",
    "store",
]
