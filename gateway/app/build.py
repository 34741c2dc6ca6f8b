"""Composition: builds the Gateway from Settings and wires the aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

import jinja2
from aiohttp import web
from aiohttp import web_response as aiohttp_web_response
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_urldispatcher import AbstractRoute

from gateway.app import fastpath
from gateway.audit import AuditConfig, AuditLog
from gateway.audit.anchor import AnchorKeeper, anchor_url, make_anchor
from gateway.audit.records import STRICT_ENV
from gateway.core import i18n
from gateway.core.assets import STATIC, TEMPLATES
from gateway.core.settings import Settings
from gateway.directory import Directory
from gateway.directory.passwords import hasher_for
from gateway.directory.revisions import RevisionBoard
from gateway.directory.totp import SecondFactors
from gateway.oidc.client import OidcLogin
from gateway.oidc.flow import Once
from gateway.pipeline import chain as pipeline
from gateway.pipeline.forward import client_session, defer_expect, upstream_pool
from gateway.policy import PolicyEngine
from gateway.policy.constants import policy_constants
from gateway.request.hygiene import HeaderPolicy
from gateway.request.routes import RouteTable, compile_route
from gateway.runtime import impersonation
from gateway.runtime import tracing as otel
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.runtime.limits import make_limits
from gateway.runtime.reload import policy_watcher, reload_policy
from gateway.runtime.responses import SERVER, own_headers
from gateway.services.assertion import AssertionSigner
from gateway.services.ledger import make_ledger
from gateway.services.metrics import Metrics
from gateway.services.notify import Notifier
from gateway.services.sealing import Sealer, load_key
from gateway.services.throttle import LoginThrottle
from gateway.services.totp import SecondFactor
from gateway.sessions import redisconn
from gateway.sessions.redis import RedisSessions
from gateway.sessions.store import MemorySessions, SessionStore
from gateway.web import (
    access,
    account,
    admin,
    approvals,
    language,
    me,
    mode,
    ops,
    select_user,
    stepup,
    totp,
)
from gateway.web import sso as oidc_pages

log = logging.getLogger("csr_gateway")


def make_templates() -> jinja2.Environment:
    # the templates ship with the package: no stat() of the file on every render
    return i18n.environment(TEMPLATES, auto_reload=False)


def make_sessions(settings: Settings) -> SessionStore:
    cfg = settings.sessions
    if cfg.store == "redis":
        return RedisSessions(cfg.redis_url, cfg.redis_prefix, cfg.absolute_minutes * 60, cfg)
    return MemorySessions()


def audit_log(settings: Settings) -> AuditLog:
    url = anchor_url(settings.audit.anchor, settings.directory.url)
    keeper = AnchorKeeper(make_anchor(url)) if url else None
    strict = os.environ.get(STRICT_ENV) == "1"  # the test suite: undeclared keys raise
    return AuditLog(audit_config(settings), keeper, strict=strict)


def audit_config(settings: Settings) -> AuditConfig:
    a = settings.audit
    return AuditConfig(sink=a.sink, path=a.path, fsync=a.fsync, fail_closed=a.fail_closed,
                       redact_query_params=a.redact_query_params, redact_keys=a.redact_keys)


def second_factor(settings: Settings, directory: Directory) -> SecondFactor:
    key = load_key(settings.login.totp.secret_key, settings.state_dir)
    return SecondFactor(SecondFactors(directory.sessions), Sealer(key),
                        settings.login.totp.issuer, directory.hasher)


async def build_gateway(settings: Settings) -> Gateway:
    """Everything validated and loaded before the port opens; any failure stops start-up."""
    policy = PolicyEngine(settings.policies_dir, policy_constants(settings))
    directory = await Directory.open(settings.directory.url, settings.directory.seed,
                                     hasher_for(settings.directory))
    header_names = settings.headers.all()
    sessions = make_sessions(settings)
    if isinstance(sessions, RedisSessions):
        directory.board = RevisionBoard(sessions.client,
                                        redisconn.subscriber_client(settings.sessions),
                                        settings.sessions.redis_prefix)
    gw = Gateway(
        settings=settings, directory=directory, sessions=sessions,
        policy=policy, audit=audit_log(settings),
        signer=AssertionSigner(settings.assertion),
        routes=RouteTable([compile_route(s) for s in settings.routes]),
        header_policy=HeaderPolicy.default(header_names, settings.deny_headers,
                                           settings.trusted_proxies),
        templates=make_templates(), metrics=Metrics(),
        second_factor=second_factor(settings, directory),
        throttle=LoginThrottle(settings.limits.login_failures_per_user,
                               settings.limits.login_failures_per_address,
                               settings.limits.login_window_seconds))
    if settings.login.oidc is not None:
        gw.oidc = OidcLogin(settings.login.oidc, Once(settings))
    return gw


async def _resources(app: web.Application) -> AsyncIterator[None]:
    gw = app[GATEWAY]
    gw.audit.open()
    await gw.sessions.start()
    gw.client = client_session(gw)
    gw.upstream = upstream_pool(gw)
    gw.notifier = Notifier(gw.settings.impersonation.notify_webhook, gw.audit,
                           ledger=make_ledger(gw.settings), signer=gw.signer,
                           moments=gw.settings.impersonation.notify_on)
    gw.limits = make_limits(gw.settings)
    if gw.directory.board is not None:
        gw.directory.board.listen(gw.directory.reload_to,
                                  lambda: _pushed_policy_reload(gw))
    tasks = [asyncio.create_task(_refresh_directory(gw), name="directory-refresh"),
             asyncio.create_task(impersonation.sweeper(gw), name="impersonation-sweep")]
    if gw.settings.watch_policies:
        tasks.append(asyncio.create_task(policy_watcher(gw), name="policy-watch"))
    tasks.append(asyncio.create_task(_keep_audit(gw), name="audit-keeper"))
    if gw.tracer is None:  # per worker: the exporter's thread must not cross a fork
        gw.tracer = otel.from_settings(gw.settings.tracing)
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await gw.notifier.close()
    if gw.limits is not None:
        await gw.limits.close()
    if gw.tracer is not None:  # flushing the last spans may wait on the collector
        await asyncio.to_thread(gw.tracer.shutdown)
    await gw.upstream.close()
    await gw.client.close()
    if gw.directory.board is not None:
        await gw.directory.board.close()
    await gw.sessions.close()
    await gw.directory.close()
    if gw.oidc is not None:
        await gw.oidc.close()
    gw.audit.close()
    if gw.audit.anchor is not None:  # the head at shutdown: nothing after it to cut
        await gw.audit.anchor.update(gw.audit.head)
        await gw.audit.anchor.close()


def _pushed_policy_reload(gw: Gateway) -> None:
    reload_policy(gw, "push")


async def _refresh_directory(gw: Gateway) -> None:
    """Other replicas change the directory too: reload when its version moves."""
    while True:
        await asyncio.sleep(gw.settings.directory.refresh_seconds)
        try:
            await gw.directory.refresh_if_changed()
        except Exception:
            log.exception("directory refresh failed; keeping the last snapshot")


async def _keep_audit(gw: Gateway) -> None:
    """Buffered lines reach the disk within a second; a sink that failed is retried every
    second and serves again by itself once a write succeeds."""
    while True:
        await asyncio.sleep(gw.audit.config.fsync_interval_s)
        try:
            await gw.audit.tick()
        except Exception:
            log.exception("audit keeper failed; retrying")


class OneLineParseErrors(logging.Filter):
    """A malformed request is the client's problem: one log line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "malformed request from %s: %s", (
                peer, " ".join(str(exc).split())[:200])
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_parse_errors() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, OneLineParseErrors) for f in server_log.filters):
        server_log.addFilter(OneLineParseErrors())


def create_app(gw: Gateway) -> web.Application:
    _quiet_parse_errors()
    # aiohttp answers a request it cannot parse by itself, before any hook of ours runs: its
    # default Server header would name Python and aiohttp there.
    setattr(aiohttp_web_response, "SERVER_SOFTWARE", SERVER)  # noqa: B010
    limits = gw.settings.limits
    app = web.Application(middlewares=[pipeline.pipeline_middleware],
                          client_max_size=64 * 1024, handler_args={
                              "max_line_size": limits.max_line_size,
                              "max_field_size": limits.max_field_size,
                              "max_headers": limits.max_headers,
                              # aiohttp closes a connection still waiting for a complete
                              # request when this runs out: the header deadline (slowloris)
                              # and the idle keep-alive limit at once.
                              "keepalive_timeout": limits.header_timeout})
    app[GATEWAY] = gw
    app.on_response_prepare.append(own_headers)
    app.cleanup_ctx.append(_resources)
    add_routes(app)
    fastpath.install(app, gw, _authz_route(app))
    return app


def _authz_route(app: web.Application) -> AbstractRoute:
    """The route `/_gateway/authz` exactly (not Envoy's `/_gateway/authz/{tail}`)."""
    for resource in app.router.resources():
        if resource.canonical == fastpath.AUTHZ_PATH:
            return next(iter(resource))
    raise RuntimeError("no /_gateway/authz route")


def add_routes(app: web.Application) -> None:
    r = app.router
    g = "/_gateway"
    r.add_get(f"{g}/login", account.login_form)
    r.add_post(f"{g}/login", account.login)
    r.add_post(f"{g}/login/code", account.login_code)
    r.add_post(f"{g}/logout", account.logout)
    r.add_get(f"{g}/whoami", account.whoami)
    r.add_get(f"{g}/oidc/start", oidc_pages.start)
    r.add_get(f"{g}/oidc/callback", oidc_pages.callback)
    r.add_post(f"{g}/oidc/backchannel-logout", oidc_pages.backchannel_logout)
    r.add_post(f"{g}/reauth", stepup.password_again)
    r.add_route("*", f"{g}/account", me.account)
    r.add_post(f"{g}/account/totp", totp.manage)
    language.add_routes(app)
    r.add_route("*", f"{g}/activate", me.redeem_link)
    r.add_route("*", f"{g}/reset", me.redeem_link)
    r.add_get(f"{g}/select-user", select_user.select_user)
    r.add_get(f"{g}/api/buyers", select_user.buyers_api)
    r.add_post(f"{g}/impersonate", select_user.start)
    r.add_post(f"{g}/impersonate/stop", select_user.stop)
    r.add_post(f"{g}/impersonate/switch", select_user.switch)
    r.add_post(f"{g}/impersonate/mode", mode.switch_mode)
    approvals.add_routes(app)
    access.add_routes(app)
    r.add_get(f"{g}/healthz", ops.healthz)
    r.add_get(f"{g}/readyz", ops.readyz)
    r.add_get(f"{g}/metrics", ops.metrics)
    r.add_get(f"{g}/.well-known/jwks.json", ops.jwks)
    r.add_route("*", f"{g}/authz", ops.authz)
    r.add_route("*", f"{g}/authz/{{tail:.*}}", ops.authz)
    r.add_static(f"{g}/static", STATIC, append_version=False)
    admin.add_routes(app)
    r.add_route("*", "/{tail:.*}", pipeline.proxy, expect_handler=defer_expect)


__all__ = ["build_gateway", "create_app", "reload_policy"]
