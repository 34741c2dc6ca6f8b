"""Reads gateway.yaml into frozen Settings, reporting every problem with file, line and key."""

from __future__ import annotations

import dataclasses
import ipaddress
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.audit.anchor import valid_anchor
from gateway.config import env as configenv
from gateway.config import limits as limitconf
from gateway.config import masking as masking_config
from gateway.config import oidc as oidc_config
from gateway.config.yamlsrc import ConfigError, KeyPath, Source, load, loads
from gateway.core.domain import Page
from gateway.core.settings import (
    AssertionSettings,
    AuditSettings,
    DirectorySettings,
    HeaderNames,
    ImpersonationSettings,
    LimitsSettings,
    LoginSettings,
    OidcSettings,
    OpsSettings,
    RouteSpec,
    SessionSettings,
    Settings,
    TotpSettings,
    TracingSettings,
    UpstreamSettings,
)
from gateway.request import routes as routing
from gateway.services import sealing
from gateway.services.assertion import MIN_HS256_SECRET

SECTIONS: dict[str, type] = {
    "upstream": UpstreamSettings, "directory": DirectorySettings, "sessions": SessionSettings,
    "impersonation": ImpersonationSettings, "assertion": AssertionSettings,
    "limits": LimitsSettings, "audit": AuditSettings, "headers": HeaderNames,
    "ops": OpsSettings, "tracing": TracingSettings,
}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("sessions", "store"): ("memory", "redis"),
    ("assertion", "algorithm"): ("EdDSA", "RS256", "ES256", "HS256"),
    ("audit", "sink"): ("file", "stdout", "both"),
    ("audit", "fsync"): ("always", "interval", "never"),
    ("impersonation", "default_mode"): ("read", "write"),
}
TOP_FIELDS = ("host", "port", "workers", "state_dir", "policies_dir", "watch_policies",
              "trusted_proxies", "deny_headers", "require_c_parser", "public_url",
              "worker_max_deaths", "worker_death_window")
PATH_FIELDS = {"seed", "keys_dir", "state_dir", "policies_dir"}


def load_settings(path: str | Path) -> Settings:
    """Load and validate a config file; raise ConfigError listing every problem."""
    return build(load(path), base=Path(path).resolve().parent)


def settings_from_text(text: str, name: str = "<string>", base: Path | None = None) -> Settings:
    return build(loads(text, name), base=base or Path.cwd())


def build(src: Source, base: Path) -> Settings:
    configenv.apply(src, set(TOP_FIELDS))
    data = src.data if isinstance(src.data, dict) else {}
    if not isinstance(src.data, dict):
        src.problem((), "the configuration must be a mapping")
    known = set(SECTIONS) | set(TOP_FIELDS) | {"listen", "pages", "routes", "login", "masking"}
    for key in data:
        if key not in known:
            src.problem((key,), f"unknown key (expected one of: {', '.join(sorted(known))})")
    top = _fields(src, (), Settings, {k: data[k] for k in TOP_FIELDS if k in data}, base)
    listen = data.get("listen", {})
    if isinstance(listen, dict):
        top.update(_fields(src, ("listen",), Settings,
                           {k: v for k, v in listen.items() if k in ("host", "port")}, base))
    limits = None  # impersonation.limits: a mapping of its own (limitconf.py)
    for name, cls in SECTIONS.items():
        raw = dict(_mapping(src, data, name))
        if name == "impersonation":
            limits = raw.pop("limits", None)
        top[name] = cls(**_fields(src, (name,), cls, raw, base))
    top["impersonation"] = dataclasses.replace(
        top["impersonation"], limits=limitconf.volume_limits(src, limits))
    limitconf.check(src, top["impersonation"])
    top["pages"] = _pages(src, data.get("pages", {}))
    top["routes"] = _routes(src, data.get("routes", []), top["pages"])
    top["login"] = _login(src, _mapping(src, data, "login"), base)
    top["masking"] = masking_config.parse(src, data.get("masking"), top["pages"])
    _check_impersonation(src, top["impersonation"], top["assertion"])
    _check_listen(src, top)
    _check_audit(src, top["audit"])
    _check_password_cost(src, top["directory"])
    oidc_config.check(src, top["login"], top.get("public_url"))
    src.raise_if_problems()
    return Settings(source=src.file, **_anchored(top, base))


def _anchored(top: dict[str, Any], base: Path) -> dict[str, Any]:
    """Every relative path, given or default, is relative to the configuration file."""
    defaults = Settings()
    for key in ("state_dir", "policies_dir"):
        top[key] = _under(base, top.get(key, getattr(defaults, key)))
    top["assertion"] = dataclasses.replace(
        top["assertion"], keys_dir=_under(base, top["assertion"].keys_dir))
    top["audit"] = dataclasses.replace(top["audit"], path=str(_under(base, top["audit"].path)))
    directory = top["directory"]
    top["directory"] = dataclasses.replace(directory, url=sqlite_anchored(directory.url, base))
    return top


def _under(base: Path, path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else (base / path).resolve()


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, or None (another database, or one in memory)."""
    # SQLAlchemy's URL parser: the directory store needs it anyway, loaded only here
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    db = parsed.database
    if not parsed.drivername.startswith("sqlite") or not db or db == ":memory:" \
            or db.startswith("file:"):
        return None
    return Path(db)


def sqlite_anchored(url: str, base: Path) -> str:
    """A SQLite URL's relative file made absolute (memory databases stay as they are)."""
    from sqlalchemy.engine import make_url  # as in sqlite_file

    db = sqlite_file(url)
    if db is None or db.is_absolute():
        return url
    return make_url(url).set(database=str(_under(base, db))).render_as_string(
        hide_password=False)


def _check_listen(src: Source, top: dict[str, Any]) -> None:
    """A port the kernel can bind and an upstream the proxy can reach, caught before `run`."""
    port = top.get("port", Settings.port)
    if not 1 <= port <= 65535:
        where = ("listen", "port") if ("listen", "port") in src.lines else ("port",)
        src.problem(where, f"must be a port number from 1 to 65535, got {port}")
    if not _http_url(top["upstream"].url):
        src.problem(("upstream", "url"),
                    f"must be an http(s) URL with a host, got {top['upstream'].url!r}")
    public = top.get("public_url")
    if public is not None and not _http_url(public):
        src.problem(("public_url",), f"must be an http(s) URL with a host, got {public!r}")


def _check_audit(src: Source, audit: AuditSettings) -> None:
    if not valid_anchor(audit.anchor):
        src.problem(("audit", "anchor"), f"expected none, directory, or a redis:// or "
                    f"postgresql:// URL, got {audit.anchor!r}")


def _check_password_cost(src: Source, directory: DirectorySettings) -> None:
    """argon2's own limits: at least one pass and lane, 8 KiB of memory per lane."""
    for key in ("password_time_cost", "password_parallelism"):
        if getattr(directory, key) < 1:
            src.problem(("directory", key), f"must be at least 1, got {getattr(directory, key)}")
    if directory.password_memory_kib < 8 * max(directory.password_parallelism, 1):
        src.problem(("directory", "password_memory_kib"),
                    f"must be at least 8 KiB per lane ({8 * directory.password_parallelism}), "
                    f"got {directory.password_memory_kib}")


def _check_impersonation(src: Source, imp: ImpersonationSettings,
                         assertion: AssertionSettings) -> None:
    """Values that parse but cannot work: an impersonation that ends at once, a webhook
    nobody can POST to, an assertion expired when issued, an HS256 key easy to guess."""
    if imp.step_up_minutes < 0:
        src.problem(("impersonation", "step_up_minutes"),
                    f"must be 0 or more, got {imp.step_up_minutes}")
    if imp.max_minutes < 1:
        src.problem(("impersonation", "max_minutes"),
                    f"must be at least 1, got {imp.max_minutes}")
    if imp.notify_webhook is not None and not _http_url(imp.notify_webhook):
        src.problem(("impersonation", "notify_webhook"),  # the URL may carry a token
                    "must be an http(s) URL with a host")
    if assertion.ttl_seconds < 1:
        src.problem(("assertion", "ttl_seconds"),
                    f"must be at least 1, got {assertion.ttl_seconds}")
    secret = (assertion.hs256_secret or "").encode()
    if assertion.algorithm == "HS256" and len(secret) < MIN_HS256_SECRET:
        src.problem(("assertion", "hs256_secret"),
                    f"HS256 needs a secret of at least {MIN_HS256_SECRET} bytes, "
                    f"got {len(secret)}")


def _login(src: Source, raw: dict[str, Any], base: Path) -> LoginSettings:
    plain = {k: v for k, v in raw.items() if k not in ("oidc", "totp")}
    fields = _fields(src, ("login",), LoginSettings, plain, base)
    totp = raw.get("totp")
    if totp is not None and not isinstance(totp, dict):
        src.problem(("login", "totp"), "must be a mapping")
    elif totp is not None:
        values = _fields(src, ("login", "totp"), TotpSettings, totp, base)
        if not values.get("secret_key"):  # `${CSRGW_TOTP_KEY}` set empty: generated
            values.pop("secret_key", None)
        fields["totp"] = TotpSettings(**values)
        _check_totp(src, fields["totp"])
    oidc = raw.get("oidc")
    if oidc is not None and not isinstance(oidc, dict):
        src.problem(("login", "oidc"), "must be a mapping")
    elif oidc is not None:
        oidc = oidc_config.from_environment(src, oidc)
        fields["oidc"] = OidcSettings(**_fields(src, ("login", "oidc"), OidcSettings, oidc,
                                                base))
    return LoginSettings(**fields)


def _check_totp(src: Source, totp: TotpSettings) -> None:
    """The issuer is the label's prefix in the authenticator app (a colon would split it);
    the sealing key must be 32 random bytes, so a short or mistyped one never starts."""
    if not totp.issuer.strip() or ":" in totp.issuer:
        src.problem(("login", "totp", "issuer"), "must be non-empty text without a colon")
    if totp.secret_key is not None:
        problem = sealing.key_problem(totp.secret_key)
        if problem:
            src.problem(("login", "totp", "secret_key"), problem)


def _http_url(text: str) -> bool:
    url = urlsplit(text)
    return url.scheme in ("http", "https") and bool(url.hostname)


def _mapping(src: Source, data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        src.problem((name,), "must be a mapping")
        return {}
    return value


def _fields(src: Source, path: KeyPath, cls: type, raw: dict[str, Any],
            base: Path) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = (*path, key)
        if key not in names and key.endswith("_file") and key[:-5] in names:
            key, value = key[:-5], _secret_file(src, where, value, base)
            if value is None:
                continue
        if key not in names:
            src.problem(where, f"unknown key (expected one of: {', '.join(sorted(names))})")
            continue
        choices = CHOICES.get((str(path[0]), key)) if path else None
        if choices and value not in choices:
            src.problem(where, f"{value!r} is not one of {', '.join(choices)}")
            continue
        try:
            out[key] = _coerce(hints[key], value, key, base)
        except (TypeError, ValueError) as exc:
            src.problem(where, str(exc))
    return out


def _secret_file(src: Source, where: KeyPath, value: Any, base: Path) -> str | None:
    """`hs256_secret_file: /run/secrets/x` reads the secret from that file (one trailing
    newline dropped), so it need not stand in the configuration or the environment."""
    try:
        text = _under(base, str(value)).read_text(encoding="utf-8")
    except OSError as exc:
        src.problem(where, f"cannot read {value}: {exc.strerror or exc}")
        return None
    return configenv.FromEnv(text.removesuffix("\n"))


def _coerce(hint: Any, value: Any, key: str, base: Path) -> Any:
    text = str(hint)
    if isinstance(value, configenv.FromEnv) and value == "" and "None" in text:
        return None  # `${HOOK:-}`: an optional setting left out
    if key in PATH_FIELDS:
        if value is None and "None" in text:
            return None
        return (base / str(value)).resolve() if not Path(str(value)).is_absolute() else Path(value)
    if key in ("trusted_proxies", "metrics_allow"):
        return tuple(ipaddress.ip_network(str(v), strict=False) for v in _list(value))
    if "tuple" in text:
        return tuple(str(v) for v in _list(value))
    if value is None and "None" in text:
        return None
    for kind in (bool, int, float, str):
        if hint is kind or text.startswith(kind.__name__):
            return _scalar(kind, value)
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value


def _scalar(kind: type, value: Any) -> Any:
    if isinstance(value, configenv.FromEnv) and kind is not str:
        value = value.typed()
    if kind is bool and not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise TypeError(f"expected a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise TypeError(f"expected a whole number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return kind(value)


def _pages(src: Source, raw: Any) -> dict[str, Page]:
    if not isinstance(raw, dict):
        src.problem(("pages",), "must be a mapping of page name to {title, sensitive, public}")
        return {}
    pages = {}
    for name, spec in raw.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            src.problem(("pages", name), "must be a mapping")
            continue
        fields = _fields(src, ("pages", name), Page, spec, Path.cwd())
        pages[name] = Page(name=name, title=str(fields.get("title", name)), **{
            k: v for k, v in fields.items() if k in ("sensitive", "public")})
    return pages


def _routes(src: Source, raw: Any, pages: dict[str, Page]) -> tuple[RouteSpec, ...]:
    if not isinstance(raw, list):
        src.problem(("routes",), "must be a list of routes")
        return ()
    specs: list[tuple[int, RouteSpec]] = []
    for i, item in enumerate(raw):
        spec = _route(src, i, item, pages)
        if spec:
            specs.append((i, spec))
    compiled = [routing.compile_route(spec) for _, spec in specs]
    for a, b in routing.conflicts(compiled):
        src.problem(("routes", specs[b][0], "path"),
                    f"{specs[b][1].path!r} overlaps routes[{specs[a][0]}] "
                    f"{specs[a][1].path!r} for the same method")
    return tuple(spec for _, spec in specs)


def _route(src: Source, i: int, item: Any, pages: dict[str, Page]) -> RouteSpec | None:
    if not isinstance(item, dict):
        src.problem(("routes", i), "must be a mapping with path and page")
        return None
    fields = _fields(src, ("routes", i), RouteSpec, item, Path.cwd())
    if isinstance(item.get("methods"), list):
        fields["methods"] = tuple(str(m).upper() for m in item["methods"])
    for key in ("path", "page"):
        if key not in item:
            src.problem(("routes", i), f"missing required key {key!r}")
    if "path" not in fields or "page" not in fields:
        return None
    if fields["page"] not in pages:
        src.problem(("routes", i, "page"), f'unknown page "{fields["page"]}"')
        return None
    spec = RouteSpec(**fields)
    problem = routing.pattern_problem(spec)
    if problem:
        src.problem(("routes", i, "path"), problem)
        return None
    return spec


__all__ = ["ConfigError", "build", "load_settings", "settings_from_text"]
