"""The browser's trip to the OpenID provider and back: redirect URI, flow cookie, proof."""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any

from aiohttp import web

from gateway.core.errors import NotFound
from gateway.oidc.client import OidcLogin, pkce_pair
from gateway.oidc.flow import COOKIE, COOKIE_PATH, Flow, seal
from gateway.request import hygiene
from gateway.runtime.gateway import Gateway
from gateway.runtime.responses import see_other

CALLBACK = "/_gateway/oidc/callback"


def oidc_of(gw: Gateway) -> OidcLogin:
    if gw.oidc is None:
        raise NotFound("no_route")
    return gw.oidc


def base_url(request: web.Request, gw: Gateway) -> str:
    """public_url, else this request's scheme and Host: as a trusted proxy forwarded them
    (X-Forwarded-Proto/Host, or `Forwarded`), otherwise the gateway's own."""
    if gw.settings.public_url:
        return gw.settings.public_url.rstrip("/")
    return hygiene.external_origin(request.scheme, request.host, request.headers,
                                   hygiene.from_trusted_proxy(request.remote,
                                                              gw.settings.trusted_proxies))


async def redirect_to_provider(request: web.Request, gw: Gateway, flow: Flow,
                               fresh_login: bool) -> web.Response:
    verifier, challenge = pkce_pair()
    flow = dataclasses.replace(flow, verifier=verifier)
    url = await oidc_of(gw).authorize_url(base_url(request, gw) + CALLBACK, flow.state,
                                        flow.nonce, challenge, fresh_login, mfa=flow.mfa)
    response = see_other(url)
    response.set_cookie(COOKIE, seal(gw.settings, flow), httponly=True, samesite="Lax",
                        secure=gw.settings.sessions.secure_cookie, path=COOKIE_PATH,
                        max_age=600)
    return response


def new_flow(next_path: str, **continuation: Any) -> Flow:
    return Flow(state=secrets.token_urlsafe(24), nonce=secrets.token_urlsafe(24),
                verifier="", next=next_path, started=time.time(), **continuation)


def proof_of(claims: dict[str, Any]) -> dict[str, Any]:
    amr = claims.get("amr")
    acr = claims.get("acr")
    auth_time = claims.get("auth_time")
    return {"amr": tuple(str(a) for a in amr) if isinstance(amr, list) else (),
            "acr": acr if isinstance(acr, str) else "",
            "auth_time": float(auth_time) if isinstance(auth_time, (int, float))
            else time.time()}
