"""The account page's authenticator app: set it up, disable it, renew the recovery codes.

`POST /_gateway/account/totp` with `action`: `begin` (a new secret, its QR code), `confirm`
(`code`: the first code turns it on and shows the recovery codes once), `disable`
(`password` and `code`), `renew` (`code`: ten new recovery codes, the old ones void).
Every POST carries the session's CSRF token; a JSON body or `Accept: application/json`
gets JSON back. Wrong codes count toward the login throttle like wrong passwords.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.audit.records import SecondFactorEventName
from gateway.core.domain import Actor
from gateway.core.errors import BadRequest, TooManyRequests
from gateway.core.i18n import gettext
from gateway.core.reasons import SENTENCES
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.responses import wants_json
from gateway.services.totp import GOOD, qr_svg
from gateway.web.forms import signed_in_post
from gateway.web.me import render_account

ACTIONS = ("begin", "confirm", "disable", "renew")
EVENTS: dict[str, SecondFactorEventName] = {  # the audit event of each action done
    "confirm": "totp_enrolled", "disable": "totp_disabled", "renew": "recovery_codes_renewed"}
LOCAL_MFA = ("pwd", "otp")  # RFC 8176 for a session: a password and a one-time code


def code_refusal(outcome: str) -> str:
    """The sentence (still to translate) for a refused code."""
    return SENTENCES.get(outcome, SENTENCES["totp_invalid"])


async def recovery_used(gw: Gateway, ctx: RequestContext, name: str) -> None:
    gw.audit.emit("recovery_code_used", request_id=ctx.request_id, user=name, actor=name,
                  reason="ok", decision="allow", client_ip=ctx.client_ip, method=ctx.method,
                  path=ctx.path, recovery_codes_left=await gw.second_factor.codes_left(name))


async def manage(request: web.Request) -> web.StreamResponse:
    gw, ctx, actor, fields = await signed_in_post(request, "gateway_account", "totp")
    action = fields.get("action", "")
    if action not in ACTIONS:  # checked first: the audit line names only known actions
        ctx.action = "totp"
        raise BadRequest("bad_request", "Unknown action.")
    ctx.action = f"totp_{action}"
    if action == "begin":
        return await _begin(request, gw, ctx, actor)
    if action == "confirm":
        return await _confirm(request, gw, ctx, actor, fields.get("code", ""))
    return await _with_code(request, gw, ctx, actor, action, fields)


async def _begin(request: web.Request, gw: Gateway, ctx: RequestContext,
                 actor: Actor) -> web.StreamResponse:
    name = actor.user.username
    secret = await gw.second_factor.begin(name)
    if secret is None:
        ctx.deny("totp_enrolled_already", gw.policy.rev)
        return await _answer(request, actor, 409,
                             totp_error=gettext(SENTENCES["totp_enrolled_already"]))
    ctx.allow(gw.policy.rev)
    return await _answer(request, actor, 200, enrol=_enrolment(gw, name, secret))


def _enrolment(gw: Gateway, name: str, secret: str) -> dict[str, str]:
    uri = gw.second_factor.uri(name, secret)
    spaced = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return {"secret": secret, "spaced": spaced, "uri": uri,
            "qr": qr_svg(uri, gettext("QR code of the secret for your authenticator app"))}


async def _confirm(request: web.Request, gw: Gateway, ctx: RequestContext, actor: Actor,
                   code: str) -> web.StreamResponse:
    name = actor.user.username
    _not_throttled(gw, ctx, name)
    codes = await gw.second_factor.confirm(name, code)
    if codes is None:
        gw.throttle.failed(name, ctx.client_ip)
        ctx.deny("totp_invalid", gw.policy.rev)
        secret = await gw.second_factor.pending_secret(name)
        return await _answer(request, actor, 400, totp_error=gettext(
            "The code is wrong; enter the code your app shows now."),
            enrol=_enrolment(gw, name, secret) if secret else None)
    gw.throttle.succeeded(name)
    _audit(gw, ctx, name, EVENTS["confirm"], len(codes))
    return await _answer(request, actor, 200, recovery_codes=codes, totp_message=gettext(
        "Your authenticator app is set up. From now on you log in with your password and a "
        "code."))


async def _with_code(request: web.Request, gw: Gateway, ctx: RequestContext, actor: Actor,
                     action: str, fields: dict[str, str]) -> web.StreamResponse:
    """Disable and renew: a current code first (disable: the password too)."""
    name = actor.user.username
    _not_throttled(gw, ctx, name)
    if action == "disable" and \
            await gw.directory.verify_password(name, fields.get("password", "")) is None:
        gw.throttle.failed(name, ctx.client_ip)
        ctx.deny("bad_credentials", gw.policy.rev)
        return await _answer(request, actor, 400,
                             totp_error=gettext("The password is wrong."))
    outcome = await gw.second_factor.check(name, fields.get("code", ""))
    if outcome not in GOOD:
        gw.throttle.failed(name, ctx.client_ip)
        ctx.deny(outcome, gw.policy.rev)
        return await _answer(request, actor, 400, totp_error=gettext(code_refusal(outcome)))
    gw.throttle.succeeded(name)
    if outcome == "recovery":
        await recovery_used(gw, ctx, name)
    if action == "disable":
        await gw.second_factor.remove(name)
        _audit(gw, ctx, name, EVENTS["disable"], 0)
        return await _answer(request, actor, 200, totp_message=gettext(
            "The authenticator app is off; you log in with your password alone."))
    codes = await gw.second_factor.new_codes(name)
    _audit(gw, ctx, name, EVENTS["renew"], len(codes))
    return await _answer(request, actor, 200, recovery_codes=codes, totp_message=gettext(
        "New recovery codes: the old ones no longer work."))


def _not_throttled(gw: Gateway, ctx: RequestContext, name: str) -> None:
    wait = gw.throttle.retry_after(name, ctx.client_ip)
    if wait:
        ctx.deny("throttled", gw.policy.rev)
        raise TooManyRequests("throttled", detail=f"retry after {wait}s")


def _audit(gw: Gateway, ctx: RequestContext, name: str, event: SecondFactorEventName,
           left: int) -> None:
    ctx.allow(gw.policy.rev)
    gw.audit.emit(event, request_id=ctx.request_id, user=name, actor=name, reason="ok",
                  decision="allow", client_ip=ctx.client_ip, method=ctx.method, path=ctx.path,
                  recovery_codes_left=left)


async def _answer(request: web.Request, actor: Actor, status: int,
                  **values: Any) -> web.StreamResponse:
    if wants_json(request):
        enrol = values.get("enrol")
        body = {"enabled": await request.app[GATEWAY].second_factor.enabled(
                    actor.user.username),
                "secret": enrol["secret"] if enrol else None,
                "otpauth_uri": enrol["uri"] if enrol else None,
                "recovery_codes": values.get("recovery_codes"),
                "message": values.get("totp_message"), "error": values.get("totp_error")}
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
    return await render_account(request, actor, status=status, **values)
