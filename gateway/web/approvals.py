"""The CSR's side of a start: volume limits, then four-eyes approval, then the pending page.

`admit` runs before every start (Select User, the banner's switch, after a step-up): a
passed `block` limit refuses it; a buyer the policy guards with `requires_approval` needs
an approval of another person, which the start uses up (once, within its time). Without
one the start files a request and answers with the page that waits for the decision.
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway.core.domain import Actor, User
from gateway.core.errors import Forbidden, NotFound
from gateway.pipeline.authn import authenticate
from gateway.runtime import approvals
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.impersonation import as_self
from gateway.runtime.responses import render, see_other, wants_json

PENDING_PAGE = "/_gateway/impersonate/pending/"


async def admit(request: web.Request, gw: Gateway, ctx: RequestContext, actor: Actor,
                buyer: User, reason: str) -> web.StreamResponse | None:
    """None: the start may go ahead. Else the answer that says it waits for an approval."""
    me = as_self(actor)
    if gw.limits is not None:
        try:
            await gw.limits.check_start(gw, ctx, me.user.username, buyer)
        except Forbidden as err:
            _refused(gw, ctx, me, buyer, err.reason, reason)
            raise
    if not gw.policy.requires_approval(me, buyer, gw.directory.snapshot):
        return None
    await approvals.expire_due(gw, ctx)
    used = await approvals.store(gw).use(me.user.username, buyer.username, reason)
    if used is not None:
        ctx.extra.update(approval_id=used.id, approver=used.approver)
        return None
    approval, new = await approvals.store(gw).file(me.user.username, buyer.username,
                                                   buyer.company, reason)
    if new:
        approvals.announce(gw, ctx, "approval_requested", approval)
    ctx.allow(gw.policy.rev)
    ctx.reason = "approval_pending"
    ctx.extra.update(approval_id=approval.id)
    if request.content_type == "application/json":
        return web.json_response({"status": "pending", "request": approval.id}, status=202,
                                 headers={"Cache-Control": "no-store"})
    return see_other(PENDING_PAGE + approval.id)


def _refused(gw: Gateway, ctx: RequestContext, me: Actor, buyer: User, why: str,
             reason: str) -> None:
    ctx.deny(why, gw.policy.rev)
    gw.audit.emit("impersonation_denied", request_id=ctx.request_id, user=buyer.username,
                  actor=me.user.username, csr=me.user.username, company=buyer.company,
                  method=ctx.method, path=ctx.path, decision="deny", reason=why, status=403,
                  client_ip=ctx.client_ip, policy_rev=gw.policy.rev,
                  impersonation_reason=reason or None)
    gw.metrics.impersonations.labels("impersonation_denied").inc()


async def pending(request: web.Request) -> web.StreamResponse:
    """The requester's own request: its state, and once approved the button that starts."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor = await authenticate(request, gw, ctx)
    assert actor is not None
    ctx.page, ctx.action = "select_user", "view"
    await approvals.expire_due(gw, ctx)
    found = await approvals.store(gw).get(request.match_info["id"])
    if found is None or found.requester != actor.user.username:
        ctx.deny("no_such_request", gw.policy.rev)
        raise NotFound("no_such_request", "There is no such request of yours.")
    ctx.allow(gw.policy.rev)
    ctx.extra.update(approval_id=found.id)
    if wants_json(request):
        return web.json_response(found.public(), headers={"Cache-Control": "no-store"})
    snapshot = gw.directory.snapshot
    buyer, approver = snapshot.user(found.buyer), snapshot.user(found.approver or "")
    return render(request, "approval_pending.html", approval=found,
                  buyer_name=buyer.display_name if buyer else found.buyer,
                  approver_name=approver.display_name if approver else found.approver,
                  company_name=snapshot.company_name(found.company),
                  until=time.strftime("%H:%M UTC", time.gmtime(found.expires_at)))


def add_routes(app: web.Application) -> None:
    app.router.add_get(PENDING_PAGE + "{id}", pending)
