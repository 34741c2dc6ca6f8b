"""The sign-in round trip (start, callback) and the provider's back-channel logout."""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any

from aiohttp import web

from gateway.core.errors import GatewayError, Unauthenticated
from gateway.core.i18n import gettext
from gateway.oidc.client import OidcLogin
from gateway.oidc.flow import COOKIE, COOKIE_PATH, Flow, unseal
from gateway.oidc.tokens import TokenRefused
from gateway.pipeline.authn import check_fence, load_session
from gateway.runtime import idp as accounts
from gateway.runtime import impersonation
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.impersonation import clear_upstream_cookies, set_session_cookie
from gateway.runtime.responses import render, safe_next, see_other, wants_json
from gateway.sessions.store import IdpLink, Session, new_session
from gateway.web import stepup
from gateway.web.provider import (
    CALLBACK,
    base_url,
    new_flow,
    oidc_of,
    proof_of,
    redirect_to_provider,
)


async def start(request: web.Request) -> web.StreamResponse:
    gw, ctx = request.app[GATEWAY], request[CTX]
    ctx.page, ctx.action = "login", "oidc_start"
    oidc_of(gw)
    ctx.allow(gw.policy.rev)
    flow = new_flow(safe_next(request.query.get("next")))
    return await redirect_to_provider(request, gw, flow, fresh_login=False)


async def callback(request: web.Request) -> web.StreamResponse:
    gw, ctx = request.app[GATEWAY], request[CTX]
    ctx.page, ctx.action = "login", "oidc_callback"
    oidc = oidc_of(gw)
    flow = unseal(gw.settings, request.cookies.get(COOKIE))
    try:
        claims, answer = await _verified(oidc, request, flow)
        assert flow is not None
        user = await accounts.login_user(gw, ctx, claims)
        check_fence(user, ctx.client_ip)
    except TokenRefused as refused:
        return _refused(request, gw, ctx, refused, claims_user=None)
    except GatewayError as err:
        if err.reason != "ip_fenced":
            raise
        return _refused(request, gw, ctx, TokenRefused("ip_fenced", err.public), None)
    if flow.purpose == "step_up":
        response = await stepup.after_provider(request, gw, ctx, flow, user.username, claims)
        response.del_cookie(COOKIE, path=COOKIE_PATH)
        return response
    session = await _new_login(request, gw, ctx, user.username, user.idle_minutes, claims,
                               answer)
    response = see_other(flow.next)
    set_session_cookie(response, gw, session)
    clear_upstream_cookies(response, gw)
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


async def _verified(oidc: OidcLogin, request: web.Request,
                    flow: Flow | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The provider's answer checked in order: state, once only, code, ID token, nonce."""
    state = request.query.get("state", "")
    if flow is None or not state or not secrets.compare_digest(state, flow.state):
        raise TokenRefused("oidc_state_mismatch", "state absent or not this browser's")
    if not await oidc.once.first("state:" + flow.state):
        raise TokenRefused("oidc_replayed", "this sign-in answer was used already")
    if "error" in request.query or not request.query.get("code"):
        raise TokenRefused("oidc_provider_refused",
                           request.query.get("error", "no code")[:100])
    answer = await oidc.token_grant({
        "grant_type": "authorization_code", "code": request.query["code"],
        "redirect_uri": base_url(request, request.app[GATEWAY]) + CALLBACK,
        "code_verifier": flow.verifier})
    claims = await oidc.id_claims(str(answer["id_token"]), flow.nonce)
    return claims, answer


async def _new_login(request: web.Request, gw: Gateway, ctx: RequestContext, username: str,
                     idle_minutes: int, claims: dict[str, Any],
                     answer: dict[str, Any]) -> Session:
    old = await load_session(request, gw)
    if old is not None:
        await gw.sessions.delete(old.id)  # a fresh id on every login: no session fixation
        if old.impersonation is not None:
            await impersonation.record_end(gw, ctx, old.impersonation,
                                         event="impersonation_stop", reason="ok",
                                         detail="signed in again")
    proof = proof_of(claims)
    link = IdpLink(sub=str(claims["sub"]), sid=str(claims.get("sid") or ""),
                   refresh_token=str(answer.get("refresh_token") or ""),
                   id_token=str(answer["id_token"]), checked_at=time.time())
    session = dataclasses.replace(new_session(username, idle_minutes, ctx.client_ip),
                                  auth_method="oidc", idp=link, **proof)
    await gw.sessions.save(session)
    ctx.session = session
    ctx.allow(gw.policy.rev)
    user = gw.directory.snapshot.user(username)
    gw.audit.emit("login", request_id=ctx.request_id, user=username, actor=username,
                  company=user.company if user else None, reason="ok", decision="allow",
                  client_ip=ctx.client_ip, method=ctx.method, path=ctx.path, status=303,
                  auth_method="oidc", amr=list(proof["amr"]) or None,
                  acr=proof["acr"] or None, auth_time=int(proof["auth_time"]))
    return session


def _refused(request: web.Request, gw: Gateway, ctx: RequestContext, refused: TokenRefused,
             claims_user: str | None) -> web.StreamResponse:
    ctx.deny(refused.reason)
    gw.audit.emit("login_failed", request_id=ctx.request_id, user=claims_user,
                  actor=claims_user, reason=refused.reason, decision="deny",
                  client_ip=ctx.client_ip, method=ctx.method, path=ctx.path, status=401,
                  auth_method="oidc", detail=refused.detail[:300])
    if wants_json(request):
        raise Unauthenticated(refused.reason, "Sign-in with the provider failed.")
    response = render(request, "login.html", status=401, next="/", username="",
                      failed=gettext("Sign-in with the provider failed. Please try again."),
                      **login_page_values(gw))
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


def login_page_values(gw: Gateway) -> dict[str, Any]:
    login = gw.settings.login
    return {"sso_name": login.oidc.name if login.oidc else None,
            "local_passwords": login.local_passwords}


async def backchannel_logout(request: web.Request) -> web.StreamResponse:
    """The provider says a session ended there: ours ends too, with any impersonation."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    ctx.page, ctx.action, ctx.state_changing = "oidc_backchannel_logout", "submit", True
    oidc = oidc_of(gw)
    form = await request.post()
    token = form.get("logout_token")
    headers = {"Cache-Control": "no-store"}
    try:
        if not isinstance(token, str) or not token:
            raise TokenRefused("oidc_token_invalid", "no logout_token")
        claims = await oidc.logout_claims(token)
        if not await oidc.once.first("jti:" + str(claims["jti"])):
            raise TokenRefused("oidc_replayed", "logout token used already")
    except TokenRefused as refused:
        ctx.deny(refused.reason)
        return web.json_response({"error": "invalid_request"}, status=400, headers=headers)
    ended = await end_idp_sessions(gw, ctx, str(claims.get("sub") or ""),
                                   str(claims.get("sid") or ""))
    ctx.allow(gw.policy.rev)
    ctx.extra["detail"] = f"{ended} session(s) ended"
    return web.Response(status=200, headers=headers)


async def end_idp_sessions(gw: Gateway, ctx: RequestContext, sub: str, sid: str) -> int:
    ended = 0
    for session in await gw.sessions.all():
        idp = session.idp
        if idp is None or (sid and idp.sid != sid) or (not sid and idp.sub != sub):
            continue
        await gw.sessions.delete(session.id)
        gw.audit.emit("logout", request_id=ctx.request_id, user=session.username,
                      actor=session.username, reason="idp_backchannel_logout",
                      decision="allow", client_ip=ctx.client_ip, method=ctx.method,
                      path=ctx.path, status=200, auth_method="oidc")
        if session.impersonation is not None:
            await impersonation.record_end(gw, ctx, session.impersonation,
                                         event="impersonation_end",
                                         reason="idp_backchannel_logout")
        ended += 1
    return ended
