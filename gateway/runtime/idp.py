"""What the identity provider says of a staff user: lookup or provisioning at login, its
groups, and the refresh grant that re-reads them (or ends the session) later."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from gateway.core.domain import STAFF, User
from gateway.directory.service import DirectoryService
from gateway.directory.validate import ValidationFailed
from gateway.oidc.tokens import TokenRefused
from gateway.runtime import impersonation
from gateway.runtime.context import RequestContext
from gateway.sessions.store import Session, update

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway


def mapped_groups(gw: Gateway, claims: dict[str, Any]) -> list[str]:
    """The gateway groups the IdP's groups map to; an IdP group not in the map gives none."""
    assert gw.oidc is not None
    cfg = gw.oidc.settings
    raw = claims.get(cfg.groups_claim) or []
    names = [raw] if isinstance(raw, str) else [g for g in raw if isinstance(g, str)]
    return sorted({cfg.groups[g] for g in names if g in cfg.groups})


def username_of(gw: Gateway, claims: dict[str, Any]) -> str:
    assert gw.oidc is not None
    name = claims.get(gw.oidc.settings.username_claim)
    if not isinstance(name, str) or not name:
        raise TokenRefused("oidc_unknown_user",
                           f"no {gw.oidc.settings.username_claim} claim")
    return name


async def login_user(gw: Gateway, ctx: RequestContext, claims: dict[str, Any]) -> User:
    """The directory user these claims name, created first when provision is `create`."""
    assert gw.oidc is not None
    username = username_of(gw, claims)
    groups = mapped_groups(gw, claims)
    if not groups:
        raise TokenRefused("oidc_group_unmapped", f"{username}: no mapped IdP group")
    user = gw.directory.snapshot.user(username)
    if user is None and gw.oidc.settings.provision == "create":
        await _provision(gw, ctx, username, claims, groups)
        user = gw.directory.snapshot.user(username)
    if user is None:
        raise TokenRefused("oidc_unknown_user", f"{username}: not in the directory")
    if not user.active:
        raise TokenRefused("account_inactive", f"{username}: inactive")
    await apply_groups(gw, ctx, username, claims, at="login")
    found = gw.directory.snapshot.user(username)
    assert found is not None
    return found


async def _provision(gw: Gateway, ctx: RequestContext, username: str,
                     claims: dict[str, Any], groups: list[str]) -> None:
    data = {"username": username, "email": str(claims.get("email") or ""), "kind": STAFF,
            "groups": groups, "first_name": str(claims.get("given_name") or ""),
            "last_name": str(claims.get("family_name") or "")}
    try:
        await DirectoryService(gw.directory).create_user(data, created_by=None)
    except ValidationFailed as exc:
        raise TokenRefused("oidc_unknown_user", f"{username}: cannot create: {exc}") from exc
    gw.audit.emit("admin_change", request_id=ctx.request_id, actor=username, user=username,
                  target="users", action="oidc_provisioned", reason="ok", decision="allow",
                  client_ip=ctx.client_ip, detail=f"groups {','.join(groups)}")


async def apply_groups(gw: Gateway, ctx: RequestContext, username: str,
                       claims: dict[str, Any], *, at: str) -> None:
    """The IdP owns the groups its map names: they follow it; other groups stay local."""
    assert gw.oidc is not None
    user = gw.directory.snapshot.user(username)
    if user is None:
        raise TokenRefused("oidc_unknown_user", f"{username}: gone from the directory")
    mapped = mapped_groups(gw, claims)
    owned = set(gw.oidc.settings.groups.values())
    wanted = [g for g in user.groups if g not in owned] + mapped
    if sorted(wanted) != sorted(user.groups):
        await _set_groups(gw, ctx, user, wanted, at)
    if not mapped:  # the groups went first, so no other session of theirs keeps them
        raise TokenRefused("oidc_group_unmapped", f"{username}: no mapped IdP group")


async def _set_groups(gw: Gateway, ctx: RequestContext, user: User, wanted: list[str],
                      at: str) -> None:
    username = user.username
    await DirectoryService(gw.directory).update_user(username, {"groups": wanted})
    gw.audit.emit("admin_change", request_id=ctx.request_id, actor=username, user=username,
                  target="users", action="oidc_groups", reason="ok", decision="allow",
                  client_ip=ctx.client_ip,
                  detail=f"at {at}: {','.join(user.groups)} -> {','.join(wanted)}")


async def revalidate(gw: Gateway, ctx: RequestContext, session: Session,
                     now: float) -> Session | None:
    """Every refresh_seconds the provider is asked again (refresh grant): its groups
    replace the mapped ones, and a refusal (user disabled, session revoked) ends ours."""
    idp = session.idp
    assert gw.oidc is not None
    if idp is None or now - idp.checked_at < gw.oidc.settings.refresh_seconds:
        return session
    async with gw.sessions.refresh_guard.hold(session.id):
        current = await gw.sessions.get_fresh(session.id)
        if current is None or current.idp is None:
            return None
        if now - current.idp.checked_at < gw.oidc.settings.refresh_seconds:
            return current
        return await _refresh(gw, ctx, current)


async def _refresh(gw: Gateway, ctx: RequestContext, session: Session) -> Session | None:
    idp = session.idp
    assert idp is not None and gw.oidc is not None
    try:
        if not idp.refresh_token:
            raise TokenRefused("oidc_refresh_unavailable", "no refresh token")
        answer = await gw.oidc.token_grant({"grant_type": "refresh_token",
                                            "refresh_token": idp.refresh_token})
        claims = await gw.oidc.id_claims(str(answer["id_token"]), None)
        if claims.get("sub") != idp.sub:
            raise TokenRefused("oidc_token_invalid", "refresh answered for someone else")
        await apply_groups(gw, ctx, session.username, claims, at="refresh")
    except TokenRefused as refused:
        await impersonation.expire(gw, ctx, session, refused.reason)
        return None
    link = dataclasses.replace(
        idp, checked_at=time.time(),
        refresh_token=str(answer.get("refresh_token") or idp.refresh_token),
        id_token=str(answer["id_token"]))
    # over whatever a parallel request wrote meanwhile (a touch): the new token must stay
    return await update(gw.sessions, session,
                        lambda current: dataclasses.replace(current, idp=link))
