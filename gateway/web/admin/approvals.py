"""The approvers' side of four-eyes approval: the queue (HTML and JSON) and the decisions.

Who may open the queue is the policy's `allow_admin` on the `approvals` area; which
requests one may decide is `may_approve`; nobody decides their own request, whatever the
policy says.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.core.domain import Actor
from gateway.core.errors import BadRequest, Forbidden, GatewayError, NotFound
from gateway.runtime import approvals
from gateway.runtime.approvals import PENDING, Approval
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.impersonation import as_self
from gateway.runtime.responses import render
from gateway.web.admin.guard import admit
from gateway.web.forms import read_fields

DECISIONS = {"approve": True, "deny": False}


class ApprovalClosed(GatewayError):
    status = 409
    reason = "approval_closed"
    public = "This request was already decided or has expired."


def may_decide(gw: Gateway, actor: Actor, approval: Approval) -> str | None:
    """Why this person may not decide this request (None: they may)."""
    if approval.requester == actor.user.username:
        return "self_approval"
    snapshot = gw.directory.snapshot
    requester, buyer = snapshot.user(approval.requester), snapshot.user(approval.buyer)
    if requester is None or buyer is None or not gw.policy.may_approve(
            as_self(actor), requester, buyer, approval.reason, snapshot):
        return "not_approver"
    return None


async def decide(gw: Gateway, ctx: RequestContext, actor: Actor, request_id: str,
                 decision: str) -> Approval:
    """Approve or deny one pending request, audited; refusals name their reason."""
    if decision not in DECISIONS:
        ctx.deny("bad_request")
        raise BadRequest("bad_request", "The decision is approve or deny.")
    await approvals.expire_due(gw, ctx)
    found = await approvals.store(gw).get(request_id)
    if found is None:
        ctx.deny("no_such_request")
        raise NotFound("no_such_request", "There is no such request.")
    ctx.extra.update(approval_id=found.id)
    why = may_decide(gw, actor, found)
    if why is not None:
        ctx.deny(why, gw.policy.rev)
        raise Forbidden(why)
    decided = None
    if found.status == PENDING:
        decided = await approvals.store(gw).decide(found.id, actor.user.username,
                                                   DECISIONS[decision])
    if decided is None:  # decided or expired meanwhile, perhaps on another worker
        ctx.deny("approval_closed", gw.policy.rev)
        raise ApprovalClosed()
    approvals.announce(gw, ctx, approvals.EVENTS[decided.status], decided,
                       approver=actor.user.username)
    return decided


async def queue(gw: Gateway, ctx: RequestContext, actor: Actor) -> list[Approval]:
    """The pending requests this person may decide, oldest first."""
    await approvals.expire_due(gw, ctx)
    return [a for a in await approvals.store(gw).pending() if may_decide(gw, actor, a) is None]


def described(gw: Gateway, approval: Approval) -> dict[str, Any]:
    snapshot = gw.directory.snapshot
    requester, buyer = snapshot.user(approval.requester), snapshot.user(approval.buyer)
    return {**approval.public(),
            "requester_name": requester.display_name if requester else approval.requester,
            "buyer_name": buyer.display_name if buyer else approval.buyer,
            "company_name": snapshot.company_name(approval.company),
            "waiting_since": when(approval.created_at)}


def when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


async def page(request: web.Request) -> web.StreamResponse:
    """/_gateway/admin/approvals: the queue, with Approve and Deny buttons (CSRF-checked)."""
    fields = await read_fields(request) if request.method == "POST" else {}
    gw, actor = await admit(request, "approvals", fields)
    ctx = request[CTX]
    done = None
    if request.method == "POST":
        done = await decide(gw, ctx, actor, fields.get("request", ""),
                            fields.get("decision", ""))
    rows = [described(gw, a) for a in await queue(gw, ctx, actor)]
    return render(request, "admin/approvals.html", rows=rows,
                  done=described(gw, done) if done else None,
                  minutes=gw.settings.impersonation.approval_minutes)


async def list_api(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "approvals")
    rows = [described(gw, a) for a in await queue(gw, request[CTX], actor)]
    return web.json_response({"approvals": rows}, headers={"Cache-Control": "no-store"})


async def decide_api(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "approvals")
    decided = await decide(gw, request[CTX], actor, request.match_info["id"],
                           request.match_info["decision"])
    return web.json_response(described(gw, decided), headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_gateway/admin/approvals", page)
    r.add_post("/_gateway/admin/approvals", page)
    r.add_get("/_gateway/api/approvals", list_api)
    r.add_post("/_gateway/api/approvals/{id}/{decision}", decide_api)
