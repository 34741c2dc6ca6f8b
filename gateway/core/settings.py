"""The gateway's configuration as frozen objects, built once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from gateway.core.domain import Page
from gateway.core.maskrules import MaskingSettings

IDENTITY_HEADERS = ("user", "company", "groups", "impersonator", "request_id", "assertion")


@dataclass(frozen=True)
class HeaderNames:
    user: str = "X-Remote-User"
    company: str = "X-Remote-Company"
    groups: str = "X-Remote-Groups"
    impersonator: str = "X-Impersonator"
    request_id: str = "X-Request-Id"
    assertion: str = "X-Gateway-Assertion"

    def all(self) -> tuple[str, ...]:
        return tuple(getattr(self, name) for name in IDENTITY_HEADERS)


@dataclass(frozen=True)
class UpstreamSettings:
    url: str = "http://127.0.0.1:8081"
    connect_timeout: float = 5.0
    first_byte_timeout: float = 30.0  # longest silence: before the response, or mid-stream
    max_connections: int = 100
    session_cookies: tuple[str, ...] = ("sessionid", "PHPSESSID", "JSESSIONID")
    max_per_session: int = 16  # in flight per session (per client address without one)


@dataclass(frozen=True)
class DirectorySettings:
    url: str = "sqlite+aiosqlite:///var/directory.sqlite3"
    seed: Path | None = None
    refresh_seconds: float = 1.0
    # argon2's cost for new password hashes: argon2-cffi's defaults (RFC 9106)
    password_time_cost: int = 3
    password_memory_kib: int = 65_536
    password_parallelism: int = 4


@dataclass(frozen=True)
class SessionSettings:
    store: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "csrgw:"
    cookie_name: str = "csrgw_session"
    secure_cookie: bool = False
    absolute_minutes: int = 720
    redis_max_connections: int = 64  # per worker; a request waits for one, then 503
    redis_pool_timeout: float = 0.5  # seconds a request waits for a free connection
    redis_connect_timeout: float = 0.25
    redis_socket_timeout: float = 0.25  # each command; a frozen Redis is a 503 after this


# impersonation.limits: limit name -> its sliding window in seconds
LIMIT_WINDOWS = {"buyers_per_hour": 3600, "actions_per_hour": 3600,
                 "impersonations_per_day": 86_400}


@dataclass(frozen=True)
class VolumeLimit:
    """One per-CSR volume limit (impersonation.limits): at most `max` in its window."""

    name: str  # buyers_per_hour | actions_per_hour | impersonations_per_day
    max: int
    mode: str = "alert"  # alert: audit, metric, webhook; block: also refuse the next start


@dataclass(frozen=True)
class ImpersonationSettings:
    reason_required: bool = False
    max_minutes: int = 60
    require_consent: bool = False
    notify_webhook: str | None = None
    step_up_minutes: int = 10  # a start needs an authentication this recent; 0: every start
    default_mode: str = "write"  # read: an impersonation starts read-only
    approval_minutes: int = 30  # an approval (and a request waiting for one) lasts this long
    notify_on: tuple[str, ...] = ("end",)  # when the webhook tells the company: start, end
    limits: tuple[VolumeLimit, ...] = ()


@dataclass(frozen=True)
class AssertionSettings:
    algorithm: str = "EdDSA"
    keys_dir: Path = Path("var/keys")
    ttl_seconds: int = 60
    audience: str = "csr-demo-shop"
    issuer: str = "csr-gateway"
    hs256_secret: str | None = None


@dataclass(frozen=True)
class LimitsSettings:
    max_body_bytes: int = 10 * 1024 * 1024
    max_field_size: int = 8190
    max_line_size: int = 8190
    max_headers: int = 100
    header_timeout: float = 10.0
    banner_max_bytes: int = 5 * 1024 * 1024
    login_failures_per_user: int = 10  # in login_window_seconds, then 429
    login_failures_per_address: int = 100
    login_window_seconds: float = 300.0


@dataclass(frozen=True)
class RouteSpec:
    """One configured route: URL pattern and methods -> the page and action decided on."""

    path: str
    page: str
    methods: tuple[str, ...] = ("GET", "HEAD")
    action: str | None = None
    case_sensitive: bool = True
    strict_slash: bool = False
    allow_semicolon: bool = False
    websocket: bool = False
    state_changing: bool | None = None
    fallback: bool = False  # used only when no other route matches the path


@dataclass(frozen=True)
class AuditSettings:
    sink: str = "file"
    path: str = "var/audit.jsonl"
    fsync: str = "interval"
    fail_closed: bool = True
    redact_query_params: tuple[str, ...] = ("token", "password", "code", "key", "secret", "sig")
    redact_keys: tuple[str, ...] = ()  # more record keys whose values are always redacted
    anchor: str = "none"  # none | directory | a redis:// or postgresql:// URL (chain heads)


@dataclass(frozen=True)
class OpsSettings:
    # who may read /_gateway/metrics (the client address, after trusted proxies)
    metrics_allow: tuple[IPv4Network | IPv6Network, ...] = (
        ip_network("127.0.0.0/8"), ip_network("::1/128"))
    # forward-auth behind a proxy that cannot send the shop X-Gateway-Path (Traefik):
    # refuse a path that is not already canonical instead of deciding on its canonical form
    authz_canonical_only: bool = False


@dataclass(frozen=True)
class TracingSettings:
    """OpenTelemetry spans, exported over OTLP/HTTP (the `otel` extra)."""

    otlp_endpoint: str | None = None  # unset: OTEL_EXPORTER_OTLP_ENDPOINT, else no tracing
    service_name: str = "csr-gateway"


@dataclass(frozen=True)
class OidcSettings:
    """Staff sign-in through an OpenID provider (login.oidc)."""

    name: str = ""
    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    token_auth_method: str = "client_secret_basic"
    scopes: tuple[str, ...] = ("openid", "profile", "email", "groups")
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    groups: Mapping[str, str] = field(default_factory=dict)  # IdP group -> gateway group
    provision: str = "existing"
    refresh_seconds: int = 300  # how often the IdP is asked again for a session's groups
    clock_skew_seconds: int = 60
    # `acr` values the provider sends only after a second factor (e.g. Keycloak's "gold",
    # Entra's "c1"): asked for when the policy wants MFA, and accepted as its proof
    mfa_acr_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class TotpSettings:
    """The authenticator-app second factor of local accounts (login.totp)."""

    issuer: str = "csr-gateway"  # the label the authenticator app shows
    secret_key: str | None = None  # base64 of 32 bytes; unset: generated in state_dir


@dataclass(frozen=True)
class LoginSettings:
    local_passwords: bool = True
    oidc: OidcSettings | None = None
    totp: TotpSettings = field(default_factory=TotpSettings)


@dataclass(frozen=True)
class Settings:
    source: str = "<defaults>"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    state_dir: Path = Path("var")
    policies_dir: Path = Path("policies")
    watch_policies: bool = True
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    deny_headers: tuple[str, ...] = ()
    require_c_parser: bool = True
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    impersonation: ImpersonationSettings = field(default_factory=ImpersonationSettings)
    assertion: AssertionSettings = field(default_factory=AssertionSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    headers: HeaderNames = field(default_factory=HeaderNames)
    pages: Mapping[str, Page] = field(default_factory=dict)
    routes: tuple[RouteSpec, ...] = ()
    public_url: str | None = None  # the gateway's external base URL (invitation links)
    worker_max_deaths: int = 5  # more worker deaths than this within the window: exit 1
    worker_death_window: float = 60.0
    ops: OpsSettings = field(default_factory=OpsSettings)
    login: LoginSettings = field(default_factory=LoginSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    masking: MaskingSettings = field(default_factory=MaskingSettings)
