# Page access per group. Static facts: the cheap style (DESIGN section 6).
# grant(group, page, action): members of `group` may do `action` ("*" = any) on `page`.

grant("Buyer", "storefront", "*");
grant("Buyer", "cart", "*");
grant("Buyer", "checkout", "*");
grant("Buyer", "order_confirmation", "*");
grant("Buyer", "print_services", "*");
grant("Buyer", "saved_jobs", "*");
grant("Buyer", "reports", "view");
grant("Buyer", "my_account", "*");
grant("Buyer", "change_password", "*");
grant("Buyer", "change_email", "*");
grant("Buyer", "two_factor", "*");

# The recommended CSR pages. No admin pages, no password pages.
grant("CSR", "storefront", "*");
grant("CSR", "reports", "view");
grant("CSR", "select_user", "*");
grant("CSR", "print_services", "*");
grant("CSR", "order_confirmation", "*");
grant("CSR", "saved_jobs", "*");
grant("CSR", "my_account", "view");

# Pages a CSR may use only while acting for a buyer: the order is the buyer's.
acting_grant("CSR", "cart", "*");
acting_grant("CSR", "checkout", "*");

grant("Administrator", "storefront", "*");
grant("Administrator", "reports", "*");
grant("Administrator", "order_confirmation", "*");
grant("Administrator", "order_assignment", "*");
grant("Administrator", "shop_admin", "*");
grant("Administrator", "my_account", "*");
grant("Administrator", "change_password", "*");

# Assigning an order to a CSR needs Site Admin or Sales Admin (or Administrator).
grant("Site Admin", "storefront", "*");
grant("Site Admin", "shop_admin", "*");
grant("Site Admin", "order_assignment", "*");
grant("Site Admin", "reports", "*");
grant("Site Admin", "my_account", "*");
grant("Sales Admin", "storefront", "*");
grant("Sales Admin", "order_confirmation", "view");
grant("Sales Admin", "order_assignment", "*");
grant("Sales Admin", "reports", "*");
grant("Sales Admin", "my_account", "*");

# The gateway asks `allow_page(actor, action, page)` for every proxied request:
#   actor: Principal, action: String (the route's action), page: Page.
# Cheap style (docs/policy.md "Writing fast policies"): every attribute read is a round
# trip into Python and every rule call costs, so read each attribute once, dispatch on a
# constant, iterate the person's few groups against static facts (the "*" fact first: most
# grants are "*"), and stop at the first proof.

allow_page(actor, action, page) if
    page_access(actor.impersonating, actor, action, page);

# Acting as themselves: one of their own groups grants it.
page_access(false, actor, action, page) if
    name = page.name and
    group in actor.groups and
    (grant(group, name, "*") or grant(group, name, action)) and
    cut;

# A CSR acting for a buyer: never a sensitive page; one of the buyer's
# groups grants it (the cart, order and account are the buyer's) AND the CSR's impersonator
# group grants it, or grants it while acting (acting_grant). Only the impersonator group
# counts: a CSR who is also an Administrator gets no more while acting than any CSR.
# Whether the CSR may still act for this buyer at all (assignment, status, group) is the
# separate question `allow_impersonation`, which the gateway asks first on every
# impersonated request: this rule need not repeat it.
page_access(true, actor, action, page) if
    page.sensitive = false and
    name = page.name and
    group in actor.buyer_groups and
    (grant(group, name, "*") or grant(group, name, action)) and
    cut and
    own in actor.groups and
    impersonator_group(own) and
    (grant(own, name, "*") or grant(own, name, action) or
     acting_grant(own, name, "*") or acting_grant(own, name, action));

# Self-checks: run at every load; a failing one keeps the old policy serving.
?= grant("CSR", "select_user", "*");
?= not grant("CSR", "shop_admin", _);
?= not grant("CSR", "change_password", _);
