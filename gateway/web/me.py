"""Every user's own pages: the account page, activation and password-reset links."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.core import i18n
from gateway.core.domain import Actor
from gateway.core.i18n import N_, gettext
from gateway.directory.invitations import MIN_PASSWORD, Invitations
from gateway.pipeline.authn import authenticate
from gateway.runtime.context import CTX
from gateway.runtime.gateway import GATEWAY
from gateway.runtime.responses import render, see_other
from gateway.web.admin.sessions import describe
from gateway.web.forms import check_csrf, read_fields

DEAD_LINK = N_("This link is unknown, already used or expired. Ask an administrator for a "
               "new one.")


def too_short() -> str:
    return gettext("The new password needs at least %(count)s characters.") % {
        "count": MIN_PASSWORD}


async def account(request: web.Request) -> web.StreamResponse:
    """The gateway account page: always the real person's own, even while impersonating."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor = await authenticate(request, gw, ctx)
    assert actor is not None and ctx.session is not None
    ctx.page, ctx.action = "gateway_account", "view"
    message = error = None
    if request.method == "POST":
        fields = await read_fields(request)
        check_csrf(request, ctx.session, fields)
        ctx.action, ctx.state_changing = "change_password", True
        error = await _change_password(request, actor.user.username, fields)
        message = None if error else gettext("Your password was changed.")
    ctx.allow(gw.policy.rev)
    return await render_account(request, actor, status=400 if error else 200,
                                message=message, error=error)


async def render_account(request: web.Request, actor: Actor, status: int = 200,
                         **values: Any) -> web.StreamResponse:
    """The account page with its sections; `values` fills the one a POST just answered."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    assert ctx.session is not None
    name = actor.user.username
    mine = [describe(s) | {"current": s.id == ctx.session.id}
            for s in await gw.sessions.all() if s.username == name]
    factor = gw.second_factor
    enabled = await factor.enabled(name)
    defaults: dict[str, Any] = {
        "message": None, "error": None, "totp_enabled": enabled,
        "recovery_left": await factor.codes_left(name) if enabled else 0,
        "totp_message": None, "totp_error": None, "enrol": None, "recovery_codes": None,
        "sso_user": ctx.session.idp is not None}
    return render(request, "account.html", me=actor.user, sessions=mine,
                  min_password=MIN_PASSWORD, languages=i18n.LANGUAGES,
                  language_saved=request.query.get("language") == "saved", status=status,
                  **(defaults | values))


async def _change_password(request: web.Request, username: str,
                           fields: dict[str, str]) -> str | None:
    gw = request.app[GATEWAY]
    new = fields.get("new_password", "")
    if await gw.directory.verify_password(username, fields.get("current_password", "")) is None:
        return gettext("The current password is wrong.")
    if new != fields.get("repeat_password", ""):
        return gettext("The new passwords differ.")
    if len(new) < MIN_PASSWORD:
        return too_short()
    await gw.directory.set_password(username, new)
    gw.audit.emit("admin_change", request_id=request[CTX].request_id, actor=username,
                  user=username, target="users", action="own_password", reason="ok",
                  decision="allow", client_ip=request[CTX].client_ip)
    return None


async def redeem_link(request: web.Request) -> web.StreamResponse:
    """GET shows the set-password form for a live link; POST sets it, once."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    purpose = "activate" if request.path.endswith("/activate") else "reset"
    ctx.page, ctx.action = f"account_{purpose}", "view" if request.method == "GET" else "submit"
    invitations = Invitations(gw.directory)
    token = request.query.get("token", "")
    error = None
    if request.method == "POST":
        fields = await read_fields(request)
        token = fields.get("token", token)
        if fields.get("password") != fields.get("repeat_password"):
            error = gettext("The passwords differ.")
        else:
            try:
                username = await invitations.redeem(token, fields.get("password", ""))
            except LookupError:
                error = gettext(DEAD_LINK)
            except ValueError:
                error = too_short()
            else:
                ctx.allow(gw.policy.rev)
                gw.audit.emit("admin_change", request_id=ctx.request_id, actor=username,
                              user=username, target="users", action=f"{purpose}_link_used",
                              reason="ok", decision="allow", client_ip=ctx.client_ip)
                return see_other("/_gateway/login")
    live = await invitations.peek(token) if token else None
    if live is None and error is None:
        error = gettext(DEAD_LINK)
    if error:
        ctx.deny("invalid_link")
    else:
        ctx.allow(gw.policy.rev)
    return render(request, "activate.html", token=token, purpose=purpose, error=error,
                  username=live.username if live else None, min_password=MIN_PASSWORD,
                  status=400 if error else 200)
