"""The settings as documentation (docs/configuration.md) and as `check --print` shows them.

MEANINGS is the one place a key's meaning is written; the reference is generated from it and
the settings dataclasses: `python -m gateway.config.doc --write docs/configuration.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from gateway.config.load import SECTIONS, TOP_FIELDS
from gateway.core.settings import Settings

MASK = "********"
SECRET_KEYS = {("assertion", "hs256_secret")}
URL_KEYS = {("directory", "url"), ("sessions", "redis_url"), ("upstream", "url"),
            ("tracing", "otlp_endpoint")}
WEBHOOK_KEYS = {("impersonation", "notify_webhook")}

MEANINGS: dict[str, str] = {
    "worker_max_deaths": "with `run --workers N`: more worker deaths than this within "
                         "`worker_death_window` and the master stops the rest and exits 1; below "
                         "it each dead worker is restarted with back-off",
    "worker_death_window": "seconds over which `worker_max_deaths` is counted",
    "upstream.max_per_session": "forwarded requests in flight per session (per client address "
                                "without one) in each worker; more get 429 "
                                "`too_many_concurrent_requests`",
    "sessions.redis_max_connections": "Redis connections per worker for requests (a bounded pool: "
                                      "a request waits for one)",
    "sessions.redis_pool_timeout": "seconds a request waits for a free Redis connection, then 503 "
                                   "`session_store_unavailable`",
    "sessions.redis_connect_timeout": "seconds to connect to Redis",
    "sessions.redis_socket_timeout": "seconds for each Redis command; a frozen Redis is a 503 "
                                     "after this (timeouts are never retried)",
    "impersonation.default_mode": "`write` (today's behaviour) or `read`: an impersonation starts "
                                  "read-only, every state-changing route is refused (403 "
                                  "`read_only_impersonation`) until the CSR switches to write "
                                  "mode (`POST /_gateway/impersonate/mode`, policy `allow_write`); "
                                  "`csr-gateway init` writes `read`",
    "masking.json_max_bytes": "largest JSON response (after decompression) masked by path on a "
                              "masked page; a larger one is refused (502 "
                              "`masking_body_too_large`), never sent half-masked",
    "masking.max_decompressed_bytes": "largest gzip/deflate response opened to mask it (text "
                                      "streams; this only stops compression bombs)",
    "masking.window_chars": "characters held back while text streams, so a value split across "
                            "chunks is still found; every pattern's longest match must fit",
    "masking.patterns": "the operator's own patterns: `name: regex` or `name: {regex, "
                        "keep_last}` (bounded repetitions only), beside the built-in `card`, "
                        "`email`, `phone`",
    "masking.pages": "per page name (or `*` for every other page): `text` (pattern names masked "
                     "in HTML, text and JSON strings) and `json` (`path: field`, e.g. "
                     "`orders[].card: card`); applied while a CSR acts for a buyer unless the "
                     "policy's `unmask(actor, buyer, field)` holds (docs/impersonation.md)",
    "impersonation.step_up_minutes": "a start needs an authentication this recent (OIDC "
                                     "`auth_time`, or the password entry); otherwise the CSR re-"
                                     "authenticates and the start continues; `0`: at every start",
    "audit.anchor": "where each audit file's chain head is stored once a second, so `audit verify "
                    "--anchor/--config` sees lines cut from the end: `none`, `directory` (the "
                    "directory database), or a `redis://` / `postgresql://` URL (docs/audit.md)",
    "ops.metrics_allow": "CIDRs whose clients (after `trusted_proxies`) may read "
                         "`/_gateway/metrics`; everyone else gets 404 `metrics_not_allowed`",
    "ops.authz_canonical_only": "forward-auth: refuse (403 `bad_path`) a path that is not already "
                                "canonical instead of deciding on its canonical form; for proxies "
                                "that cannot send the shop `X-Gateway-Path` (Traefik, Envoy "
                                "without a Lua filter)",
    "tracing.otlp_endpoint": "OTLP/HTTP endpoint for one OpenTelemetry span per request (needs "
                             "`pip install csr-gateway[otel]`); unset: the standard "
                             "`OTEL_EXPORTER_OTLP_ENDPOINT`, and without either no tracing",
    "tracing.service_name": "`service.name` of the gateway's spans",
    "login.local_passwords": "the password form; `false`: only users with the feature "
                             "`break_glass` may use it (audited `break_glass: true`); "
                             "`login.oidc` is described in docs/sso.md",
    "login.totp.issuer": "the name the authenticator app shows beside a local account's codes "
                         "(no colon)",
    "login.totp.secret_key": "base64 of 32 random bytes (`openssl rand -base64 32`) sealing "
                             "the authenticator-app secrets in the directory (AES-256-GCM); "
                             "`${CSRGW_TOTP_KEY}` in the deploy files; unset or empty: a key "
                             "generated once into `state_dir/totp.key`. Every replica needs "
                             "the same key, and a lost key means every enrolment must be reset "
                             "(`csr-gateway directory reset-totp USER`)",
    "host": "listen address (`listen.host` in the file)",
    "port": "listen port, 1-65535 (`listen.port` in the file)",
    "workers": "processes sharing the port (`SO_REUSEPORT`); use Redis sessions with more than one",
    "state_dir": "working files (must be writable)",
    "policies_dir": "the `*.polar` files, loaded together",
    "watch_policies": "reload when a policy file changes (a broken file keeps the old policy)",
    "trusted_proxies": "CIDRs allowed to set `X-Forwarded-For`/`Forwarded`/`X-Real-IP`",
    "deny_headers": "more request headers never forwarded (added to the built-in list)",
    "require_c_parser": "refuse to start on aiohttp's pure-Python HTTP parser",
    "public_url": "the gateway's external base URL, used in invitation links; "
                  "default `http://listen.host:listen.port`",
    "upstream.url": "the shop: an `http(s)` URL with a host",
    "upstream.connect_timeout": "seconds to connect",
    "upstream.first_byte_timeout": "the longest the shop may stay silent: before its response "
                                   "(then 504) or between chunks while streaming",
    "upstream.max_connections": "concurrent forwarded requests; more get 503",
    "upstream.session_cookies": "the shop's session cookies, cleared on every identity switch",
    "directory.url": "SQLAlchemy URL: `sqlite+aiosqlite:///relative/or//absolute/path` or "
                     "`postgresql+asyncpg://...`",
    "directory.seed": "YAML loaded into an empty directory",
    "directory.refresh_seconds": "how often a replica checks for directory changes",
    "directory.password_time_cost": "argon2 passes for new password hashes (argon2-cffi's "
                                     "default; `check` warns below 2)",
    "directory.password_memory_kib": "argon2 memory per hash in KiB (default 64 MiB; `check` "
                                      "warns below 19456, OWASP's floor)",
    "directory.password_parallelism": "argon2 lanes per hash",
    "sessions.store": "`memory` or `redis` (replicas)",
    "sessions.redis_url": "Redis for sessions",
    "sessions.redis_prefix": "prefix of every Redis key the gateway writes",
    "sessions.cookie_name": "HttpOnly, SameSite=Lax session cookie",
    "sessions.secure_cookie": "set `true` behind HTTPS",
    "sessions.absolute_minutes": "hard session lifetime (the idle timeout is per user)",
    "impersonation.reason_required": "a reason/ticket is required to start",
    "impersonation.max_minutes": "an impersonation ends after this; at least 1",
    "impersonation.require_consent": "only buyers (or companies) flagged \"allow assistance\"",
    "impersonation.notify_webhook": "`http(s)` URL told about every finished impersonation "
                                    "(and approvals, volume-limit alerts, starts with "
                                    "`notify_on: [start, ...]`)",
    "impersonation.approval_minutes": "four-eyes approval: how long a request waits for a "
                                      "decision, and how long an approval may be used (once) to "
                                      "start; at least 1",
    "impersonation.notify_on": "when the webhook tells the company of an impersonation: "
                               "`start` (as it starts) and/or `end` (the summary when it ends)",
    "impersonation.limits": "volume limits per CSR, e.g. `{buyers_per_hour: {max: 20, mode: "
                            "block}, actions_per_hour: {max: 300, mode: alert}, "
                            "impersonations_per_day: {max: 60, mode: block}}`; `alert`: an "
                            "`impersonation_limit` audit line, a metric and the webhook; "
                            "`block`: also refuse the next start; counted in the sessions' "
                            "Redis (per process with memory sessions)",
    "assertion.algorithm": "`EdDSA`, `RS256`, `ES256` or `HS256`",
    "assertion.keys_dir": "PEM private keys; generated when empty; newest signs",
    "assertion.ttl_seconds": "lifetime of the upstream JWT; at least 1",
    "assertion.audience": "the JWT `aud` claim",
    "assertion.issuer": "the JWT `iss` claim",
    "assertion.hs256_secret": "shared secret when `algorithm: HS256`; at least 32 bytes "
                              "(`hs256_secret_file` reads it from a file)",
    "limits.max_body_bytes": "request body limit, enforced while streaming (413)",
    "limits.max_field_size": "longest request header field",
    "limits.max_line_size": "longest request line",
    "limits.max_headers": "most request headers",
    "limits.header_timeout": "seconds to receive the request headers",
    "limits.banner_max_bytes": "largest compressed HTML page opened to inject the banner",
    "limits.login_failures_per_user": "failed logins of one user in the window before 429",
    "limits.login_failures_per_address": "failed logins from one address in the window "
                                         "before 429",
    "limits.login_window_seconds": "the window of the two login limits",
    "audit.sink": "`file`, `stdout` or `both`",
    "audit.path": "the audit file (one per worker: `audit.w1.jsonl` ...)",
    "audit.fsync": "`always`, `interval` (1 s) or `never`",
    "audit.fail_closed": "refuse requests (503) when the audit cannot be written",
    "audit.redact_query_params": "query parameters whose values are redacted",
    "audit.redact_keys": "more record keys whose values are always redacted",
    "headers.user": "identity header: the acting user",
    "headers.company": "identity header: the acting user's company",
    "headers.groups": "identity header: the acting user's groups",
    "headers.impersonator": "identity header: the CSR while impersonating",
    "headers.request_id": "identity header: the request id",
    "headers.assertion": "identity header: the signed JWT",
}

PREAMBLE = """\
# Configuration reference

Generated from the settings (`gateway/core/settings.py`, meanings in `gateway/config/doc.py`) by
`python -m gateway.config.doc --write docs/configuration.md`; a test fails when this file is
stale. `pages` and `routes` are described in the README.

## Paths

Every relative path in a configuration file (`state_dir`, `policies_dir`,
`assertion.keys_dir`, `directory.seed`, a SQLite `directory.url`, `audit.path`) is relative
to the folder of that file, in every command (`run`, `demo --config`, `check`, `directory`,
`policy`). The defaults below are too. `sqlite+aiosqlite:///var/d.sqlite3` is relative,
`sqlite+aiosqlite:////srv/d.sqlite3` absolute.

## From the environment

- `${NAME}` anywhere in a string value is replaced by the environment variable `NAME`;
  `${NAME:-default}` uses `default` when it is unset. An unset `NAME` without a default is an
  error naming the file, line and key. A value that is only a reference is typed like the
  key (`port: ${PORT}` is a number); `${NAME:-}` leaves an optional key unset.
- `CSRGW_<SECTION>__<KEY>=value` (two underscores) overrides `<section>.<key>`, e.g.
  `CSRGW_UPSTREAM__URL=http://shop:8000`, `CSRGW_LISTEN__PORT=9000`,
  `CSRGW_SESSIONS__REDIS_URL=redis://:pw@redis:6379/0`. `CSRGW_<KEY>` overrides a top-level
  key (`CSRGW_WORKERS=4`, `CSRGW_PUBLIC_URL=https://gw.example.com`). Names are upper case;
  the value is read as YAML (`[a, b]` is a list). Other `CSRGW_` variables (`CSRGW_SMTP_HOST`)
  are not configuration keys and are left alone.
- `KEY_file: PATH` reads a text key from a file (one trailing newline dropped), e.g.
  `assertion.hs256_secret_file: /run/secrets/hs256`.

`csr-gateway check --config FILE --print` shows the effective configuration with secrets
masked (`hs256_secret`, passwords in URLs, the webhook's query and credentials).
"""


def _rows() -> list[tuple[str, Any]]:
    """(dotted key, default) for every key, in the order of the dataclasses."""
    defaults = Settings()
    rows: list[tuple[str, Any]] = [(name, getattr(defaults, name)) for name in TOP_FIELDS]
    for section, cls in SECTIONS.items():
        instance = cls()
        rows += [(f"{section}.{f.name}", getattr(instance, f.name))
                 for f in dataclasses.fields(cls)]
    rows.append(("login.local_passwords", defaults.login.local_passwords))
    rows += [(f"login.totp.{f.name}", getattr(defaults.login.totp, f.name))
             for f in dataclasses.fields(defaults.login.totp)]
    masking = defaults.masking  # its own parser (config/masking.py): nested rules
    rows += [(f"masking.{f.name}", getattr(masking, f.name) or None)
             for f in dataclasses.fields(masking)]
    return rows


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def render_reference() -> str:
    lines = [PREAMBLE, "## Keys", "", "| key | default | meaning |", "| --- | --- | --- |"]
    for key, default in _rows():
        meaning = MEANINGS.get(key, "(not yet described in gateway/config/doc.py)")
        lines.append(f"| `{key}` | {_show(default)} | {meaning} |")
    return "\n".join(lines) + "\n"


def masked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


def _masked(section: str, key: str, value: Any) -> Any:
    if value is None:
        return None
    if (section, key) in SECRET_KEYS:
        return MASK
    if (section, key) in URL_KEYS:
        return masked_url(str(value))
    if (section, key) in WEBHOOK_KEYS:  # the token may be in the query or the user part
        parts = urlsplit(masked_url(str(value)))
        return urlunsplit(parts._replace(query=MASK if parts.query else ""))
    return value


def _as_data(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_as_data(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _as_data(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _as_data(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def effective(settings: Settings) -> dict[str, Any]:
    """The configuration `run` would use, secrets masked, in the file's own layout."""
    out: dict[str, Any] = {"listen": {"host": settings.host, "port": settings.port}}
    for key in TOP_FIELDS:
        if key not in ("host", "port"):
            out[key] = _masked("", key, _as_data(getattr(settings, key)))
    for section in SECTIONS:
        values = dataclasses.asdict(getattr(settings, section))
        out[section] = {k: _masked(section, k, _as_data(v)) for k, v in values.items()}
    out["impersonation"]["limits"] = {  # as the file writes them: name -> {max, mode}
        limit.name: {"max": limit.max, "mode": limit.mode}
        for limit in settings.impersonation.limits}
    out["pages"] = {name: {"title": p.title, "sensitive": p.sensitive, "public": p.public}
                    for name, p in settings.pages.items()}
    out["routes"] = [_as_data(r) for r in settings.routes]
    masking = settings.masking
    out["masking"] = {
        "json_max_bytes": masking.json_max_bytes,
        "max_decompressed_bytes": masking.max_decompressed_bytes,
        "window_chars": masking.window_chars,
        "patterns": {n: {"regex": p.regex, "keep_last": p.keep_last}
                     for n, p in masking.patterns.items()},
        "pages": {n: {"text": list(m.text), "json": dict(m.json)}
                  for n, m in masking.pages.items()}}
    return out


def effective_yaml(settings: Settings) -> str:
    return str(yaml.safe_dump(effective(settings), sort_keys=False, width=100))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.config.doc",
                                     description="write the configuration reference")
    parser.add_argument("--write", metavar="FILE", help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = render_reference()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
