"""Active sessions and impersonations: list, end one, end all of a user (the kill switch)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.impersonation import record_end
from gateway.sessions.store import Session


def handle(session: Session) -> str:
    """A public name for a session: never the session id itself (that is a credential)."""
    return hashlib.sha256(session.id.encode()).hexdigest()[:20]


def describe(session: Session) -> dict[str, Any]:
    imp = session.impersonation
    return {"handle": handle(session), "user": session.username,
            "client_ip": session.client_ip, "created": session.created,
            "last_seen": session.last_seen, "idle_seconds": int(time.time() - session.last_seen),
            "impersonating": None if imp is None else {
                "buyer": imp.buyer, "reason": imp.reason, "started_at": imp.started_at,
                "impersonation_id": imp.id}}


async def end_sessions(gw: Gateway, ctx: RequestContext, *, username: str | None = None,
                       session_handle: str | None = None) -> list[dict[str, Any]]:
    """Delete matching sessions; a running impersonation ends with reason kill_switch."""
    ended = []
    for session in await gw.sessions.all():
        if (username and session.username != username) or \
                (session_handle and handle(session) != session_handle):
            continue
        await gw.sessions.delete(session.id)
        if session.impersonation is not None:  # one end line, even if another path won
            await record_end(gw, ctx, session.impersonation, event="impersonation_end",
                           reason="kill_switch")
        ended.append(describe(session))
    return ended
