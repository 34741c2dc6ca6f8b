"""The gateway's long-lived parts, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import jinja2
from aiohttp import web

from gateway.core.settings import Settings
from gateway.directory import Directory
from gateway.policy import PolicyEngine
from gateway.request.hygiene import HeaderPolicy
from gateway.request.routes import RouteTable
from gateway.services.assertion import AssertionSigner
from gateway.services.metrics import Metrics
from gateway.services.notify import Notifier
from gateway.services.throttle import LoginThrottle
from gateway.services.totp import SecondFactor
from gateway.sessions.store import SessionStore

if TYPE_CHECKING:
    from gateway.audit import AuditLog
    from gateway.oidc.client import OidcLogin
    from gateway.runtime.limits import VolumeLimits
    from gateway.runtime.tracing import Tracer
    from gateway.services.upstream import UpstreamPool


@dataclass
class Gateway:
    settings: Settings
    directory: Directory
    sessions: SessionStore
    policy: PolicyEngine
    audit: AuditLog
    signer: AssertionSigner
    routes: RouteTable
    header_policy: HeaderPolicy
    templates: jinja2.Environment
    metrics: Metrics
    second_factor: SecondFactor  # TOTP and recovery codes of local accounts
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    notifier: Notifier | None = None
    client: aiohttp.ClientSession | None = None  # WebSockets and webhooks
    upstream: UpstreamPool | None = None  # every proxied HTTP request
    inflight: int = 0
    inflight_by: dict[str, int] = field(default_factory=dict)  # per session or address
    rendered: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # overlay.rendered_once
    notes: dict[str, str] = field(default_factory=dict)
    oidc: OidcLogin | None = None  # login.oidc configured
    tracer: Tracer | None = None  # tracing on (gateway/runtime/tracing.py)
    limits: VolumeLimits | None = None  # impersonation.limits configured (runtime/limits.py)


GATEWAY = web.AppKey("csrgw_gateway", Gateway)
