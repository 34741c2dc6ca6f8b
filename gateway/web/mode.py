"""POST /_gateway/impersonate/mode: switch a running impersonation to write or read mode."""

from __future__ import annotations

from aiohttp import web

from gateway.core.errors import GatewayError
from gateway.runtime import impersonation_mode
from gateway.runtime.impersonation import recheck
from gateway.runtime.responses import back_link, safe_next, see_other, wants_json
from gateway.web.forms import signed_in_post
from gateway.web.impersonate import clean_reason


class NotImpersonating(GatewayError):
    status = 409
    reason = "not_impersonating"
    public = "You are not acting for a buyer."


async def switch_mode(request: web.Request) -> web.StreamResponse:
    """Form or JSON (`mode`, `reason`, `csrf_token`): 303 back to the page (`return_to`,
    local only) for a form, `{"mode", "impersonation"}` for JSON."""
    gw, ctx, actor, fields = await signed_in_post(request, "impersonation_mode", "switch")
    if actor.impersonation is None or actor.acting_as is None:
        raise NotImpersonating()
    actor = await recheck(gw, ctx, actor)
    mode = impersonation_mode.requested_mode(fields.get("mode", ""))
    ctx.action = mode
    changed = await impersonation_mode.switch(gw, ctx, actor, mode,
                                              clean_reason(fields.get("reason", "")))
    if request.content_type == "application/json" or wants_json(request):
        return web.json_response({"mode": changed.mode, "impersonation": changed.id},
                                 headers={"Cache-Control": "no-store"})
    back = safe_next(fields.get("return_to") or back_link(request), "/")
    return see_other("/" if back.startswith("/_gateway/") else back)
