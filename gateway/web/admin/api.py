"""The admin JSON API under /_gateway/api/ (documented in api/openapi.json)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from gateway.audit.query import BadQuery, LogPage, LogQuery, log_page
from gateway.core.errors import BadRequest, NotFound
from gateway.directory.invitations import Invitations
from gateway.directory.service import DirectoryService, ValidationFailed, public
from gateway.runtime.context import CTX
from gateway.runtime.reload import reload_policy
from gateway.web.admin import sessions as live
from gateway.web.admin.guard import admit, audit_change
from gateway.web.admin.openapi import OPENAPI

API = "/_gateway/api"


async def body(request: web.Request) -> dict[str, Any]:
    """A JSON object body; anything else is a 422 naming `body`."""
    try:
        data = orjson.loads(await request.read()) if request.can_read_body else {}
    except orjson.JSONDecodeError as exc:
        raise Invalid({"body": "not valid JSON"}) from exc
    if not isinstance(data, dict):
        raise Invalid({"body": "a JSON object is expected"})
    return data


class Invalid(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields


def invalid(fields: dict[str, str]) -> web.Response:
    return web.json_response({"error": "validation_failed", "fields": fields}, status=422)


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=list).decode()


def ok(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=dumps)


def validated(handler: Any) -> Any:
    """422 with the fields named, for any directory rule the input breaks."""
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except (ValidationFailed, Invalid) as exc:
            request[CTX].deny("validation_failed")
            return invalid(exc.fields)
    return run


async def list_users(request: web.Request) -> web.StreamResponse:
    gw, _ = await admit(request, "users")
    q = request.query.get("q", "").lower()
    group, company = request.query.get("group"), request.query.get("company")
    users = [u for u in gw.directory.snapshot.users.values()
             if (not q or q in f"{u.username} {u.display_name} {u.email}".lower())
             and (not group or group in u.groups) and (not company or u.company == company)]
    return ok([public(u) for u in sorted(users, key=lambda u: u.username)])


async def get_user(request: web.Request) -> web.StreamResponse:
    gw, _ = await admit(request, "users")
    user = gw.directory.snapshot.user(request.match_info["username"])
    if user is None:
        raise NotFound("no_such_user", "No such user.")
    return ok(public(user))


async def create_user(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "users")
    data = await body(request)
    _, after = await DirectoryService(gw.directory).create_user(data, actor.user)
    token = await Invitations(gw.directory).issue(data["username"], "activate")
    audit_change(request, actor, "users", "create", None, after, user=data["username"])
    link = f"/_gateway/activate?token={token}"
    return ok({"user": after, "activation_link": link}, status=201)


async def update_user(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "users")
    name = request.match_info["username"]
    data = await body(request)
    try:
        before, after = await DirectoryService(gw.directory).update_user(name, data)
    except KeyError as exc:
        raise NotFound("no_such_user", "No such user.") from exc
    audit_change(request, actor, "users", "update", before, after, user=name)
    return ok(after)


async def reset_link(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "users")
    name = request.match_info["username"]
    if gw.directory.snapshot.user(name) is None:
        raise NotFound("no_such_user", "No such user.")
    token = await Invitations(gw.directory).issue(name, "reset")
    audit_change(request, actor, "users", "password_reset_link", None, {"user": name},
                 user=name)
    return ok({"reset_link": f"/_gateway/reset?token={token}"}, status=201)


async def list_groups(request: web.Request) -> web.StreamResponse:
    gw, _ = await admit(request, "groups")
    return ok(await DirectoryService(gw.directory).groups())


async def create_group(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "groups")
    data = await body(request)
    _, after = await DirectoryService(gw.directory).create_group(
        str(data.get("name", "")), str(data.get("description", "")))
    audit_change(request, actor, "groups", "create", None, after)
    return ok(after, status=201)


async def delete_group(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "groups")
    try:
        before, _ = await DirectoryService(gw.directory).delete_group(request.match_info["name"])
    except KeyError as exc:
        raise NotFound("no_such_group", "No such group.") from exc
    audit_change(request, actor, "groups", "delete", before, None)
    return ok({"deleted": request.match_info["name"]})


async def list_companies(request: web.Request) -> web.StreamResponse:
    gw, _ = await admit(request, "companies")
    snapshot = gw.directory.snapshot
    return ok([{"id": c.id, "name": c.name, "allow_assistance": c.allow_assistance,
                "no_impersonation": c.no_impersonation,
                "csrs": sorted(u.username for u in snapshot.users.values()
                               if c.id in u.assigned_companies)}
               for c in sorted(snapshot.companies.values(), key=lambda c: c.name)])


async def save_company(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "companies")
    data = await body(request)
    creating = "id" not in request.match_info
    if not creating:
        data["id"] = request.match_info["id"]
    try:
        before, after = await DirectoryService(gw.directory).save_company(data,
                                                                          creating=creating)
    except KeyError as exc:
        raise NotFound("no_such_company", "No such company.") from exc
    audit_change(request, actor, "companies", "create" if creating else "update", before, after)
    return ok(after, status=201 if creating else 200)


async def assign(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "assignments")
    data = await body(request)
    csrs = data.get("csrs", [])
    if not isinstance(csrs, list) or not all(isinstance(c, str) for c in csrs):
        raise Invalid({"csrs": "a list of CSR usernames"})
    before, after = await DirectoryService(gw.directory).assign(
        str(data.get("company", "")), csrs, replace=bool(data.get("replace", False)))
    audit_change(request, actor, "assignments", "assign", before, after)
    return ok(after)


async def unassign(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "assignments")
    company, csr = request.match_info["company"], request.match_info["csr"]
    before, _ = await DirectoryService(gw.directory).unassign(company, csr)
    audit_change(request, actor, "assignments", "unassign", before, None, user=csr)
    return ok({"company": company, "unassigned": csr})


async def list_sessions(request: web.Request) -> web.StreamResponse:
    gw, _ = await admit(request, "sessions")
    return ok([live.describe(s) for s in await gw.sessions.all()])


async def end_session(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "sessions")
    ended = await live.end_sessions(gw, request[CTX], session_handle=request.match_info["handle"])
    if not ended:
        raise NotFound("no_such_session", "No such session.")
    audit_change(request, actor, "sessions", "end", ended, None, user=ended[0]["user"])
    return ok({"ended": ended})


async def end_user_sessions(request: web.Request) -> web.StreamResponse:
    """The kill switch: every session of a user ends now, impersonations included."""
    gw, actor = await admit(request, "sessions")
    name = request.match_info["username"]
    ended = await live.end_sessions(gw, request[CTX], username=name)
    audit_change(request, actor, "sessions", "end_all", ended, None, user=name)
    return ok({"ended": ended})


async def policy_reload(request: web.Request) -> web.StreamResponse:
    gw, actor = await admit(request, "policy")
    done = reload_policy(gw, "admin_api")
    if done and gw.directory.board is not None:
        await gw.directory.board.publish_policy()
    audit_change(request, actor, "policy", "reload", None, {"policy_rev": gw.policy.rev,
                                                            "ok": done})
    if not done:
        error = gw.policy.last_error
        return web.json_response({"reloaded": False, "policy_rev": gw.policy.rev,
                                  "error": str(error)}, status=422)
    return ok({"reloaded": True, "policy_rev": gw.policy.rev})


async def list_transactions(request: web.Request) -> web.StreamResponse:
    """The Transaction Log as JSON: the same filters and keyset pages as the admin page."""
    gw, _ = await admit(request, "transactions")
    try:
        query = LogQuery.parse(dict(request.query))
        gw.audit.flush()
        try:
            found = log_page([gw.settings.audit.path], query)
        except OSError:
            found = LogPage([], None, None)
    except BadQuery as exc:
        raise BadRequest("bad_request", str(exc)) from exc
    base = f"{API}/transactions?"
    return ok({"rows": [{k: v for k, v in r.items() if k != "summary"} for r in found.rows],
               "next": found.next and base + urlencode(query.params(after=found.next,
                                                                    before=None)),
               "previous": found.previous and base + urlencode(
                   query.params(before=found.previous, after=None)),
               "limit": query.limit})


async def openapi(request: web.Request) -> web.StreamResponse:
    """The API's map is for administrators only, like the API itself."""
    await admit(request, "openapi")
    return ok(OPENAPI)


class _Router:
    """app.router with every handler wrapped in `validated`."""

    def __init__(self, app: web.Application) -> None:
        self.router = app.router

    def __getattr__(self, name: str) -> Any:
        add = getattr(self.router, name)
        return lambda path, handler: add(path, validated(handler))


def add_routes(app: web.Application) -> None:
    r = _Router(app)
    r.add_get(f"{API}/openapi.json", openapi)
    r.add_get(f"{API}/users", list_users)
    r.add_post(f"{API}/users", create_user)
    r.add_get(f"{API}/users/{{username}}", get_user)
    r.add_patch(f"{API}/users/{{username}}", update_user)
    r.add_post(f"{API}/users/{{username}}/reset-link", reset_link)
    r.add_delete(f"{API}/users/{{username}}/sessions", end_user_sessions)
    r.add_get(f"{API}/groups", list_groups)
    r.add_post(f"{API}/groups", create_group)
    r.add_delete(f"{API}/groups/{{name}}", delete_group)
    r.add_get(f"{API}/companies", list_companies)
    r.add_post(f"{API}/companies", save_company)
    r.add_patch(f"{API}/companies/{{id}}", save_company)
    r.add_post(f"{API}/assignments", assign)
    r.add_delete(f"{API}/assignments/{{company}}/{{csr}}", unassign)
    r.add_get(f"{API}/sessions", list_sessions)
    r.add_delete(f"{API}/sessions/{{handle}}", end_session)
    r.add_post(f"{API}/policy/reload", policy_reload)
    r.add_get(f"{API}/transactions", list_transactions)


__all__ = ["BadRequest", "add_routes"]
