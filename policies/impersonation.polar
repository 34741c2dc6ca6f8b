# Who may act for whom (R16, R17, R2, R4) and the gateway's admin area (R2, R15).

# R17: the right to impersonate is granted explicitly, by group.
impersonator_group("CSR");

may_impersonate(user: User) if
    group in user.groups and impersonator_group(group) and cut;

allow(actor: Principal, "impersonate", buyer: User) if
    actor.acting_as = nil and
    not impersonation_refused(actor, buyer, _);

# The first refusal names the reason (audit `reason`); order matters, cheapest first.
impersonation_refused(actor: Principal, buyer: User, why) if
    ((not actor.acting_as = nil and why = "already_impersonating") or
     impersonation_refused_now(actor.user, buyer, why)) and
    cut;

# Re-checked on every impersonated request: when any of these starts to hold, it ends.
impersonation_refused_now(csr: User, buyer: User) if
    impersonation_refused_now(csr, buyer, _);

impersonation_refused_now(csr: User, _buyer: User, why) if
    why = "not_impersonator" and
    not may_impersonate(csr) and cut;
impersonation_refused_now(csr: User, _buyer: User, why) if
    why = "csr_inactive" and
    not csr.active and cut;
impersonation_refused_now(csr: User, buyer: User, why) if
    why = "self" and
    csr.username = buyer.username and cut;
impersonation_refused_now(_csr: User, buyer: User, why) if
    why = "buyer_inactive" and
    not buyer.active and cut;
impersonation_refused_now(_csr: User, buyer: User, why) if
    why = "not_customer" and
    buyer.kind != "customer" and cut;
impersonation_refused_now(_csr: User, buyer: User, why) if
    why = "buyer_is_privileged" and
    group in buyer.groups and privileged_group(group) and cut;
impersonation_refused_now(csr: User, buyer: User, why) if
    why = "not_assigned" and
    not buyer.company in csr.assigned_companies and cut;
impersonation_refused_now(_csr: User, buyer: User, why) if
    why = "company_no_impersonation" and
    buyer.company_info.no_impersonation and cut;
impersonation_refused_now(_csr: User, buyer: User, why) if
    why = "no_consent" and
    REQUIRE_CONSENT and
    not buyer.allow_assistance and
    not buyer.company_info.allow_assistance and cut;

# Staff of any kind can never be impersonated.
privileged_group("Administrator");
privileged_group("CSR");
privileged_group("Site Admin");
privileged_group("Sales Admin");

# The gateway's admin area: administrators only, and never while acting for a buyer.
admin_group("Administrator");

allow(actor: Principal, _action: String, _resource: AdminResource) if
    actor.acting_as = nil and
    group in actor.user.groups and admin_group(group) and cut;

# Sales Admin may look at sessions and the transaction log, nothing else.
allow(actor: Principal, "read", resource: AdminResource) if
    actor.acting_as = nil and
    resource.name in ["transactions", "sessions"] and
    "Sales Admin" in actor.user.groups;

?= impersonator_group("CSR");
?= not impersonator_group("Administrator");
