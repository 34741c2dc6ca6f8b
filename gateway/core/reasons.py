"""Every audit `reason` code the gateway writes, with what it means: stable, documented."""

from __future__ import annotations

from gateway.core.i18n import N_, gettext

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
    "headers_too_large": "the request headers passed the parser's limit (431)",
    "unavailable": "the gateway cannot serve the request right now (503)",
    "impersonation_ended": "the running impersonation ended before this request",
    "read_only_impersonation": "a state-changing request while the impersonation is in read "
                               "mode (impersonation.default_mode: read)",
    "write_not_allowed": "the policy (`allow_write`) does not let this CSR switch to write mode",
    "not_impersonating": "a mode switch asked while not acting for a buyer (409)",
    "masked": "the policy (`unmask`) leaves the field masked (never a request's reason)",
    "masking_body_too_large": "a JSON response to mask is larger than masking.json_max_bytes "
                              "(502; nothing sent)",
    "masking_needs_proxy": "forward-auth asked about a masked page for an impersonating CSR: "
                           "only the proxy can mask the answer, so it is refused (403)",
    "masking_unsupported": "a response on a masked page the gateway cannot mask: an unknown "
                           "content encoding or content type, or bad JSON (502; nothing sent)",
    # staff sign-in (OpenID Connect), step-up and MFA
    "local_passwords_disabled": "the password form is off (login.local_passwords: false) and "
                                "the user is not flagged break-glass",
    "idp_unavailable": "the identity provider did not answer (discovery, keys or token) (503)",
    "idp_misconfigured": "the identity provider's answer does not fit the configuration",
    "idp_backchannel_logout": "the identity provider ended the session (back-channel logout)",
    "oidc_state_mismatch": "the callback's state is not the one this browser started with",
    "oidc_nonce_mismatch": "the ID token's nonce is not the one this login sent",
    "oidc_token_invalid": "the ID token's signature, issuer or audience is wrong",
    "oidc_token_expired": "the ID token expired (beyond the allowed clock skew)",
    "oidc_replayed": "a callback or logout token that was already used",
    "oidc_unknown_user": "the provider's user is not in the directory (provision: existing)",
    "oidc_group_unmapped": "none of the user's provider groups maps to a gateway group",
    "oidc_provider_refused": "the provider answered the login with an error",
    "step_up_required": "starting an impersonation needs a fresher authentication",
    "step_up_stale": "the re-authentication the provider returned is not fresh",
    "step_up_other_user": "a different person re-authenticated than the one logged in",
    "mfa_required": "the policy asks for a second factor before acting for this buyer",
    "mfa_not_enrolled": "a second factor is required but the local account has no "
                        "authenticator app set up (enrol on the account page)",
    "totp_invalid": "the authenticator-app or recovery code is wrong",
    "totp_replayed": "an authenticator-app code already used (the same time step)",
    "recovery_used": "a recovery code that was already used",
    "totp_pending_expired": "the second login page's state is forged, expired (5 minutes) or "
                            "from another address",
    "totp_enrolled_already": "an authenticator app is set up already; disable it first",
    # four-eyes approval and volume limits
    "approval_pending": "the start waits for another person's approval (a request was filed)",
    "self_approval": "a CSR tried to decide their own approval request (refused whatever the "
                     "policy says)",
    "not_approver": "the policy's may_approve does not let this person decide the request",
    "approval_closed": "the request was already decided, used or expired (409)",
    "no_such_request": "no approval request with this id (or not the asker's own)",
    "limit_buyers_per_hour": "a block limit: the CSR acted for impersonation.limits."
                             "buyers_per_hour distinct buyers in the last hour",
    "limit_actions_per_hour": "a block limit: the CSR passed impersonation.limits."
                              "actions_per_hour state-changing actions in the last hour",
    "limit_impersonations_per_day": "a block limit: the CSR started impersonation.limits."
                                    "impersonations_per_day impersonations in the last day",
    "limit_exceeded": "an `impersonation_limit` event: a CSR went past a volume limit",
    "limits_unavailable": "the volume limits' counts (Redis) cannot be read; a start under a "
                          "block limit is refused (503)",
}


# What a person reads when refused: one sentence, what happened and what to do. `{page}` is
# the page's configured title (or "This page"), `{buyer}` whom a CSR acts for. A reason
# missing here keeps the words its raiser gave (they name the field, e.g. a bad filter).
SENTENCES: dict[str, str] = {
    "bad_path": N_("This address is malformed or ambiguous; check the link or start again from "
                   "the storefront."),
    "bad_json": N_("The data sent was not valid JSON; correct it and send it again."),
    "spoofed_header": N_("The request carried a header only the gateway may set; send it without "
                         "that header."),
    "method_override": N_("The request asked to change its method, which the gateway does not "
                          "allow; send it with the real method."),
    "upgrade_refused": N_("This address does not accept a connection upgrade; open it as a normal "
                          "page."),
    "unsupported_http_version": N_("This HTTP version is not supported; use HTTP/1.1 or newer."),
    "malformed_request": N_("The request could not be read; try again, and tell support if it "
                            "keeps happening."),
    "method_not_allowed": N_("{page} cannot be used this way; go back and use its buttons or "
                             "links."),
    "no_route": N_("There is no page at this address; check the link or go back to the "
                   "storefront."),
    "body_too_large": N_("What you sent is larger than the gateway accepts; send something "
                         "smaller."),
    "headers_too_large": N_("The request headers are too large; clear this site's cookies and try "
                            "again."),
    "csrf_failed": N_("The form expired or did not come from this site; go back, reload the page "
                      "and send it again."),
    "unauthenticated": N_("You are not logged in; log in and try again."),
    "bad_credentials": N_("The username or password is wrong; check them and try again."),
    "throttled": N_("There were too many failed attempts; wait a few minutes and try again."),
    "session_expired": N_("Your session has expired; log in again to continue."),
    "account_inactive": N_("Your account is not active; ask an administrator to reactivate it."),
    "ip_fenced": N_("Your network address is not allowed for this account; connect from an "
                    "allowed network or ask an administrator."),
    "policy_denied": N_("{page} is not available to you; ask an administrator if you need it."),
    "sensitive_page": N_("{page} is not available while acting for a buyer; only {buyer} can use "
                         "it, from their own login."),
    "policy_error": N_("The access rules could not decide, so access is refused; tell support."),
    "already_impersonating": N_("You are already acting for {buyer}; stop acting for them before "
                                "you choose another buyer."),
    "not_impersonator": N_("You may not log in as a buyer; ask an administrator if your work "
                           "needs it."),
    "csr_inactive": N_("Your account is not active; ask an administrator to reactivate it."),
    "self": N_("You cannot log in as yourself; choose another buyer."),
    "buyer_inactive": N_("This buyer's account is inactive; choose another buyer or ask an "
                         "administrator."),
    "not_customer": N_("This person is not a customer yet, so you cannot act for them; choose a "
                       "customer."),
    "buyer_is_privileged": N_("This is a staff account, which no one may act for; choose a "
                              "customer."),
    "not_assigned": N_("This buyer's company is not assigned to you; ask an administrator to "
                       "assign it."),
    "company_no_impersonation": N_("This buyer's company does not allow acting for its buyers; "
                                   "help them by phone or email instead."),
    "no_consent": N_("This buyer has not allowed assistance; ask them to allow it on their "
                     "account page."),
    "unknown_buyer": N_("There is no such buyer; search again on Select User."),
    "reason_required": N_("A reason or ticket number is required; enter it and try again."),
    "impersonation_expired": N_("Your time acting for the buyer ran out; you are yourself again, "
                                "and can select the buyer again."),
    "buyer_removed": N_("The buyer's account was removed; you are yourself again."),
    "kill_switch": N_("An administrator ended this session or impersonation; log in or select the "
                      "buyer again if you still need it."),
    "upstream_unavailable": N_("The shop is not reachable right now; try again in a minute."),
    "upstream_timeout": N_("The shop took too long to answer; try again in a minute."),
    "upstream_busy": N_("The shop is busy right now; try again in a minute."),
    "upstream_body_too_large": N_("This page is too large to show with the gateway's banner; tell "
                                  "support."),
    "audit_unavailable": N_("The gateway cannot record actions right now, so it refuses them; try "
                            "again shortly."),
    "session_store_unavailable": N_("The gateway cannot check sessions right now; try again "
                                    "shortly."),
    "dependency_unavailable": N_("A service the gateway needs is down; try again shortly."),
    "unavailable": N_("The gateway cannot serve this right now; try again shortly."),
    "mfa_not_enrolled": N_("Acting for this buyer needs a second factor; set up an "
                           "authenticator app on your account page, then try again."),
    "totp_invalid": N_("The code is wrong; enter the current code of your authenticator app "
                       "or an unused recovery code."),
    "totp_replayed": N_("This code was used already; wait for the next code of your "
                        "authenticator app."),
    "recovery_used": N_("This recovery code was used already; each one works once."),
    "totp_pending_expired": N_("The login took too long; enter your username and password "
                               "again."),
    "totp_enrolled_already": N_("An authenticator app is set up already; turn it off first "
                                "to set up another one."),
    "invalid_link": N_("This link is unknown, already used or expired; ask for a new one."),
    "no_such_user": N_("There is no such user; check the name in the Users list."),
    "no_such_group": N_("There is no such group; check the name in the Groups list."),
    "no_such_company": N_("There is no such company; check it in the Companies list."),
    "no_such_session": N_("That session has already ended; reload the list."),
    "internal_error": N_("Something went wrong in the gateway and nothing was sent to the shop; "
                         "try again, and tell support if it keeps happening."),
    "protected_path_variant": N_("There is no page at this address; use the shop's own links to "
                                 "reach the page you want."),
    "metrics_not_allowed": N_("There is no page at this address; check the link or go back to the "
                              "storefront."),
    "too_many_concurrent_requests": N_("Too many of your requests are still running; wait for "
                                       "them to finish and try again."),
    "local_passwords_disabled": N_("Sign-in with a password is turned off; use your company's "
                                   "sign-in button instead."),
    "idp_unavailable": N_("Your company's sign-in service is not reachable right now; try again "
                          "in a minute."),
    "idp_misconfigured": N_("Sign-in through your company's provider is not set up correctly; "
                            "tell support."),
    "idp_backchannel_logout": N_("Your company's sign-in service ended this session; sign in "
                                 "again to continue."),
    "oidc_state_mismatch": N_("The sign-in did not come back to the browser that started it; "
                              "start the sign-in again."),
    "oidc_nonce_mismatch": N_("The sign-in answer did not match this sign-in; start the sign-in "
                              "again."),
    "oidc_token_invalid": N_("The sign-in answer could not be verified; start the sign-in again, "
                             "and tell support if it keeps happening."),
    "oidc_token_expired": N_("The sign-in answer arrived too late; start the sign-in again."),
    "oidc_replayed": N_("This sign-in answer was already used; start the sign-in again."),
    "oidc_unknown_user": N_("Your account is not set up in the gateway yet; ask an administrator "
                            "to add it."),
    "oidc_group_unmapped": N_("None of your company groups gives access to the gateway; ask an "
                              "administrator for the right group."),
    "oidc_provider_refused": N_("Your company's sign-in service refused the sign-in; try again or "
                                "ask its administrators."),
    "step_up_required": N_("Acting for a buyer needs a fresh sign-in; sign in again and the start "
                           "continues."),
    "step_up_stale": N_("The new sign-in was not fresh enough; sign in again with your password "
                        "or second factor."),
    "step_up_other_user": N_("A different person signed in than the one logged in here; sign in "
                             "again as yourself."),
    "mfa_required": N_("Acting for this buyer needs a second factor; sign in with your second "
                       "factor and try again."),
    "read_only_impersonation": N_("You are acting for {buyer} in read-only mode, so this "
                                  "change was not sent to the shop; switch to write mode to "
                                  "make it."),
    "write_not_allowed": N_("You may not make changes for {buyer}; the read-only mode stays "
                            "on."),
    "not_impersonating": N_("You are not acting for a buyer; select one first."),
    "masking_body_too_large": N_("This page is too large to show with its personal data "
                                 "masked; tell support."),
    "masking_unsupported": N_("This page cannot be shown with its personal data masked; tell "
                              "support."),
    "masking_needs_proxy": N_("This page cannot be shown with its personal data masked here; "
                              "tell support."),
    "self_approval": N_("You cannot approve your own request; another approver must decide "
                        "it."),
    "not_approver": N_("You may not decide this request; it waits for an approver of the "
                       "buyer's company."),
    "approval_closed": N_("This request was already decided or has expired; reload the list."),
    "no_such_request": N_("There is no such request; start again from Select User."),
    "limit_buyers_per_hour": N_("You have acted for the most different buyers allowed in an "
                                "hour; wait before you choose a new buyer, or ask a "
                                "supervisor."),
    "limit_actions_per_hour": N_("You have made the most changes for buyers allowed in an "
                                 "hour; wait before you act for a buyer again, or ask a "
                                 "supervisor."),
    "limit_impersonations_per_day": N_("You have started the most sessions as a buyer allowed "
                                       "in a day; wait, or ask a supervisor."),
    "limits_unavailable": N_("The gateway cannot check your usage limits right now, so it "
                             "does not start acting for the buyer; try again shortly."),
}


# the same refusal reads differently while a CSR acts for a buyer
ACTING_SENTENCES: dict[str, str] = {
    "policy_denied": N_("{page} is not available while acting for {buyer}; stop acting for the "
                        "buyer to use it as yourself."),
}


def sentence(reason: str, given: str, *, page: str | None = None,
             buyer: str | None = None) -> str:
    """The one sentence for a refusal; `given` (the raiser's words) when none is listed."""
    template = (buyer and ACTING_SENTENCES.get(reason)) or SENTENCES.get(reason)
    if template is None:
        return gettext(given)  # the raiser's words, translated where they were marked
    return gettext(template).format(page=page or gettext("This page"),
                                    buyer=buyer or gettext("the buyer"))
