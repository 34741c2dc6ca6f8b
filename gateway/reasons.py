"""Every audit `reason` code the gateway writes, with what it means: stable, documented."""

from __future__ import annotations

REASONS: dict[str, str] = {
    # allowed
    "ok": "allowed by the policy (or the event succeeded)",
    "public_page": "a page configured `public: true`; no login needed",
    # refused before the policy
    "bad_path": "the path is ambiguous or malformed (see `detail`)",
    "bad_request": "a required field or header is missing",
    "bad_json": "the JSON body is malformed",
    "spoofed_header": "the client sent an identity header spelled with `_`, `.` or other "
                      "separators",
    "method_override": "a `_method`-style override parameter was sent",
    "upgrade_refused": "a protocol upgrade (h2c, WebSocket off a websocket route)",
    "unsupported_http_version": "HTTP/0.9, or HTTP/2 and later in an HTTP/1 request line (505)",
    "malformed_request": "refused by the HTTP parser (framing, smuggling, syntax)",
    "method_not_allowed": "the route does not accept this method, or an unknown method",
    "no_route": "no route matches the path (deny by default)",
    "protected_path_variant": "another spelling of (or a path under) a route of another page "
                              "(case, suffix, compatibility form): the fallback never answers",
    "metrics_not_allowed": "/_gateway/metrics from an address outside ops.metrics_allow",
    "client_disconnected": "the client went away before the answer was sent (499)",
    "body_too_large": "the request body passed limits.max_body_bytes",
    "csrf_failed": "a state-changing gateway request without the session's CSRF token",
    # authentication
    "unauthenticated": "no valid session",
    "bad_credentials": "wrong username or password",
    "throttled": "too many failed logins for this user or address",
    "session_expired": "idle or absolute session lifetime passed",
    "account_inactive": "the account was deactivated or removed",
    "ip_fenced": "the client address is outside the user's IP fence",
    # policy
    "policy_denied": "the policy does not grant this page/action",
    "sensitive_page": "a sensitive page (password, email, 2FA) while impersonating",
    "policy_error": "the policy raised an error; denied (fail closed)",
    "policy_invalid": "a policy reload failed; the old policy keeps serving",
    # impersonation
    "already_impersonating": "a CSR acting for a buyer tried to start another impersonation",
    "not_impersonator": "the user is in no group the policy lets impersonate",
    "csr_inactive": "the CSR's account is inactive",
    "self": "a user tried to impersonate themselves",
    "buyer_inactive": "the buyer's account is inactive",
    "not_customer": "the target is a prospect or staff, not a customer",
    "buyer_is_privileged": "the target is an administrator, CSR or other staff",
    "not_assigned": "the buyer's company is not assigned to the CSR",
    "company_no_impersonation": "the buyer's company is flagged 'no impersonation'",
    "no_consent": "consent is required and neither buyer nor company allows assistance",
    "unknown_buyer": "no such buyer",
    "reason_required": "a reason/ticket is required to start impersonating",
    "impersonation_expired": "the impersonation passed impersonation.max_minutes",
    "buyer_removed": "the impersonated buyer no longer exists",
    "kill_switch": "an administrator ended the session or impersonation",
    # dependencies
    "upstream_unavailable": "the shop did not answer (502)",
    "upstream_timeout": "the shop answered too slowly (504)",
    "upstream_busy": "upstream.max_connections requests already in flight (503)",
    "too_many_concurrent_requests": "upstream.max_per_session requests of this session (or "
                                    "address, without one) already in flight (429)",
    "upstream_aborted": "the shop's response broke off mid-stream",
    "upstream_body_too_large": "a compressed HTML page too large to open for the banner",
    "audit_unavailable": "the audit sink cannot be written; refused (fail closed)",
    "session_store_unavailable": "Redis (sessions) is unreachable (503)",
    "dependency_unavailable": "a database or other dependency failed (503)",
    "validation_failed": "an admin API or form input broke a directory rule (422)",
    "invalid_link": "an activation or reset link that is unknown, used or expired",
    "no_such_user": "the admin API was asked about a user that does not exist",
    "no_such_group": "the admin API was asked about a group that does not exist",
    "no_such_company": "the admin API was asked about a company that does not exist",
    "no_such_session": "the admin API was asked to end a session that does not exist",
    "notify_failed": "the customer notification webhook failed after every retry",
    "internal_error": "an unexpected error; nothing was forwarded (500)",
}
