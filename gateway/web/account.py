"""Login, logout and whoami: the session's beginning, end and self-description."""

from __future__ import annotations

import dataclasses
import time

from aiohttp import web

from gateway.core.domain import User
from gateway.core.errors import Forbidden, GatewayError, TooManyRequests, Unauthenticated
from gateway.core.i18n import gettext
from gateway.pipeline.authn import authenticate, check_fence, load_session
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.impersonation import clear_upstream_cookies, record_end, set_session_cookie
from gateway.runtime.responses import render, safe_next, see_other, wants_json
from gateway.services.totp import GOOD
from gateway.sessions.store import new_session
from gateway.web.forms import read_fields
from gateway.web.provider import base_url
from gateway.web.sso import login_page_values
from gateway.web.totp import LOCAL_MFA, code_refusal, recovery_used

BREAK_GLASS = "break_glass"  # the user feature that keeps a password when SSO is required


async def login_form(request: web.Request) -> web.StreamResponse:
    ctx = request[CTX]
    ctx.page, ctx.action = "login", "view"
    ctx.allow(request.app[GATEWAY].policy.rev)
    return render(request, "login.html", next=safe_next(request.query.get("next")),
                  username="", failed=None, **login_page_values(request.app[GATEWAY]))


async def login(request: web.Request) -> web.StreamResponse:
    gw, ctx = request.app[GATEWAY], request[CTX]
    ctx.page, ctx.action = "login", "submit"
    fields = await read_fields(request)
    username, password = fields.get("username", "")[:128], fields.get("password", "")
    target = safe_next(fields.get("next"))
    wait = gw.throttle.retry_after(username, ctx.client_ip)
    if wait:
        _failed(gw, ctx, username, "throttled", 429)
        raise TooManyRequests("throttled", detail=f"retry after {wait}s")
    user = await gw.directory.verify_password(username, password) if username else None
    if user is not None:
        try:
            check_fence(user, ctx.client_ip)
        except GatewayError:
            _failed(gw, ctx, username, "ip_fenced", 403)
            raise
    if user is None:
        gw.throttle.failed(username, ctx.client_ip)
        _failed(gw, ctx, username, "bad_credentials", 401)
        if wants_json(request):
            raise Unauthenticated("bad_credentials", "Wrong username or password.")
        return render(request, "login.html", status=401, next=target, username=username,
                      failed=gettext("Wrong username or password."), **login_page_values(gw))
    break_glass = BREAK_GLASS in user.features
    if not gw.settings.login.local_passwords and not break_glass:
        _failed(gw, ctx, username, "local_passwords_disabled", 403)
        raise Forbidden("local_passwords_disabled", "Sign in with your identity provider.")
    if await gw.second_factor.enabled(user.username):  # no session until the code is right
        pending = gw.second_factor.pending_for(user.username, target, ctx.client_ip,
                                               break_glass)
        ctx.allow(gw.policy.rev)
        return _ask_code(request, gw.second_factor.seal_pending(pending))
    return await _signed_in(request, gw, ctx, user, target, "password", (), break_glass)


async def _signed_in(request: web.Request, gw: Gateway, ctx: RequestContext, user: User,
                     target: str, method: str, amr: tuple[str, ...],
                     break_glass: bool) -> web.StreamResponse:
    gw.throttle.succeeded(user.username)
    old = await load_session(request, gw)
    if old is not None:
        await gw.sessions.delete(old.id)  # a fresh id on every login: no session fixation
    session = dataclasses.replace(new_session(user.username, user.idle_minutes, ctx.client_ip),
                                  auth_method=method, auth_time=time.time(), amr=amr)
    await gw.sessions.save(session)
    ctx.session = session
    ctx.allow(gw.policy.rev)
    gw.audit.emit("login", request_id=ctx.request_id, user=user.username, actor=user.username,
                  company=user.company, reason="ok", decision="allow", client_ip=ctx.client_ip,
                  method=ctx.method, path=ctx.path, status=303, auth_method=method,
                  amr=list(amr) or None, break_glass=True if break_glass else None)
    response = see_other(target)
    set_session_cookie(response, gw, session)
    clear_upstream_cookies(response, gw)
    return response


def _ask_code(request: web.Request, pending: str, failed: str | None = None,
              status: int = 200) -> web.StreamResponse:
    """The second page: the password was right, the authenticator's code is next."""
    if wants_json(request):
        body = {"second_factor": "totp", "pending": pending, "failed": failed}
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
    return render(request, "login_code.html", status=status, pending=pending, failed=failed)


async def login_code(request: web.Request) -> web.StreamResponse:
    """POST /_gateway/login/code: the code (or a recovery code) after the right password."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    ctx.page, ctx.action = "login", "code"
    fields = await read_fields(request)
    token = fields.get("pending", "")
    pending = gw.second_factor.open_pending(token, ctx.client_ip) if token else None
    if pending is None:
        _failed(gw, ctx, "", "totp_pending_expired", 401, "totp")
        raise Unauthenticated("totp_pending_expired", "Log in again.")
    name = pending.username
    wait = gw.throttle.retry_after(name, ctx.client_ip)
    if wait:
        _failed(gw, ctx, name, "throttled", 429, "totp")
        raise TooManyRequests("throttled", detail=f"retry after {wait}s")
    user = gw.directory.snapshot.user(name)
    if user is None or not user.active:
        _failed(gw, ctx, name, "account_inactive", 403, "totp")
        raise Forbidden("account_inactive")
    outcome = await gw.second_factor.check(name, fields.get("code", ""))
    if outcome not in GOOD:
        gw.throttle.failed(name, ctx.client_ip)
        _failed(gw, ctx, name, outcome, 401, "totp")
        return _ask_code(request, token, gettext(code_refusal(outcome)), 401)
    if outcome == "recovery":
        await recovery_used(gw, ctx, name)
    return await _signed_in(request, gw, ctx, user, pending.next, "totp", LOCAL_MFA,
                            pending.break_glass)


def _failed(gw: Gateway, ctx: RequestContext, username: str, why: str, status: int,
            method: str = "password") -> None:
    ctx.deny(why)
    gw.audit.emit("login_failed", request_id=ctx.request_id, user=username or None,
                  actor=username or None, reason=why, decision="deny",
                  client_ip=ctx.client_ip, method=ctx.method, path=ctx.path, status=status,
                  auth_method=method)


async def logout(request: web.Request) -> web.StreamResponse:
    """No CSRF token needed: the SameSite=Lax cookie never rides a cross-site POST."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    ctx.page, ctx.action = "logout", "submit"
    ctx.allow(gw.policy.rev)
    session = await load_session(request, gw)
    if session is not None:
        actor = await authenticate(request, gw, ctx, required=False)
        await gw.sessions.delete(session.id)
        if actor is not None and actor.impersonation is not None:  # else auth ended it
            await record_end(gw, ctx, actor.impersonation, event="impersonation_stop",
                           reason="ok", detail="logout")
        fields = ctx.identity_fields() if actor else {"user": session.username,
                                                      "actor": session.username}
        gw.audit.emit("logout", request_id=ctx.request_id, reason="ok", decision="allow",
                      client_ip=ctx.client_ip, method=ctx.method, path=ctx.path, status=303,
                      **fields)
    after = "/_gateway/login"
    if session is not None and session.idp is not None and gw.oidc is not None:
        after = await gw.oidc.end_session_url(session, base_url(request, gw) + after) or after
    response = see_other(after)
    response.del_cookie(gw.settings.sessions.cookie_name, path="/")
    clear_upstream_cookies(response, gw)
    return response


async def whoami(request: web.Request) -> web.StreamResponse:
    gw, ctx = request.app[GATEWAY], request[CTX]
    ctx.page, ctx.action = "whoami", "view"
    actor = await authenticate(request, gw, ctx)
    assert actor is not None and ctx.session is not None
    ctx.allow(gw.policy.rev)
    imp = actor.impersonation if actor.acting_as else None
    limit = gw.settings.impersonation.max_minutes * 60
    return web.json_response({
        "user": actor.user.username, "groups": list(actor.user.groups),
        "company": actor.user.company,
        "acting_as": actor.acting_as.username if actor.acting_as else None,
        "impersonation": None if imp is None else {
            "id": imp.id, "buyer": imp.buyer, "company": actor.effective.company,
            "reason": imp.reason, "started_at": imp.started_at,
            "expires_at": imp.started_at + limit,
            "seconds_left": max(0, int(imp.started_at + limit - time.time()))},
        "csrf_token": ctx.session.csrf_token,
    }, headers={"Cache-Control": "no-store"})
