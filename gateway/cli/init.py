"""`csr-gateway init DIR`: a starter configuration for one's own shop, no demo passwords."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from gateway.defaults import POLICIES

CONFIG = """\
# csr-gateway configuration for your shop (written by `csr-gateway init`).
# Every relative path here is relative to this file. docs/configuration.md lists every key;
# `csr-gateway check --config config/gateway.yaml --print` shows what `run` will use.
# ${NAME} takes a value from the environment (${NAME:-default} when it may be unset), and
# CSRGW_SECTION__KEY=value overrides a key (CSRGW_UPSTREAM__URL=https://shop.internal).

listen:
  host: 127.0.0.1               # 0.0.0.0 in a container or behind a load balancer
  port: 8080

# The gateway's address as users reach it: invitation links point here.
# public_url: https://shop.example.com

upstream:
  url: ${SHOP_URL:-http://127.0.0.1:8081}   # your shop, http(s)://host[:port]
  session_cookies: [sessionid, PHPSESSID, JSESSIONID]  # your shop's session cookies,
                                                     # cleared on every identity switch

directory:
  # SQLite for one host; postgresql+asyncpg://user:${DB_PASSWORD}@db/gateway for replicas.
  url: sqlite+aiosqlite:///../var/directory.sqlite3
  seed: directory.yaml          # loaded into an empty directory only

sessions:
  store: memory                 # redis (with redis_url) when more than one process serves
  secure_cookie: false          # true behind HTTPS

impersonation:
  reason_required: true         # a ticket or reason before acting for a buyer
  max_minutes: 30

assertion:
  algorithm: EdDSA              # the shop verifies the JWT with /_gateway/.well-known/jwks.json
  keys_dir: ../var/keys         # generated on first start; keep it on a volume
  audience: my-shop             # what your shop checks as `aud`

audit:
  sink: file
  path: ../var/audit.jsonl
  fsync: interval
  fail_closed: true

state_dir: ../var
policies_dir: ../policies
trusted_proxies: []             # e.g. [10.0.0.0/8]: only these may set X-Forwarded-For

# One page per kind of screen of your shop; the policy grants pages to groups.
# sensitive: denied while a CSR acts for a buyer. public: no login needed.
pages:
  public:             {title: Public assets, public: true}
  storefront:         {title: Storefront}
  cart:               {title: Cart}
  checkout:           {title: Checkout}
  order_confirmation: {title: Orders}
  my_account:         {title: My Account}
  change_password:    {title: Change Password, sensitive: true}
  change_email:       {title: Change Email, sensitive: true}
  shop_admin:         {title: Shop Administration}
  select_user:        {title: Select User}

# Map your shop's URLs to pages. A path no route matches is answered 404 (deny by default);
# `*` is one segment, a final `**` one or more. Check a request with
# `csr-gateway policy explain --config config/gateway.yaml --user admin GET /`.
routes:
  - {path: /static/**, page: public}
  - {path: /, page: storefront}
  - {path: /products/**, page: storefront}
  - {path: /cart, methods: [GET, POST], page: cart}
  - {path: /checkout, page: checkout}
  - {path: /checkout, methods: [POST], page: checkout, action: order}
  - {path: /orders/**, page: order_confirmation}
  - {path: /account, methods: [GET, POST], page: my_account}
  - {path: /account/password, methods: [GET, POST], page: change_password}
  - {path: /account/email, methods: [GET, POST], page: change_email}
  - {path: /admin/**, methods: [GET, POST], page: shop_admin}
  # Every other path as a storefront page instead of 404:
  # - {path: /**, page: storefront, fallback: true, methods: [GET, HEAD, POST]}
"""

SEED = """\
# The first directory, loaded into an empty database. No passwords here: activate the
# admin with a one-time link (README.md in this folder), then manage users in
# /_gateway/admin/ or with `csr-gateway directory import`.
companies:
  - {id: example, name: Example Customer}

users:
  - username: admin
    email: admin@example.com
    first_name: First
    last_name: Admin
    kind: staff
    groups: [Administrator]
  - username: example-buyer
    email: buyer@example.com
    first_name: Example
    last_name: Buyer
    kind: customer
    company: example
    groups: [Buyer]
"""

TESTS = """\
# Decision tables for your routes and policy: `csr-gateway policy test --config
# config/gateway.yaml`. Add a row for every page and action that matters.
- {persona: example-buyer, request: "GET /", expect: allow}
- {persona: example-buyer, request: "POST /checkout", expect: allow}
- {persona: example-buyer, request: "GET /admin/settings", expect: deny, reason: policy_denied}
- {persona: admin, request: "GET /admin/settings", expect: allow}
- {persona: admin, request: "GET /_gateway/admin/users", expect: allow}
- {persona: example-buyer, request: "GET /nowhere", expect: deny, reason: no_route}
"""

README = """\
# Your csr-gateway

Written by `csr-gateway init`. Next steps, from this folder:

1. Point the gateway at your shop: edit `upstream.url` in `config/gateway.yaml` (or
   `export SHOP_URL=http://shop.internal:8000`), map your shop's URLs to pages under
   `routes`, and set `assertion.audience` to what your shop checks.
2. Check it: `csr-gateway check --config config/gateway.yaml` (every problem as
   `file:line key: message`; `--print` shows the effective configuration, secrets masked).
3. Test the policy: `csr-gateway policy test --config config/gateway.yaml`
   (`policies/tests/*.yaml`), `csr-gateway policy matrix --config config/gateway.yaml`.
4. Serve: `csr-gateway run --config config/gateway.yaml`. The directory, the signing keys
   and the audit log are created under `var/`.
5. Activate the admin: `csr-gateway directory invite admin --config config/gateway.yaml
   --base-url https://gateway.example.com` prints a one-time link (mailed too when
   CSRGW_SMTP_HOST is set); open it, choose a password, then manage users, groups and
   CSR assignments at `/_gateway/admin/`.

The seed `config/directory.yaml` carries no passwords; `run` refuses a directory whose users
still have the demo password (`csr-gateway demo` is the place for those).
Secrets belong in the environment (`${NAME}` in any value, `CSRGW_SECTION__KEY` overrides)
or in files (`hs256_secret_file: /run/secrets/hs256`).
"""


GRANT = re.compile(r'^\s*(?:acting_)?grant\("[^"]*", "([^"]+)"')
CODES = re.compile(r" ?\(R\d+(?:, R\d+)*\)|\bR\d+(?:, R\d+)*(?::| and) ")


def starter_policy(text: str, pages: set[str]) -> str:
    """The bundled policy, without grants for pages the starter has no routes for."""
    lines = []
    for line in text.splitlines():
        found = GRANT.match(line)
        if found and found.group(1) not in pages:
            continue
        lines.append(CODES.sub("", line) if line.lstrip().startswith("#") else line)
    return "\n".join(lines) + "\n"


def write_starter(target: str | Path, force: bool = False) -> int:
    """Write the starter layout into `target`; refuse to overwrite unless `force`."""
    root = Path(target)
    files = {
        root / "config" / "gateway.yaml": CONFIG,
        root / "config" / "directory.yaml": SEED,
        root / "policies" / "tests" / "starter.yaml": TESTS,
        root / "README.md": README,
    }
    policies = sorted(POLICIES.glob("*.polar"))
    existing = [p for p in (*files, *(root / "policies" / f.name for f in policies))
                if p.exists()]
    if existing and not force:
        print(f"csr-gateway init: {existing[0]} exists; pass --force to overwrite",
              file=sys.stderr)
        return 1
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    pages = set(yaml.safe_load(CONFIG)["pages"])
    for policy in policies:
        (root / "policies" / policy.name).write_text(
            starter_policy(policy.read_text(encoding="utf-8"), pages), encoding="utf-8")
    print(f"csr-gateway init: wrote {root / 'config' / 'gateway.yaml'} and the policies; "
          f"next steps in {root / 'README.md'}")
    return 0
