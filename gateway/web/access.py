"""The customer's view: every time staff acted for a buyer, read back from the audit log.

One pass over the audit files of this gateway (every worker's), grouped by impersonation:
who (the staff member's display name), when, how long, the reason given, how many pages
were forwarded and which state-changing actions. `scope=company` shows the same for every
buyer of the signed-in person's company, where the policy's `may_view_company_access`
allows it.
"""

from __future__ import annotations

import asyncio
import glob
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.audit.query import read_records
from gateway.core.domain import DirectorySnapshot
from gateway.core.errors import Forbidden
from gateway.pipeline.authn import authenticate
from gateway.runtime.context import CTX
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.responses import render

STARTS = "impersonation_start"
ENDS = ("impersonation_stop", "impersonation_end")
SHOWN = 500  # the newest impersonations listed


@dataclass
class Visit:
    """One impersonation as the customer sees it."""

    id: str
    buyer: str
    staff: str
    reason: str | None
    started: str | None = None
    ended: str | None = None
    ended_by: str | None = None
    pages: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)


def audit_files(path: str) -> list[str]:
    """The audit file and every worker's (audit.jsonl, audit.w1.jsonl, ...)."""
    base = Path(path)
    stem = re.sub(r"\.w\d+$", "", base.stem)
    found = glob.glob(str(base.with_name(f"{stem}.w*{base.suffix}")))
    plain = base.with_name(stem + base.suffix)
    return sorted({*found, *([str(plain)] if plain.exists() else [])})


def visits(paths: list[str], buyers: set[str]) -> list[Visit]:
    """The impersonations of these buyers, newest first."""
    found: dict[str, Visit] = {}
    for record in read_records(paths):
        imp_id, user = record.get("impersonation_id"), record.get("user")
        if not imp_id or user not in buyers or not record.get("csr"):
            continue
        visit = found.get(imp_id)
        if visit is None:
            visit = found[imp_id] = Visit(imp_id, str(user), str(record["csr"]),
                                          record.get("impersonation_reason"))
        _add(visit, record)
    listed = sorted(found.values(), key=lambda v: v.started or "", reverse=True)
    return listed[:SHOWN]


def _add(visit: Visit, record: dict[str, Any]) -> None:
    event = record.get("event")
    if event == STARTS:
        visit.started = record.get("ts")
    elif event in ENDS:
        visit.ended, visit.ended_by = record.get("ts"), record.get("reason")
    elif event == "request" and record.get("decision") == "allow" \
            and not str(record.get("path") or "").startswith("/_gateway/") \
            and record.get("reason") != "public_page":
        visit.pages += 1
        if record.get("state_changing") is True:
            visit.actions.append({k: record.get(k) for k in
                                  ("ts", "method", "path", "page", "action", "status")})


def described(visit: Visit, snapshot: DirectorySnapshot) -> dict[str, Any]:
    staff, buyer = snapshot.user(visit.staff), snapshot.user(visit.buyer)
    return {"impersonation_id": visit.id, "buyer": visit.buyer,
            "buyer_name": buyer.display_name if buyer else visit.buyer,
            "staff_name": staff.display_name if staff else visit.staff,
            "started_at": visit.started, "ended_at": visit.ended, "ended_by": visit.ended_by,
            "duration_seconds": _seconds(visit), "reason": visit.reason,
            "pages": visit.pages, "actions": visit.actions}


def readable(row: dict[str, Any]) -> dict[str, Any]:
    """The HTML page's words for the times: `2026-12-03 14:32 UTC`, `4 min`."""
    seconds = row["duration_seconds"]
    lasted = "still running" if seconds is None else (
        "under a minute" if seconds < 60 else f"{round(seconds / 60)} min")
    started = row["started_at"] or ""
    return {**row, "started_text": started[:16].replace("T", " ") + " UTC" if started
            else "—", "lasted": lasted}


def _seconds(visit: Visit) -> float | None:
    if not visit.started or not visit.ended:
        return None
    start, end = (datetime.fromisoformat(t) for t in (visit.started, visit.ended))
    return round((end - start).total_seconds(), 1)


async def _view(request: web.Request) -> tuple[Gateway, str, list[dict[str, Any]]]:
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor = await authenticate(request, gw, ctx)
    assert actor is not None
    ctx.page, ctx.action = "staff_access", "view"
    if actor.acting_as is not None:  # the buyer's own record, not the CSR's to read
        ctx.deny("sensitive_page", gw.policy.rev)
        raise Forbidden("sensitive_page")
    snapshot, me = gw.directory.snapshot, actor.user
    scope = request.query.get("scope", "me")
    buyers = {me.username}
    if scope == "company":
        if me.company is None or not gw.policy.company_access(actor, me.company, snapshot):
            ctx.deny("policy_denied", gw.policy.rev)
            raise Forbidden("policy_denied")
        buyers = {u.username for u in snapshot.users.values() if u.company == me.company}
    else:
        scope = "me"
    ctx.allow(gw.policy.rev)
    gw.audit.flush()
    found = await asyncio.to_thread(visits, audit_files(gw.settings.audit.path), buyers)
    rows = [described(v, snapshot) for v in found]  # the log is read off the event loop
    return gw, scope, rows


async def page(request: web.Request) -> web.StreamResponse:
    gw, scope, rows = await _view(request)
    ctx = request[CTX]
    assert ctx.actor is not None
    company = ctx.actor.user.company
    offer = company is not None and gw.policy.company_access(ctx.actor, company,
                                                             gw.directory.snapshot)
    return render(request, "access.html", rows=[readable(r) for r in rows], scope=scope,
                  offer_company=offer, company_name=gw.directory.snapshot.company_name(company))


async def api(request: web.Request) -> web.StreamResponse:
    _gw, scope, rows = await _view(request)
    return web.json_response({"scope": scope, "visits": rows},
                             headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_gateway/me/access", page)
    app.router.add_get("/_gateway/api/me/access", api)
