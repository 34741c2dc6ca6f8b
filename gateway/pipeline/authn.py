"""Authentication stage: session cookie -> Session and the Actor behind the request."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable

from aiohttp import web

from gateway.core import i18n
from gateway.core.domain import Actor, User
from gateway.core.errors import Forbidden, Unauthenticated
from gateway.runtime import idp, impersonation
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.sessions.store import Session, touched


async def load_session(request: web.Request, gw: Gateway) -> Session | None:
    sid = cookie_value(request.headers.getall("Cookie", ()), gw.settings.sessions.cookie_name)
    if not sid or len(sid) > 128:
        return None
    return await gw.sessions.get(sid)


def cookie_value(headers: Iterable[str], name: str) -> str | None:
    """One cookie's value (the last if sent twice, as aiohttp's parser has it), without
    parsing every cookie of the shop into Morsels on each request."""
    found = None
    for header in headers:
        if name not in header:
            continue
        for part in header.split(";"):
            key, sep, value = part.partition("=")
            if sep and key.strip() == name:
                found = value.strip()
    return found


async def authenticate(request: web.Request, gw: Gateway, ctx: RequestContext,
                       *, required: bool = True) -> Actor | None:
    """The Actor of a live session; expired or unknown sessions are refused when required."""
    session = await load_session(request, gw)
    actor = await session_actor(gw, ctx, session) if session else None
    if actor is None and required:
        raise Unauthenticated("unauthenticated")
    return actor


async def session_actor(gw: Gateway, ctx: RequestContext, session: Session) -> Actor | None:
    now = time.time()
    if session.impersonation is not None:
        await gw.directory.catch_up()  # a revocation on any worker counts at once
    snapshot = gw.directory.snapshot
    user = snapshot.user(session.username)
    expired = session.idle_expired(now) or now - session.created > \
        gw.settings.sessions.absolute_minutes * 60
    if user is None or not user.active or expired:
        why = "session_expired" if expired else "account_inactive"
        await impersonation.expire(gw, ctx, session, why)
        return None
    check_fence(user, ctx.client_ip)
    fresh = touched(session, now)
    if fresh is not None:
        # never over a newer copy (a mode switch, a new provider token): then that one
        # counts, untouched; ended while this request was on its way: never written back
        stored = await gw.sessions.swap(session, fresh)
        if stored is None:
            return None
        session = stored
    if session.idp is not None and gw.oidc is not None:
        checked = await idp.revalidate(gw, ctx, session, now)
        if checked is None:
            return None
        session = checked
        user = gw.directory.snapshot.user(session.username) or user
        snapshot = gw.directory.snapshot
    ctx.session = session
    i18n.prefer(user.language)
    imp = session.impersonation
    if imp is not None:  # every line of the impersonation says how the CSR authenticated
        ctx.extra.update(impersonation.proof_fields(session))
    buyer = snapshot.user(imp.buyer) if imp else None  # None as well if the buyer is gone
    actor = Actor(user, buyer, imp, snapshot.version)
    ctx.actor = actor
    return actor


def check_fence(user: User, client_ip: str) -> None:
    """a user with an IP fence is served only from inside it, on every request."""
    if not user.ip_fence:
        return
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError as exc:
        raise Forbidden("ip_fenced", "Your network address is not allowed.") from exc
    if not any(address in ipaddress.ip_network(c, strict=False) for c in user.ip_fence):
        raise Forbidden("ip_fenced", "Your network address is not allowed.")
