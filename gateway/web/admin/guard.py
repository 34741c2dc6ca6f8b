"""Who may use the admin area: authenticated, CSRF-checked, and allowed by the policy."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from gateway.core.domain import Actor
from gateway.core.errors import Forbidden
from gateway.pipeline.authn import authenticate
from gateway.runtime.context import CTX
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.web.forms import check_csrf

SAFE = ("GET", "HEAD")


async def admit(request: web.Request, resource: str,
                fields: dict[str, str] | None = None) -> tuple[Gateway, Actor]:
    """The admin actor, or a refusal: 401 without a session, 403 by policy or CSRF."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor = await authenticate(request, gw, ctx)
    assert actor is not None and ctx.session is not None
    action = "read" if request.method in SAFE else "manage"
    ctx.page, ctx.action = f"admin:{resource}", action
    if request.method not in SAFE:
        ctx.state_changing = True
        check_csrf(request, ctx.session, fields or {})
    decision = gw.policy.admin(actor, action, resource, gw.directory.snapshot)
    if not decision.allowed:
        ctx.deny(decision.reason, decision.policy_rev)
        raise Forbidden(decision.reason, "The admin area is for administrators.")
    ctx.allow(decision.policy_rev)
    return gw, actor


def audit_change(request: web.Request, actor: Actor, target: str, action: str,
                 before: Any, after: Any, user: str | None = None) -> None:
    """One admin_change line: who changed what, before and after (never secrets)."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    gw.audit.emit("admin_change", request_id=ctx.request_id, actor=actor.user.username,
                  user=user, company=None, method=ctx.method, path=ctx.path,
                  decision="allow", reason="ok", client_ip=ctx.client_ip,
                  policy_rev=gw.policy.rev, target=target, action=action,
                  before=_as_dict(before), after=_as_dict(after))


def _as_dict(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
