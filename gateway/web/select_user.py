"""Select User and "log in as buyer": the CSR's way in and out of a buyer's identity."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from gateway.core.domain import CUSTOMER, PROSPECT, Actor, Company, User
from gateway.core.i18n import N_
from gateway.pipeline.authn import authenticate
from gateway.runtime import impersonation
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.responses import render, see_other
from gateway.web import stepup
from gateway.web.forms import signed_in_post
from gateway.web.impersonate import (
    SELECT_USER,
    begin,
    check_start,
    clean_reason,
    needs_second_factor,
    require_page,
    return_target,
)

PAGE_SIZE = 50
# Why a listed buyer cannot be picked, in the CSR's words (the policy's reason codes).
NOT_SELECTABLE = {
    "not_customer": N_("Prospect: not a customer yet"),
    "buyer_inactive": N_("Account inactive"),
    "buyer_is_privileged": N_("Staff account"),
    "company_no_impersonation": N_("Company does not allow impersonation"),
    "no_consent": N_("Has not allowed assistance"),
    "not_assigned": N_("Company not assigned to you"),
}
KINDS = {"customer": N_("customer"), "prospect": N_("prospect"), "staff": N_("staff")}


def assigned_companies(gw: Gateway, user: User) -> list[Company]:
    companies = gw.directory.snapshot.companies
    return sorted((companies[c] for c in user.assigned_companies if c in companies),
                  key=lambda c: c.name.lower())


def find_buyers(gw: Gateway, user: User, company: str, q: str) -> list[User]:
    """Customers and prospects of the CSR's companies, filtered by company and search text."""
    allowed = set(user.assigned_companies)
    if company:
        allowed &= {company}
    needle = q.strip().lower()
    found = [u for u in gw.directory.snapshot.users.values()
             if u.company in allowed and u.kind in (CUSTOMER, PROSPECT)
             and (not needle or needle in _haystack(u))]
    return sorted(found, key=lambda u: (u.display_name.lower(), u.username))


def _haystack(user: User) -> str:
    return " ".join((user.username, user.display_name, user.email,
                     user.account_number)).lower()


def _paged(request: web.Request, buyers: list[User]) -> tuple[list[User], int, int]:
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    pages = max(1, math.ceil(len(buyers) / PAGE_SIZE))
    page = min(page, pages)
    return buyers[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], page, pages


@dataclass(frozen=True)
class BuyerList:
    """One page of the buyers a CSR may pick, for the HTML page and the JSON API alike."""

    companies: list[Company]
    company: str
    q: str
    buyers: list[User]
    refusals: dict[str, str | None]  # username -> why not selectable (None: selectable)
    total: int
    page: int
    pages: int


async def buyer_list(request: web.Request) -> BuyerList:
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor = await authenticate(request, gw, ctx)
    assert actor is not None
    require_page(gw, ctx, actor, "view")
    company, q = request.query.get("company", ""), request.query.get("q", "")
    found = find_buyers(gw, actor.user, company, q)
    shown, page, pages = _paged(request, found)
    return BuyerList(assigned_companies(gw, actor.user), company, q, shown,
                     refusals(gw, actor, shown), len(found), page, pages)


def refusals(gw: Gateway, actor: Actor, buyers: list[User]) -> dict[str, str | None]:
    """The policy, asked per shown buyer (cached): a button only where a start would pass."""
    me, snapshot = impersonation.as_self(actor), gw.directory.snapshot
    found: dict[str, str | None] = {}
    for buyer in buyers:
        decision = gw.policy.impersonation(me, buyer, snapshot)
        found[buyer.username] = None if decision.allowed else decision.reason
    return found


def _where_from(request: web.Request) -> str:
    """Where "Logout Buyer" returns to: `next`, else the page that linked here."""
    came_from = _referer_path(request)
    if came_from and came_from.split("?")[0] == SELECT_USER:
        came_from = None  # a search on this page: keep the first page's origin
    return return_target(request.query.get("next") or came_from, "")


async def select_user(request: web.Request) -> web.StreamResponse:
    gw, found = request.app[GATEWAY], await buyer_list(request)
    return render(request, "select_user.html", companies=found.companies,
                  company=found.company, q=found.q, buyers=found.buyers,
                  refusals=found.refusals, labels=NOT_SELECTABLE, kinds=KINDS, page=found.page,
                  pages=found.pages, total=found.total, next=_where_from(request),
                  reason_required=gw.settings.impersonation.reason_required)


async def buyers_api(request: web.Request) -> web.StreamResponse:
    gw, found = request.app[GATEWAY], await buyer_list(request)
    snapshot = gw.directory.snapshot
    return web.json_response({
        "company": found.company or None, "q": found.q, "page": found.page,
        "pages": found.pages, "total": found.total,
        "companies": [{"id": c.id, "name": c.name} for c in found.companies],
        "buyers": [{"username": u.username, "name": u.display_name, "email": u.email,
                    "account_number": u.account_number, "company": u.company,
                    "company_name": snapshot.company_name(u.company), "kind": u.kind,
                    "selectable": found.refusals[u.username] is None,
                    "not_selectable_reason": found.refusals[u.username]}
                   for u in found.buyers],
    }, headers={"Cache-Control": "no-store"})


async def start(request: web.Request) -> web.StreamResponse:
    gw, ctx, actor, fields = await signed_in_post(request, "select_user", "submit")
    back = return_target(fields.get("return_to") or _referer_path(request), SELECT_USER)
    return await _checked_start(request, gw, ctx, actor, fields, back, switching=False)


async def switch(request: web.Request) -> web.StreamResponse:
    """Switch buyers in one step from the banner's Select User: stop acting for this buyer
    and start for the chosen one, each audited, the reason asked again, the step-up and the
    second factor demanded as for any start. Checked before the stop, so a refused switch
    keeps the running impersonation."""
    gw, ctx, actor, fields = await signed_in_post(request, "select_user", "submit")
    assert ctx.session is not None
    imp = ctx.session.impersonation
    back = (imp.return_to or SELECT_USER) if imp is not None else return_target(
        fields.get("return_to") or _referer_path(request), SELECT_USER)
    return await _checked_start(request, gw, ctx, actor, fields, back, switching=True)


async def _checked_start(request: web.Request, gw: Gateway, ctx: RequestContext, actor: Actor,
                         fields: dict[str, str], back: str, *, switching: bool
                         ) -> web.StreamResponse:
    """The start, or first the step-up when the last authentication is too old or the
    policy wants a second factor this session has not shown. A plain start is asked of the
    actor as they are (acting for a buyer: refused, no chains); a switch of the CSR."""
    assert ctx.session is not None
    me = impersonation.as_self(actor) if switching else actor
    buyer_name, reason = fields.get("buyer", "").strip(), clean_reason(fields.get("reason", ""))
    buyer = check_start(gw, ctx, me, buyer_name, reason)
    wanted = gw.policy.requires_mfa(me, buyer, gw.directory.snapshot)
    if needs_second_factor(gw, me, buyer, ctx.session) or \
            not stepup.fresh_enough(gw, ctx.session):
        # a step-up for a start that needs MFA proves the second factor again too
        return await stepup.demand(request, gw, ctx, ctx.session, buyer_name, reason, back,
                                   mfa=wanted)
    return await begin(request, gw, ctx, me, buyer_name, reason, back)


def _referer_path(request: web.Request) -> str | None:
    referer = request.headers.get("Referer", "")
    host = request.host
    for prefix in (f"http://{host}", f"https://{host}"):
        if referer.startswith(prefix + "/"):
            return referer[len(prefix):]
    return None


async def stop(request: web.Request) -> web.StreamResponse:
    gw, ctx, _actor, _fields = await signed_in_post(request, "select_user", "stop")
    assert ctx.session is not None
    ctx.allow(gw.policy.rev)
    imp = ctx.session.impersonation
    if imp is None:
        return see_other("/")
    await impersonation.end(gw, ctx, ctx.session, event="impersonation_stop", reason="ok")
    return see_other(imp.return_to or SELECT_USER)
