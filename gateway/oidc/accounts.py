"""From the provider's claims to a directory user: lookup or provisioning, and its groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.context import RequestContext
from gateway.directory.service import DirectoryService
from gateway.directory.validate import ValidationFailed
from gateway.domain import STAFF, User
from gateway.oidc.tokens import TokenRefused

if TYPE_CHECKING:
    from gateway.state import Gateway


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
