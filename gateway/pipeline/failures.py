"""What a failure becomes: the right status and page, and its reason on the audit line.

A gateway error keeps its own status and reason; the router's 404/405 are named; a database,
Redis or socket failure fails closed with 503; anything else is a 500 with nothing
forwarded. No failure is logged and carried on past.
"""

from __future__ import annotations

import logging
import sys

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.errors import GatewayError, ServiceUnavailable
from gateway.runtime.context import RequestContext
from gateway.runtime.responses import error_response

log = logging.getLogger("csr_gateway")


def dependency_failed(exc: BaseException) -> bool:
    """A database, Redis or socket failure (fail closed with 503), not a bug (500). redis is
    imported only by the stores that use it, so its errors are recognised only once loaded."""
    if isinstance(exc, SQLAlchemyError | OSError):
        return True
    redis = sys.modules.get("redis.exceptions")
    return redis is not None and isinstance(exc, redis.RedisError)


def refused(request: web.Request, ctx: RequestContext, err: GatewayError) -> web.StreamResponse:
    if ctx.decision == "allow":  # allowed, then failed on the way (upstream, body limits)
        ctx.reason = err.reason
    else:
        ctx.deny(err.reason)
    return error_response(request, err)


def router_refused(ctx: RequestContext, exc: web.HTTPException) -> web.StreamResponse:
    """The router's own 404/405 for paths under /_gateway/."""
    ctx.deny("no_route" if exc.status == 404 else "method_not_allowed")
    exc.headers["Cache-Control"] = "no-store"
    return exc


def crashed(request: web.Request, ctx: RequestContext, exc: Exception) -> web.StreamResponse:
    if dependency_failed(exc):
        log.error("dependency unavailable in request %s: %r", ctx.request_id, exc)
        ctx.deny("dependency_unavailable")
        return error_response(request, ServiceUnavailable("dependency_unavailable"))
    log.exception("unhandled error in request %s", ctx.request_id)
    ctx.deny("internal_error")
    return error_response(request, GatewayError())
