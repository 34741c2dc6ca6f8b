"""Step-up before an impersonation: a recent authentication, else the person proves it again.

Measured from the provider's `auth_time` for OIDC sessions and from the password entry for
local ones; after the re-authentication the start continues with the reason already typed.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from gateway.core.domain import Actor
from gateway.core.errors import Forbidden, TooManyRequests, Unauthenticated
from gateway.core.i18n import gettext
from gateway.pipeline.authn import authenticate
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.impersonation import as_self
from gateway.runtime.mfa import has_second_factor
from gateway.runtime.responses import render, wants_json
from gateway.services.totp import GOOD
from gateway.sessions.store import Session, update
from gateway.web.forms import signed_in_post
from gateway.web.impersonate import begin, needs_second_factor
from gateway.web.provider import new_flow, proof_of, redirect_to_provider
from gateway.web.totp import LOCAL_MFA, code_refusal, recovery_used

STALE = "step_up_stale"  # the provider answered without a fresh authentication


def fresh_enough(gw: Gateway, session: Session, now: float | None = None) -> bool:
    minutes = gw.settings.impersonation.step_up_minutes
    if minutes == 0 or not session.auth_time:
        return False
    return (now or time.time()) - session.auth_time <= minutes * 60


async def demand(request: web.Request, gw: Gateway, ctx: RequestContext, session: Session,
                 buyer: str, reason: str, return_to: str,
                 mfa: bool = False) -> web.StreamResponse:
    """Send the CSR to authenticate again: to the provider, or the password form."""
    ctx.deny("step_up_required", gw.policy.rev)
    ctx.extra["detail"] = f"step-up before acting as {buyer}"
    if session.idp is not None and gw.oidc is not None:
        flow = dataclasses.replace(new_flow("/", purpose="step_up", buyer=buyer,
                                            reason=reason, return_to=return_to), mfa=mfa)
        return await redirect_to_provider(request, gw, flow, fresh_login=True)
    if mfa and not await gw.second_factor.enabled(session.username):
        return not_enrolled(request, gw, ctx, session.username, buyer, reason)
    return render(request, "reauth.html", buyer=buyer, reason=reason, return_to=return_to,
                  failed=None, mfa=mfa)


def not_enrolled(request: web.Request, gw: Gateway, ctx: RequestContext, csr: str,
                 buyer: str, reason: str) -> web.StreamResponse:
    """A local account without an authenticator app cannot prove a second factor: enrol."""
    ctx.deny("mfa_not_enrolled", gw.policy.rev)
    found = gw.directory.snapshot.user(buyer)
    gw.audit.emit("impersonation_denied", request_id=ctx.request_id, user=buyer or None,
                  actor=csr, csr=csr, company=found.company if found else None,
                  method=ctx.method, path=ctx.path, decision="deny", reason="mfa_not_enrolled",
                  status=403, client_ip=ctx.client_ip, policy_rev=gw.policy.rev,
                  impersonation_reason=reason or None)
    if wants_json(request):
        raise Forbidden("mfa_not_enrolled", "Set up an authenticator app on your account page "
                        "(/_gateway/account) first.")
    return render(request, "reauth.html", status=403, buyer="", reason="", return_to="",
                  failed=None, mfa=True, not_enrolled=True)


async def after_provider(request: web.Request, gw: Gateway, ctx: RequestContext,
                         flow: Any, username: str, claims: dict[str, Any]
                         ) -> web.StreamResponse:
    """The provider saw the CSR again: record it, then start the impersonation asked for."""
    actor = await authenticate(request, gw, ctx)
    assert actor is not None and ctx.session is not None
    if actor.user.username != username:
        raise Forbidden("step_up_other_user", "You signed in as someone else.")
    proof = proof_of(claims)
    skew = gw.oidc.settings.clock_skew_seconds if gw.oidc else 0
    if proof["auth_time"] < flow.started - skew:
        raise Forbidden(STALE, "The sign-in provider did not ask for your login again.")
    session = dataclasses.replace(ctx.session, auth_method="oidc", **proof)
    if flow.mfa and not has_second_factor(gw, session):
        raise Forbidden("mfa_required", "Acting as this buyer needs multi-factor sign-in.")
    return await _continue(request, gw, ctx, session, flow.buyer, flow.reason, flow.return_to)


async def password_again(request: web.Request) -> web.StreamResponse:
    """POST /_gateway/reauth: the local CSR's password again, then the start continues."""
    gw, ctx, actor, fields = await signed_in_post(request, "select_user", "reauth")
    assert ctx.session is not None
    buyer, reason = fields.get("buyer", ""), fields.get("reason", "")
    return_to = fields.get("return_to", "")
    name = actor.user.username
    if gw.throttle.retry_after(name, ctx.client_ip):
        raise TooManyRequests("throttled")
    if await gw.directory.verify_password(name, fields.get("password", "")) is None:
        gw.throttle.failed(name, ctx.client_ip)
        ctx.deny("bad_credentials")
        gw.audit.emit("login_failed", request_id=ctx.request_id, user=name, actor=name,
                      reason="bad_credentials", decision="deny", client_ip=ctx.client_ip,
                      method=ctx.method, path=ctx.path, status=401, auth_method="password",
                      detail="step-up before impersonation")
        return render(request, "reauth.html", status=401, buyer=buyer, reason=reason,
                      return_to=return_to, failed=gettext("Wrong password."),
                      mfa=_needs_code(gw, actor, buyer,
                                      dataclasses.replace(ctx.session, amr=(), acr="")))
    # the proof is made anew: a second factor shown at login counts no more
    session = dataclasses.replace(ctx.session, auth_method="password", auth_time=time.time(),
                                  amr=(), acr="")
    if _needs_code(gw, actor, buyer, session) or fields.get("code"):
        outcome = await gw.second_factor.check(name, fields.get("code", ""))
        if outcome == "mfa_not_enrolled":
            return not_enrolled(request, gw, ctx, name, buyer, reason)
        if outcome not in GOOD:
            gw.throttle.failed(name, ctx.client_ip)
            ctx.deny(outcome)
            gw.audit.emit("login_failed", request_id=ctx.request_id, user=name, actor=name,
                          reason=outcome, decision="deny", client_ip=ctx.client_ip,
                          method=ctx.method, path=ctx.path, status=401, auth_method="totp",
                          detail="step-up before impersonation")
            return render(request, "reauth.html", status=401, buyer=buyer, reason=reason,
                          return_to=return_to, mfa=True, failed=gettext(code_refusal(outcome)))
        if outcome == "recovery":
            await recovery_used(gw, ctx, name)
        session = dataclasses.replace(session, auth_method="totp", amr=LOCAL_MFA)
    gw.throttle.succeeded(name)
    return await _continue(request, gw, ctx, session, buyer, reason, return_to)


def _needs_code(gw: Gateway, actor: Actor, buyer: str, session: Session) -> bool:
    """Decided here again, never from the form: a password alone never passes an MFA start."""
    user = gw.directory.snapshot.user(buyer)
    return user is not None and needs_second_factor(gw, as_self(actor), user, session)


async def _continue(request: web.Request, gw: Gateway, ctx: RequestContext, session: Session,
                    buyer: str, reason: str, return_to: str) -> web.StreamResponse:
    assert ctx.session is not None
    stored = await update(gw.sessions, ctx.session, lambda current: dataclasses.replace(
        current, auth_method=session.auth_method, auth_time=session.auth_time,
        amr=session.amr, acr=session.acr))
    if stored is None:  # ended (logout elsewhere, kill switch) while this was on its way
        raise Unauthenticated("unauthenticated")
    ctx.session = session = stored
    gw.audit.emit("login", request_id=ctx.request_id, user=session.username,
                  actor=session.username, reason="ok", decision="allow",
                  client_ip=ctx.client_ip, method=ctx.method, path=ctx.path, status=303,
                  auth_method=session.auth_method, amr=list(session.amr) or None,
                  acr=session.acr or None,
                  auth_time=int(session.auth_time), detail="step-up before impersonation")
    actor = await authenticate(request, gw, ctx)
    assert actor is not None
    return await begin(request, gw, ctx, actor, buyer, reason, return_to)
