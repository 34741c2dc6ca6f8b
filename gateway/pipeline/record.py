"""Record: the intent of a state-changing request made durable before it is forwarded, and
the one audit line (with the metrics, the trace span and the customer's tally) after it."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.audit.sink import SinkDown
from gateway.core.errors import ServiceUnavailable
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.responses import error_response
from gateway.services.notify import Notifier

log = logging.getLogger("csr_gateway")
# Answer while the audit sink is down (they change nothing, so they need no line then).
PROBES = frozenset({"/_gateway/healthz", "/_gateway/readyz", "/_gateway/metrics"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def write_ahead(gw: Gateway, ctx: RequestContext) -> None:
    """A state-changing request goes on only once its intent line is on the disk."""
    gw.audit.emit("request_intent", **ctx.intent_fields())
    try:
        await gw.audit.durable()
    except SinkDown as exc:
        if gw.settings.audit.fail_closed:
            log.error("audit intent of request %s not durable: %s", ctx.request_id, exc)
            ctx.deny("audit_unavailable")
            raise ServiceUnavailable("audit_unavailable") from exc


def finish(gw: Gateway, ctx: RequestContext, status: int) -> None:
    """The request's audit line, written once whatever happened, and what counts it."""
    gw.audit.emit("request", **ctx.audit_fields(status))
    if gw.tracer is not None:
        gw.tracer.record(ctx, status)
    if gw.notifier is not None:
        count_buyer_action(gw.notifier, ctx, status)
    if gw.limits is not None:  # a state-changing action as the buyer counts against the CSR
        gw.limits.acted(gw, ctx)
    gw.metrics.observe(ctx.decision, ctx.reason, time.perf_counter() - ctx.started)


def count_buyer_action(notifier: Notifier, ctx: RequestContext, status: int) -> None:
    """What the customer's summary counts: requests forwarded as the buyer, not assets or the
    gateway's own pages."""
    actor = ctx.actor
    imp = actor.impersonation if actor is not None and actor.acting_as else None
    if imp is None or ctx.decision != "allow" or ctx.reason == "public_page" or \
            (ctx.path or "").startswith("/_gateway/"):
        return
    change = None
    if ctx.state_changing:
        change = {"method": ctx.method, "path": ctx.path, "page": ctx.page,
                  "action": ctx.action, "status": status, "at": round(time.time(), 3)}
    notifier.count(imp.id, change)


async def while_sink_down(request: web.Request, handler: Handler, gw: Gateway,
                          ctx: RequestContext) -> web.StreamResponse:
    """No audit, no service: probes still answer; every other request is refused and
    counted (a line each would only refill the disk that just ran full)."""
    if request.method == "GET" and request.raw_path in PROBES:
        return await handler(request)
    gw.audit.refuse()
    ctx.deny("audit_unavailable")
    gw.metrics.observe(ctx.decision, ctx.reason, time.perf_counter() - ctx.started)
    return error_response(request, ServiceUnavailable("audit_unavailable"))
