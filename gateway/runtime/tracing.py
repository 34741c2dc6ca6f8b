"""Optional OpenTelemetry traces: one span per request, in the W3C trace the gateway resolved.

The span's id is the span id the shop receives in `traceparent`, so the shop's spans are its
children; its parent is the trusted proxy's span when one was named. Sampling is the SDK's
(`OTEL_TRACES_SAMPLER`, default parent-based: a proxy's unsampled trace is not exported).
"""

from __future__ import annotations

import importlib.util
import os
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.core.settings import TracingSettings
    from gateway.runtime.context import RequestContext

ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
MISSING = "needs `pip install csr-gateway[otel]`"  # printed after the key
# The ids the next span must take (the gateway chose them before the request ran).
_NEXT_IDS: ContextVar[tuple[int, int] | None] = ContextVar("csrgw_otel_ids", default=None)


def enabled(settings: TracingSettings) -> bool:
    return bool(settings.otlp_endpoint or os.environ.get(ENV_ENDPOINT))


def missing(settings: TracingSettings) -> str | None:
    """What `check` and `run` print after `tracing.otlp_endpoint` when tracing is asked for
    but not installed."""
    if not enabled(settings):
        return None
    why = "" if settings.otlp_endpoint else f" ({ENV_ENDPOINT} is set)"
    for module in ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http"):
        try:
            if importlib.util.find_spec(module) is None:
                return MISSING + why
        except ModuleNotFoundError:
            return MISSING + why
    return None


class Tracer:
    """Turns a finished request's context into one span."""

    def __init__(self, provider: Any) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("csr-gateway")

    def record(self, ctx: RequestContext, status: int) -> None:
        # opentelemetry is an optional dependency: imported only once tracing is on
        from opentelemetry import trace
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        tc = ctx.trace
        if tc is None:
            return
        trace_id = int(tc.trace_id, 16)
        parent = None
        if tc.parent_id is not None:
            remote = SpanContext(trace_id, int(tc.parent_id, 16), is_remote=True,
                                 trace_flags=TraceFlags(int(tc.flags, 16)))
            parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        ended = time.time_ns()
        began = ended - int((time.perf_counter() - ctx.started) * 1e9)
        identity = ctx.identity_fields()
        attributes = {
            "http.request.method": ctx.method, "url.path": ctx.path,
            "csrgw.page": ctx.page, "csrgw.decision": ctx.decision, "csrgw.reason": ctx.reason,
            "http.response.status_code": status, "csrgw.user": identity["user"],
            "csrgw.csr": identity["csr"], "csrgw.request_id": ctx.request_id,
        }
        token = _NEXT_IDS.set((trace_id, int(tc.span_id, 16)))
        try:
            span = self._tracer.start_span(
                f"{ctx.method} {ctx.page}" if ctx.page else ctx.method, context=parent,
                kind=SpanKind.SERVER, start_time=began,
                attributes={k: v for k, v in attributes.items() if v is not None})
        finally:
            _NEXT_IDS.reset(token)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, ctx.reason or None))
        span.end(end_time=ended)

    def shutdown(self) -> None:
        self._provider.shutdown()


def from_settings(settings: TracingSettings) -> Tracer | None:
    """The OTLP/HTTP tracer the settings ask for, or None when tracing is off."""
    if not enabled(settings):
        return None
    # optional dependency (the `otel` extra); `check` has reported its absence already
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if settings.otlp_endpoint:
        # like OTEL_EXPORTER_OTLP_ENDPOINT, the setting is the base URL of the collector
        endpoint = settings.otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        exporter = OTLPSpanExporter(endpoint=endpoint)
    else:
        exporter = OTLPSpanExporter()
    return _tracer(BatchSpanProcessor(exporter), settings.service_name)


def with_exporter(exporter: Any, service_name: str = "csr-gateway") -> Tracer:
    """A tracer that hands each span to `exporter` as it ends (tests, debugging)."""
    # optional dependency (the `otel` extra)
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    return _tracer(SimpleSpanProcessor(exporter), service_name)


def _tracer(processor: Any, service_name: str) -> Tracer:
    # optional dependency (the `otel` extra)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

    class _GatewayIds(IdGenerator):
        """The span takes the ids already sent to the shop and written in the audit line."""

        _random = RandomIdGenerator()

        def generate_span_id(self) -> int:
            ids = _NEXT_IDS.get()
            return ids[1] if ids else self._random.generate_span_id()

        def generate_trace_id(self) -> int:
            ids = _NEXT_IDS.get()
            return ids[0] if ids else self._random.generate_trace_id()

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                              id_generator=_GatewayIds())
    provider.add_span_processor(processor)
    return Tracer(provider)
