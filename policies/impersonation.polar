# Who may act for whom and the gateway's admin area.

# The right to impersonate is granted explicitly, by group.
impersonator_group("CSR");

# Staff of any kind can never be impersonated.
privileged_group("Administrator");
privileged_group("CSR");
privileged_group("Site Admin");
privileged_group("Sales Admin");

# The gateway asks `allow_impersonation(actor, buyer)` (actor: Principal, buyer: User)
# before an impersonation starts and again, cached, on every impersonated request: when
# it stops holding (assignment revoked, buyer deactivated, ...) the impersonation ends.
# This rule alone decides. One conjunction, each attribute read once, cheapest and most
# selective first. No username comparison is needed: an impersonator group is always a
# privileged group (self-check below), so nobody passes as their own buyer.
allow_impersonation(actor, buyer) if
    actor.impersonating = false and
    group in actor.groups and impersonator_group(group) and cut and
    "active" in actor.standing and
    standing = buyer.standing and
    "customer" in standing and
    "active" in standing and
    actor.is_assigned(buyer.company) and
    not "company_no_impersonation" in standing and
    (REQUIRE_CONSENT = false or "allows_assistance" in standing or
     "company_allows_assistance" in standing) and
    not (other in buyer.groups and privileged_group(other));

# Prospects cannot be impersonated; the optional consent setting (impersonation.require_consent).
consented(_standing) if REQUIRE_CONSENT = false;
consented(standing) if "allows_assistance" in standing;
consented(standing) if "company_allows_assistance" in standing;

# When `allow_impersonation` fails the gateway asks this for the audit reason: the first
# refusal that holds, in this order. It only names a denial, it never allows anything: a
# new restriction goes into `allow_impersonation` (and its reason here).
impersonation_refused(actor, buyer, why) if
    refusal(actor, buyer, why) and cut;

refusal(actor, _buyer, why) if
    why = "already_impersonating" and actor.impersonating = true;
refusal(actor, _buyer, why) if
    why = "not_impersonator" and not (group in actor.groups and impersonator_group(group));
refusal(actor, _buyer, why) if
    why = "csr_inactive" and not "active" in actor.standing;
refusal(actor, buyer, why) if
    why = "self" and actor.username = buyer.username;
# The buyer's own standing: read once, then the refusals in order.
refusal(actor, buyer, why) if
    standing = buyer.standing and
    ((why = "buyer_inactive" and not "active" in standing) or
     (why = "not_customer" and not "customer" in standing) or
     (why = "buyer_is_privileged" and group in buyer.groups and privileged_group(group)) or
     (why = "not_assigned" and not actor.is_assigned(buyer.company)) or
     (why = "company_no_impersonation" and "company_no_impersonation" in standing) or
     (why = "no_consent" and not consented(standing)));

# `requires_mfa(actor, buyer)`: starting to act for this buyer needs a proof of a second
# factor (the IdP's `amr` for OIDC sign-ins). Here: buyers tagged "mfa_required"; a
# company-wide rule would read `buyer.company`, e.g. `requires_mfa(_a, b) if b.company = "acme";`.
requires_mfa(_actor, buyer) if "mfa_required" in buyer.tags;

# `allow_write(actor, buyer)`: may a CSR acting read-only for this buyer switch to write
# mode (POST /_gateway/impersonate/mode)? `actor` is the CSR as themselves. Asked with
# `impersonation.default_mode: read`; no rule means nobody may. Here: the CSR the buyer's
# company is assigned to (who may act for the buyer at all, see `allow_impersonation`).
allow_write(actor, buyer) if
    group in actor.groups and impersonator_group(group) and cut and
    actor.is_assigned(buyer.company);

# `unmask(actor, buyer, field)`: may this CSR see `field` (a name from the `masking:`
# configuration: card, email, phone or the operator's own) of the buyer unmasked? No rule
# means everything configured stays masked. Here: CSRs with the feature
# "see_contact_details" see e-mail addresses and phone numbers; card numbers never.
unmasked_by_feature("email", "see_contact_details");
unmasked_by_feature("phone", "see_contact_details");

unmask(actor, _buyer, field) if
    unmasked_by_feature(field, feature) and feature in actor.features;
# Four-eyes approval. `requires_approval(actor, buyer)`: starting to act for this buyer
# needs a second person's approval first (the CSR files a request with the reason). Here:
# buyers tagged "approval_required"; a company-wide rule would read `buyer.company`, e.g.
# `requires_approval(_a, b) if b.company = "globex";`.
requires_approval(_actor, buyer) if "approval_required" in buyer.tags;

# `may_approve(approver, request)`: who may approve a request (request.requester and
# request.buyer are Users, request.company the buyer's company id, request.reason the text
# the CSR gave). The gateway refuses an approval by the requester whatever this says.
# Here: an administrator, or another CSR assigned to the buyer's company.
approver_group("Administrator");

may_approve(approver, _request) if
    approver.impersonating = false and
    "active" in approver.standing and
    group in approver.groups and approver_group(group) and cut;
may_approve(approver, request) if
    approver.impersonating = false and
    "active" in approver.standing and
    group in approver.groups and impersonator_group(group) and
    approver.is_assigned(request.company);

# The customer's view (/_gateway/me/access) shows every buyer their own record. The same
# for all of a company's buyers (`?scope=company`) is for whom this allows: here buyers of
# that company with the feature "company_access".
may_view_company_access(actor, company) if
    actor.impersonating = false and
    actor.company = company and
    "company_access" in actor.features;

# The gateway's admin area: `allow_admin(actor, action, resource)` (action "read" or
# "manage", resource: AdminResource). Administrators only, never while acting for a buyer.
admin_group("Administrator");

allow_admin(actor, _action, _resource) if
    actor.impersonating = false and
    group in actor.groups and admin_group(group) and cut;

# CSRs open the approvals queue; it lists only the requests `may_approve` lets them decide.
allow_admin(actor, _action, resource) if
    actor.impersonating = false and
    resource.name = "approvals" and
    group in actor.groups and impersonator_group(group) and cut;

# Sales Admin may read sessions and the transaction log, nothing else.
allow_admin(actor, "read", resource) if
    actor.impersonating = false and
    "Sales Admin" in actor.groups and
    resource.name in ["transactions", "sessions"];

# Self-checks: run at every load; a failing one keeps the old policy serving.
?= impersonator_group("CSR");
?= not impersonator_group("Administrator");
# Card numbers are never shown whole.
?= not unmasked_by_feature("card", _);
# Every impersonator group is privileged: a CSR can never be anyone's buyer (nor their own).
?= not (impersonator_group(group) and not privileged_group(group));
