# Who may act for whom (R16, R17, R2, R4) and the gateway's admin area (R2, R15).

# R17: the right to impersonate is granted explicitly, by group.
impersonator_group("CSR");

may_impersonate(user: User) if
    group in user.groups and impersonator_group(group) and cut;

allow(actor: Principal, "impersonate", buyer: User) if
    actor.acting_as = nil and
    not impersonation_refused(actor, buyer, _);

# The first refusal names the reason (audit `reason`); order matters, cheapest first.
impersonation_refused(actor: Principal, _buyer: User, "already_impersonating") if
    not actor.acting_as = nil and cut;
impersonation_refused(actor: Principal, buyer: User, why: String) if
    impersonation_refused_now(actor.user, buyer, why) and cut;

# Re-checked on every impersonated request: when any of these starts to hold, it ends.
impersonation_refused_now(csr: User, buyer: User) if
    impersonation_refused_now(csr, buyer, _);

impersonation_refused_now(csr: User, _buyer: User, "not_impersonator") if
    not may_impersonate(csr) and cut;
impersonation_refused_now(csr: User, _buyer: User, "csr_inactive") if
    not csr.active and cut;
impersonation_refused_now(csr: User, buyer: User, "self") if
    csr.username = buyer.username and cut;
impersonation_refused_now(_csr: User, buyer: User, "buyer_inactive") if
    not buyer.active and cut;
impersonation_refused_now(_csr: User, buyer: User, "not_customer") if
    buyer.kind != "customer" and cut;
impersonation_refused_now(_csr: User, buyer: User, "buyer_is_privileged") if
    group in buyer.groups and privileged_group(group) and cut;
impersonation_refused_now(csr: User, buyer: User, "not_assigned") if
    not buyer.company in csr.assigned_companies and cut;
impersonation_refused_now(_csr: User, buyer: User, "company_no_impersonation") if
    buyer.company_info.no_impersonation and cut;
impersonation_refused_now(_csr: User, buyer: User, "no_consent") if
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
