"""The admin API described as OpenAPI 3.1 (served at /_gateway/api/openapi.json)."""

from __future__ import annotations

from typing import Any

STR = {"type": "string"}
BOOL = {"type": "boolean"}
STRS = {"type": "array", "items": STR}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def reply(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def op(summary: str, ok: dict[str, Any], *, body: str | None = None, status: str = "200",
       params: tuple[str, ...] = (), query: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "summary": summary,
        "parameters": [{"name": p, "in": "path", "required": True, "schema": STR}
                       for p in params] +
                      [{"name": q, "in": "query", "required": False, "schema": STR}
                       for q in query],
        "responses": {status: ok, "400": reply("a malformed query", ref("Error")),
                      "401": reply("no session", ref("Error")),
                      "403": reply("not allowed by the policy, or no CSRF token",
                                   ref("Error")),
                      "404": reply("not found", ref("Error")),
                      "422": reply("a field breaks a rule", ref("ValidationError"))},
    }
    if body:
        spec["requestBody"] = {"required": True,
                               "content": {"application/json": {"schema": ref(body)}}}
    return spec


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": STR, "message": STR,
                                               "request_id": STR}},
    "ValidationError": {"type": "object", "properties": {
        "error": STR, "fields": {"type": "object", "additionalProperties": STR}}},
    "User": {"type": "object", "properties": {
        "username": STR, "email": STR, "kind": {"enum": ["customer", "prospect", "staff"]},
        "company": {"type": ["string", "null"]}, "groups": STRS, "first_name": STR,
        "last_name": STR, "mobile": STR, "account_number": STR, "active": BOOL,
        "idle_minutes": {"type": "integer"}, "features": STRS, "tags": STRS,
        "assigned_companies": STRS, "ip_fence": STRS, "allow_assistance": BOOL,
        "display_name": STR}},
    "NewUser": {"type": "object", "required": ["username", "email"], "properties": {
        "username": {"type": "string", "minLength": 5}, "email": STR,
        "kind": {"enum": ["customer", "prospect", "staff"]},
        "company": {"type": ["string", "null"]}, "groups": STRS, "first_name": STR,
        "last_name": STR, "mobile": STR, "account_number": STR, "features": STRS,
        "tags": STRS, "ip_fence": STRS, "assigned_companies": STRS,
        "idle_minutes": {"type": "integer", "minimum": 1, "maximum": 1440}}},
    "UserChange": {"type": "object", "properties": {
        "email": STR, "kind": {"enum": ["customer", "prospect", "staff"]},
        "company": {"type": ["string", "null"]}, "groups": STRS, "active": BOOL,
        "first_name": STR, "last_name": STR, "mobile": STR, "account_number": STR,
        "features": STRS, "tags": STRS, "ip_fence": STRS, "assigned_companies": STRS,
        "allow_assistance": BOOL, "idle_minutes": {"type": "integer"}}},
    "Created": {"type": "object", "properties": {"user": ref("User"),
                                                 "activation_link": STR}},
    "Group": {"type": "object", "required": ["name"],
              "properties": {"name": STR, "description": STR}},
    "Company": {"type": "object", "properties": {
        "id": STR, "name": STR, "allow_assistance": BOOL, "no_impersonation": BOOL}},
    "Assignment": {"type": "object", "required": ["company", "csrs"], "properties": {
        "company": STR, "csrs": STRS, "replace": BOOL}},
    "Session": {"type": "object", "properties": {
        "handle": STR, "user": STR, "client_ip": STR, "created": {"type": "number"},
        "last_seen": {"type": "number"}, "impersonating": {"type": ["object", "null"]}}},
    "TransactionPage": {"type": "object", "properties": {
        "rows": {"type": "array", "items": {"type": "object"}},
        "next": {"type": ["string", "null"]}, "previous": {"type": ["string", "null"]},
        "limit": {"type": "integer"}}},
    "Approval": {"type": "object", "properties": {
        "id": STR, "requester": STR, "requester_name": STR, "buyer": STR, "buyer_name": STR,
        "company": {"type": ["string", "null"]}, "company_name": STR, "reason": STR,
        "status": {"enum": ["pending", "approved", "denied", "used", "expired"]},
        "created_at": {"type": "number"}, "expires_at": {"type": "number"},
        "approver": {"type": ["string", "null"]},
        "decided_at": {"type": ["number", "null"]}, "waiting_since": STR}},
    "StaffAccess": {"type": "object", "properties": {
        "scope": {"enum": ["me", "company"]},
        "visits": {"type": "array", "items": {"type": "object", "properties": {
            "impersonation_id": STR, "buyer": STR, "buyer_name": STR, "staff_name": STR,
            "started_at": {"type": ["string", "null"]},
            "ended_at": {"type": ["string", "null"]},
            "ended_by": {"type": ["string", "null"]},
            "duration_seconds": {"type": ["number", "null"]},
            "reason": {"type": ["string", "null"]}, "pages": {"type": "integer"},
            "actions": {"type": "array", "items": {"type": "object"}}}}}}},
}

DECIDE = op("Approve or deny a pending request (decision: approve or deny); 403 "
            "self_approval for the requester, whatever the policy says",
            reply("decided", ref("Approval")), params=("id", "decision"))
DECIDE["responses"]["409"] = reply("approval_closed: already decided, used or expired",
                                   ref("Error"))

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "csr-gateway admin API", "version": "1",
             "description": "Session cookie authentication; unsafe methods need the "
                            "X-CSRF-Token header from /_gateway/whoami."},
    "paths": {
        "/_gateway/api/users": {
            "get": op("List users", reply("users", {"type": "array", "items": ref("User")}),
                      query=("q", "group", "company")),
            "post": op("Create a user; returns a one-time activation link",
                       reply("created", ref("Created")), body="NewUser", status="201")},
        "/_gateway/api/users/{username}": {
            "get": op("One user", reply("the user", ref("User")), params=("username",)),
            "patch": op("Change a user (not the username)", reply("changed", ref("User")),
                        body="UserChange", params=("username",))},
        "/_gateway/api/users/{username}/reset-link": {
            "post": op("A one-time password reset link", reply("link"), status="201",
                       params=("username",))},
        "/_gateway/api/users/{username}/sessions": {
            "delete": op("Kill switch: end every session of a user", reply("ended"),
                         params=("username",))},
        "/_gateway/api/groups": {
            "get": op("List groups", reply("groups")),
            "post": op("Create a group", reply("created", ref("Group")), body="Group",
                       status="201")},
        "/_gateway/api/groups/{name}": {
            "delete": op("Delete a group (never a built-in one such as CSR)",
                         reply("deleted"), params=("name",))},
        "/_gateway/api/companies": {
            "get": op("List companies with their CSRs", reply("companies")),
            "post": op("Create a company", reply("created", ref("Company")), body="Company",
                       status="201")},
        "/_gateway/api/companies/{id}": {
            "patch": op("Change a company's name or flags", reply("changed", ref("Company")),
                        body="Company", params=("id",))},
        "/_gateway/api/assignments": {
            "post": op("Assign CSRs to a company (replace: exactly these)",
                       reply("the company's CSRs"), body="Assignment")},
        "/_gateway/api/assignments/{company}/{csr}": {
            "delete": op("Unassign a CSR from a company", reply("unassigned"),
                         params=("company", "csr"))},
        "/_gateway/api/sessions": {
            "get": op("Active sessions and impersonations",
                      reply("sessions", {"type": "array", "items": ref("Session")}))},
        "/_gateway/api/sessions/{handle}": {
            "delete": op("End one session", reply("ended"), params=("handle",))},
        "/_gateway/api/transactions": {
            "get": op("The Transaction Log, newest first, in keyset pages (follow `next`)",
                      reply("one page", ref("TransactionPage")),
                      query=("csr", "user", "company", "event", "decision", "from", "to",
                             "sort", "limit", "after", "before"))},
        "/_gateway/api/approvals": {
            "get": op("Four-eyes approval: the pending requests this person may decide "
                      "(the policy's may_approve; never their own)",
                      reply("the queue", {"type": "object", "properties": {
                          "approvals": {"type": "array", "items": ref("Approval")}}}))},
        "/_gateway/api/approvals/{id}/{decision}": {
            "post": DECIDE},
        "/_gateway/api/me/access": {
            "get": op("The signed-in buyer's record of staff access (scope=company: every "
                      "buyer of their company, where the policy allows it)",
                      reply("visits", ref("StaffAccess")), query=("scope",))},
        "/_gateway/api/policy/reload": {
            "post": op("Reload the policy files (validated; a broken file keeps the old)",
                       reply("reloaded"))},
    },
    "components": {"schemas": SCHEMAS},
}
