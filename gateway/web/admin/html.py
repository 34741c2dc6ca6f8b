"""Admin pages under /_gateway/admin/: plain HTML forms, CSRF on each, no JavaScript needed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.audit.query import (
    SORTS,
    BadQuery,
    LogPage,
    LogQuery,
    export_csv,
    export_rows,
    log_page,
)
from gateway.core.domain import ADMIN_GROUP, CSR_GROUP, USER_KINDS, User
from gateway.core.errors import BadRequest, NotFound
from gateway.core.i18n import N_, gettext, ngettext
from gateway.directory.invitations import Invitations
from gateway.directory.service import DirectoryService, ValidationFailed
from gateway.policylab.harness import Harness
from gateway.policylab.matrix import access_matrix, cell
from gateway.runtime.context import CTX
from gateway.runtime.gateway import Gateway
from gateway.runtime.responses import render, see_other
from gateway.web.admin import sessions as live
from gateway.web.admin.guard import admit, audit_change
from gateway.web.forms import read_fields
from gateway.web.select_user import KINDS as KIND_WORDS

ADMIN = "/_gateway/admin"
LISTS = ("groups", "features", "tags", "ip_fence")
EVENTS = {"request": N_("Page or action"), "login": N_("Log in"),
          "login_failed": N_("Failed log in"), "logout": N_("Log out"),
          "session_expired": N_("Session expired"),
          "impersonation_start": N_("Impersonation starts"),
          "impersonation_stop": N_("Impersonation stops"),
          "impersonation_denied": N_("Impersonation refused"),
          "impersonation_end": N_("Impersonation ends (expired or ended by an administrator)"),
          "policy_reload": N_("Policy reloaded"),
          "policy_reload_failed": N_("Policy reload failed"),
          "admin_change": N_("Administration change")}
# A form field as the form labels it, for "Please correct: ..." (the API keeps the keys).
FIELDS = {"username": N_("Username"), "email": N_("Email"), "first_name": N_("First name"),
          "last_name": N_("Last name"), "mobile": N_("Mobile"), "kind": N_("Kind"),
          "company": N_("Company"), "idle_minutes": N_("Session inactivity (minutes)"),
          "groups": N_("Groups"), "features": N_("Features"), "tags": N_("Tags"),
          "ip_fence": N_("Allowed networks"), "account_number": N_("Account number"),
          "id": N_("Id"), "name": N_("Name"), "active": N_("Active")}


def csr_admin_warning(user: User) -> str | None:
    """A CSR who is also an Administrator has more rights than intended."""
    if CSR_GROUP in user.groups and ADMIN_GROUP in user.groups:
        return gettext("%(user)s is both CSR and Administrator: more rights than intended "
                       "(while impersonating, still only what the policy grants a CSR)") % {
            "user": user.username}
    return None


async def _posted(request: web.Request) -> dict[str, str]:
    return await read_fields(request) if request.method == "POST" else {}


async def _ticked_groups(request: web.Request) -> list[str] | None:
    """The group checkboxes ticked, or None when the form did not show them."""
    form = await request.post()
    if "groups_shown" not in form:
        return None
    return [str(v) for v in form.getall("groups", [])]


def _users(gw: Gateway) -> list[User]:
    return sorted(gw.directory.snapshot.users.values(), key=lambda u: u.username)


async def index(request: web.Request) -> web.StreamResponse:
    gw, _ = await admit(request, "users")
    warnings = [w for u in _users(gw) if (w := csr_admin_warning(u))]
    return render(request, "admin/index.html", warnings=warnings)


def _form_user(fields: dict[str, str], groups: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {k: v.strip() for k, v in fields.items()
                            if k not in ("csrf_token", *LISTS, "idle_minutes", "active",
                                         "company", "groups_shown")}
    if fields.get("group"):
        data["groups"] = [fields["group"]]
        data.pop("group", None)
    for key in LISTS:
        if key in fields:
            data[key] = [v.strip() for v in fields[key].replace("\n", ",").split(",")
                         if v.strip()]
    if fields.get("idle_minutes", "").strip():
        value = fields["idle_minutes"].strip()
        data["idle_minutes"] = int(value) if value.isdigit() else value
    if "company" in fields:
        data["company"] = fields["company"] or None
    if groups is not None:
        data["groups"] = groups
    return data


async def users(request: web.Request) -> web.StreamResponse:
    posted = await _posted(request)
    gw, actor = await admit(request, "users", posted)
    q = request.query.get("q", "").lower()
    found = [u for u in _users(gw) if not q or q in
             f"{u.username} {u.display_name} {u.email} {u.account_number}".lower()]
    created = errors = None
    values: dict[str, str] = {}
    ticked: list[str] = []
    if request.method == "POST":
        values = posted
        shown = await _ticked_groups(request)
        ticked = shown or []
        data = _form_user(posted, shown)
        try:
            _, after = await DirectoryService(gw.directory).create_user(data, actor.user)
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            token = await Invitations(gw.directory).issue(data["username"], "activate")
            audit_change(request, actor, "users", "create", None, after, user=data["username"])
            link = f"{request.scheme}://{request.host}/_gateway/activate?token={token}"
            made = gw.directory.snapshot.user(data["username"])
            created = {"user": data["username"], "link": link,
                       "warning": csr_admin_warning(made) if made else None}
            found, values, ticked = _users(gw), {}, []
    return render(request, "admin/users.html", users=found, q=q, created=created,
                  errors=errors or {}, values=values, kinds=USER_KINDS, ticked=ticked,
                  kind_words=KIND_WORDS,
                  groups=sorted(await _group_names(gw)), fields=FIELDS,
                  companies=sorted(gw.directory.snapshot.companies.values(),
                                   key=lambda c: c.name), csr_admin_warning=csr_admin_warning,
                  status=422 if errors else 200)


async def _group_names(gw: Gateway) -> list[str]:
    return [g["name"] for g in await DirectoryService(gw.directory).groups()]


async def user_page(request: web.Request) -> web.StreamResponse:
    fields = await _posted(request)
    gw, actor = await admit(request, "users", fields)
    name = request.match_info["username"]
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = _form_user(fields, await _ticked_groups(request))
        data["active"] = fields.get("active") == "on"
        data.pop("username", None)
        try:
            before, after = await DirectoryService(gw.directory).update_user(name, data)
            audit_change(request, actor, "users", "update", before, after, user=name)
        except ValidationFailed as exc:
            errors = exc.fields
        except KeyError as exc:
            raise NotFound("no_such_user", "No such user.") from exc
    user = gw.directory.snapshot.user(name)
    if user is None:
        raise NotFound("no_such_user", "No such user.")
    sessions = [live.describe(s) for s in await gw.sessions.all() if s.username == name]
    return render(request, "admin/user.html", user=user, errors=errors, kinds=USER_KINDS,
                  kind_words=KIND_WORDS,
                  groups=sorted(await _group_names(gw)), sessions=sessions, fields=FIELDS,
                  companies=sorted(gw.directory.snapshot.companies.values(),
                                   key=lambda c: c.name), warning=csr_admin_warning(user),
                  status=422 if errors else 200)


async def user_companies(request: web.Request) -> web.StreamResponse:
    """The Assigned Companies page of one CSR (linked from every CSR name)."""
    gw, _ = await admit(request, "assignments")
    user = gw.directory.snapshot.user(request.match_info["username"])
    if user is None:
        raise NotFound("no_such_user", "No such user.")
    companies = [gw.directory.snapshot.companies[c] for c in user.assigned_companies
                 if c in gw.directory.snapshot.companies]
    return render(request, "admin/user_companies.html", user=user, companies=companies)


async def assign_csrs(request: web.Request) -> web.StreamResponse:
    """Select Company, tick CSRs (Select All / Clear All), Assign Selected CSRs."""
    posted = await _posted(request)
    gw, actor = await admit(request, "assignments", posted)
    snapshot = gw.directory.snapshot
    fields = posted if request.method == "POST" else dict(request.query)
    ticked: set[str] | None = None
    message = None
    if request.method == "POST":
        form = await request.post()
        ticked = {str(v) for v in form.getall("csr", [])}
        csrs = [u.username for u in _users(gw) if CSR_GROUP in u.groups]
        if fields.get("do") == "select_all":
            ticked = set(csrs)
        elif fields.get("do") == "clear_all":
            ticked = set()
        elif fields.get("do") == "show":  # another company chosen: its CSRs ticked
            ticked = None
        elif fields.get("do") == "assign" and fields.get("company"):
            before, after = await DirectoryService(gw.directory).assign(
                fields["company"], sorted(ticked), replace=True)
            audit_change(request, actor, "assignments", "assign", before, after)
            name = snapshot.company_name(fields["company"])
            message = ngettext("Assigned %(count)s CSR to %(company)s.",
                               "Assigned %(count)s CSRs to %(company)s.", len(ticked)) % {
                "count": len(ticked), "company": name}
            snapshot, ticked = gw.directory.snapshot, None
    company = fields.get("company", "")
    csr_users = [u for u in _users(gw) if CSR_GROUP in u.groups]
    if ticked is None:
        ticked = {u.username for u in csr_users if company in u.assigned_companies}
    return render(request, "admin/assign_csrs.html", companies=sorted(
        snapshot.companies.values(), key=lambda c: c.name), company=company, csrs=csr_users,
        ticked=ticked, message=message)


async def groups(request: web.Request) -> web.StreamResponse:
    fields = await _posted(request)
    gw, actor = await admit(request, "groups", fields)
    error = None
    if request.method == "POST":
        service = DirectoryService(gw.directory)
        try:
            if fields.get("delete"):
                before, _ = await service.delete_group(fields["delete"])
                audit_change(request, actor, "groups", "delete", before, None)
            else:
                _, after = await service.create_group(fields.get("name", "").strip(),
                                                      fields.get("description", ""))
                audit_change(request, actor, "groups", "create", None, after)
        except ValidationFailed as exc:
            error = "; ".join(gettext(v) for v in exc.fields.values())
        except KeyError:
            error = gettext("There is no such group; check the name in the Groups list.")
    bench = Harness(gw.settings, directory=gw.directory.snapshot, engine=gw.policy,
                  routes=gw.routes)
    matrix = access_matrix(bench)
    group = request.query.get("group", "")
    if group not in matrix.rows:  # an unknown group shows them all
        group = ""
    return render(request, "admin/groups.html", groups=await DirectoryService(
        gw.directory).groups(), error=error, matrix=matrix, labels=matrix.showing(group),
        cell=cell, group=group, status=422 if error else 200)


async def companies(request: web.Request) -> web.StreamResponse:
    fields = await _posted(request)
    gw, actor = await admit(request, "companies", fields)
    errors: dict[str, str] = {}
    if request.method == "POST":
        creating = fields.get("mode") == "create"
        data: dict[str, Any] = {"id": fields.get("id", "").strip(),
                                "allow_assistance": fields.get("allow_assistance") == "on",
                                "no_impersonation": fields.get("no_impersonation") == "on"}
        if fields.get("name") or creating:
            data["name"] = fields.get("name", "").strip()
        try:
            before, after = await DirectoryService(gw.directory).save_company(
                data, creating=creating)
            audit_change(request, actor, "companies", "create" if creating else "update",
                         before, after)
        except ValidationFailed as exc:
            errors = exc.fields
        except KeyError:
            errors = {"id": N_("no such company")}
    snapshot = gw.directory.snapshot
    return render(request, "admin/companies.html", errors=errors, fields=FIELDS, companies=sorted(
        snapshot.companies.values(), key=lambda c: c.name), users=list(
        snapshot.users.values()), status=422 if errors else 200)


async def sessions_page(request: web.Request) -> web.StreamResponse:
    fields = await _posted(request)
    gw, actor = await admit(request, "sessions", fields)
    ended = None
    if request.method == "POST":
        if fields.get("user"):
            ended = await live.end_sessions(gw, request[CTX], username=fields["user"])
        elif fields.get("handle"):
            ended = await live.end_sessions(gw, request[CTX], session_handle=fields["handle"])
        audit_change(request, actor, "sessions", "end", ended, None,
                     user=fields.get("user") or None)
    rows = sorted((live.describe(s) for s in await gw.sessions.all()),
                  key=lambda d: -d["last_seen"])
    return render(request, "admin/sessions.html", rows=rows, ended=ended)


def _log_query(request: web.Request, max_limit: int = 1000) -> LogQuery:
    return LogQuery.parse(dict(request.query), max_limit=max_limit)


async def transactions(request: web.Request) -> web.StreamResponse:
    """The Transaction Log: filters, keyset pages of 100, export links for the same view."""
    gw, _ = await admit(request, "transactions")
    error = None
    try:
        query = _log_query(request)
    except BadQuery as exc:
        error, query = str(exc), LogQuery({})
    gw.audit.flush()
    try:
        found = log_page([gw.settings.audit.path], query)
    except BadQuery as exc:
        error, query = str(exc), LogQuery(query.equals, query.since, query.until, query.sort)
        found = log_page([gw.settings.audit.path], query)
    except OSError:
        found = LogPage([], None, None)
    snapshot = gw.directory.snapshot
    csrs = sorted(u.username for u in snapshot.users.values() if CSR_GROUP in u.groups)
    here = query.params(after=None, before=None)
    return render(request, "admin/transactions.html", rows=found.rows, query=query,
                  csrs=csrs, sorts=SORTS, events=EVENTS, error=error,
                  companies=sorted(snapshot.companies.values(), key=lambda c: c.name),
                  link=lambda **change: "?" + urlencode(query.params(**change)),
                  export=urlencode(here), page=found, status=400 if error else 200)


async def transactions_csv(request: web.Request) -> web.StreamResponse:
    """The filtered Transaction Log as CSV, every matching line, in the chosen order."""
    gw, _ = await admit(request, "transactions")
    try:
        query = _log_query(request)
    except BadQuery as exc:
        raise BadRequest("bad_request", str(exc)) from exc
    gw.audit.flush()
    try:
        records = export_rows([gw.settings.audit.path], query)
    except OSError:
        records = []
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": 'attachment; filename="transactions.csv"'})
    await response.prepare(request)
    for line in export_csv(records):
        await response.write(line.encode())
    await response.write_eof()
    return response


async def to_index(request: web.Request) -> web.StreamResponse:
    await admit(request, "users")
    return see_other(f"{ADMIN}/")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{ADMIN}/", index)
    r.add_get(ADMIN, to_index)
    for path, handler in ((f"{ADMIN}/users", users), (f"{ADMIN}/users/{{username}}", user_page),
                          (f"{ADMIN}/assign-csrs", assign_csrs), (f"{ADMIN}/groups", groups),
                          (f"{ADMIN}/companies", companies), (f"{ADMIN}/sessions", sessions_page)):
        r.add_get(path, handler)
        r.add_post(path, handler)
    r.add_get(f"{ADMIN}/users/{{username}}/companies", user_companies)
    r.add_get(f"{ADMIN}/transactions", transactions)
    r.add_get(f"{ADMIN}/transactions.csv", transactions_csv)
