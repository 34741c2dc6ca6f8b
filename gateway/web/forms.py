"""Reading small form or JSON bodies of gateway pages, and the CSRF check."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from gateway.core.domain import Actor
from gateway.core.errors import BadRequest, Forbidden
from gateway.pipeline.authn import authenticate
from gateway.runtime.context import CTX, RequestContext
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.sessions.store import Session

MAX_FORM = 64 * 1024


async def read_fields(request: web.Request) -> dict[str, str]:
    """Form or JSON body as flat strings; bodies over 64 KiB are refused."""
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise BadRequest("body_too_large", status=413)
    if request.content_type == "application/json":
        try:
            data: Any = await request.json()
        except ValueError as exc:
            raise BadRequest("bad_json", "The JSON body is malformed.") from exc
        if not isinstance(data, dict):
            raise BadRequest("bad_json", "The JSON body must be an object.")
        return {str(k): str(v) for k, v in data.items() if isinstance(v, (str, int, float))}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def signed_in_post(request: web.Request, page: str, action: str
                         ) -> tuple[Gateway, RequestContext, Actor, dict[str, str]]:
    """A signed-in person's POST of a gateway page: its fields, once the CSRF token matched;
    the request's audit line names the page and action and says it changes state."""
    gw, ctx = request.app[GATEWAY], request[CTX]
    actor = await authenticate(request, gw, ctx)
    assert actor is not None and ctx.session is not None
    ctx.page, ctx.action, ctx.state_changing = page, action, True
    fields = await read_fields(request)
    check_csrf(request, ctx.session, fields)
    return gw, ctx, actor, fields


def check_csrf(request: web.Request, session: Session, fields: dict[str, str]) -> None:
    sent = request.headers.get("X-CSRF-Token") or fields.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise Forbidden("csrf_failed", "The form expired or did not come from this site.")
