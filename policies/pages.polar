# Page access per group (R3). Static facts: the cheap style (DESIGN section 6).
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

# R3: the recommended CSR pages. No admin pages, no password pages (R2).
grant("CSR", "storefront", "*");
grant("CSR", "reports", "view");
grant("CSR", "select_user", "*");
grant("CSR", "print_services", "*");
grant("CSR", "order_confirmation", "*");
grant("CSR", "saved_jobs", "*");
grant("CSR", "my_account", "view");

# Pages a CSR may use only while acting for a buyer: the order is the buyer's (R14, R20).
acting_grant("CSR", "cart", "*");
acting_grant("CSR", "checkout", "*");

grant("Administrator", "storefront", "*");
grant("Administrator", "reports", "*");
grant("Administrator", "order_confirmation", "*");
grant("Administrator", "order_assignment", "*");
grant("Administrator", "shop_admin", "*");
grant("Administrator", "my_account", "*");
grant("Administrator", "change_password", "*");

# R13: assigning an order to a CSR needs Site Admin or Sales Admin (or Administrator).
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

# May this user (by one of its own groups) do `action` on the page named `name`?
# Cheap style (DESIGN 6): iterate the user's few groups, look up static facts, stop at the
# first proof. Attribute reads cross into Python, so each is read once.
user_may(user: User, action: String, name: String) if
    group in user.groups and
    (grant(group, name, action) or grant(group, name, "*")) and
    cut;

acting_may(user: User, action: String, name: String) if
    group in user.groups and
    (acting_grant(group, name, action) or acting_grant(group, name, "*")) and
    cut;

# A person acting as themselves: their groups decide.
allow(actor: Principal, action: String, page: Page) if
    actor.acting_as = nil and
    user_may(actor.user, action, page.name);

# A CSR acting for a buyer (R4, R18): never a sensitive page; the CSR's grants (or acting
# grants) AND the buyer's grants. Whether the CSR may still act for this buyer at all
# (assignment, status, group: impersonation.polar) is asked separately on every request
# and ends the impersonation when it no longer holds.
allow(actor: Principal, action: String, page: Page) if
    buyer = actor.acting_as and
    buyer != nil and
    not page.sensitive and
    name = page.name and
    user_may(buyer, action, name) and
    (user_may(actor.user, action, name) or acting_may(actor.user, action, name));

# Self-checks: run at every load; a failing one keeps the old policy serving.
?= grant("CSR", "select_user", "*");
?= not grant("CSR", "shop_admin", _);
?= not grant("CSR", "change_password", _);
