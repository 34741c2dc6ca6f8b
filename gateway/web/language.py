"""The person's own language for the gateway's pages, set on the account page."""

from __future__ import annotations

from aiohttp import web

from gateway.core import i18n
from gateway.core.errors import BadRequest
from gateway.runtime.responses import see_other
from gateway.web.forms import signed_in_post

ACCOUNT = "/_gateway/account"


async def set_language(request: web.Request) -> web.StreamResponse:
    """POST `language` ("" follows the browser): stored on the user, back to the account
    page in the new language. Always the real person's setting, even while impersonating."""
    gw, ctx, actor, fields = await signed_in_post(request, "gateway_account",
                                                  "change_language")
    chosen = fields.get("language", "")
    if chosen and chosen not in i18n.LANGUAGES:
        raise BadRequest("bad_request", i18n.N_("There is no such language; choose one from "
                                                "the list."))
    username, before = actor.user.username, actor.user.language
    await gw.directory.set_language(username, chosen)
    ctx.allow(gw.policy.rev)
    gw.audit.emit("admin_change", request_id=ctx.request_id, actor=username, user=username,
                  method=ctx.method, path=ctx.path, target="users", action="own_language",
                  reason="ok", decision="allow", client_ip=ctx.client_ip,
                  before={"language": before}, after={"language": chosen})
    return see_other(f"{ACCOUNT}?language=saved")


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{ACCOUNT}/language", set_language)
