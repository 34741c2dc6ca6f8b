"""OpenTelemetry: one span per request, in the trace the audit line and the shop's
traceparent name, carrying the decision."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.core.settings import TracingSettings
from gateway.runtime import tracing as otel
from tests.support.gateway import ROOT, audit_lines, gw_of, impersonate, login

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


async def _traced(make_gateway, **changes):
    client = await make_gateway(**changes)
    exporter = InMemorySpanExporter()
    gw_of(client).tracer = otel.with_exporter(exporter)
    return client, exporter


def _request_line(client) -> dict:
    return [r for r in audit_lines(client) if r["event"] == "request"][-1]


async def test_proxied_request_is_one_span_in_the_shops_trace(make_gateway, upstream) -> None:
    """A CSR's proxied request: one span whose trace id is the audit line's and the shop's,
    whose span id is the parent the shop was given, with the decision attributes."""
    client, exporter = await _traced(make_gateway)
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == 303
    exporter.clear()
    resp = await client.get("/cart")
    assert resp.status == 200
    (span,) = exporter.get_finished_spans()
    (sent,) = upstream.last.all("traceparent")
    _v, trace_id, span_id, _flags = sent.split("-")
    line = _request_line(client)
    assert f"{span.context.trace_id:032x}" == trace_id == line["trace_id"]
    assert f"{span.context.span_id:016x}" == span_id
    assert span.parent is None
    attrs = dict(span.attributes)
    assert attrs["http.request.method"] == "GET" and attrs["url.path"] == "/cart"
    assert attrs["csrgw.decision"] == "allow" == line["decision"]
    assert attrs["http.response.status_code"] == 200
    assert (attrs["csrgw.user"], attrs["csrgw.csr"]) == ("buyer-alice", "csr-carol")
    assert attrs["csrgw.page"] == line["page"]
    assert span.resource.attributes["service.name"] == "csr-gateway"


async def test_trusted_proxy_span_is_the_parent(make_gateway, upstream) -> None:
    """Behind a trusted proxy the span continues its trace, the proxy's span as parent."""
    client, exporter = await _traced(make_gateway,
                                     trusted_proxies=(ip_network("127.0.0.1/32"),))
    await login(client, "buyer-alice")
    exporter.clear()
    resp = await client.get("/cart", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert resp.status == 200
    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == TRACE == _request_line(client)["trace_id"]
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT
    assert upstream.last.all("traceparent") == [f"00-{TRACE}-{span.context.span_id:016x}-01"]


async def test_denied_request_span_says_deny(make_gateway) -> None:
    """A refused request is a span too, with decision deny and the audit line's reason."""
    client, exporter = await _traced(make_gateway)
    await login(client, "buyer-alice")
    exporter.clear()
    resp = await client.get("/cart?_method=DELETE", allow_redirects=False)
    line = _request_line(client)
    assert line["decision"] == "deny"
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes)
    assert attrs["csrgw.decision"] == "deny"
    assert attrs["csrgw.reason"] == line["reason"]
    assert attrs["http.response.status_code"] == resp.status
    assert f"{span.context.trace_id:032x}" == line["trace_id"]


@pytest.mark.parametrize(("endpoint", "env", "on"), [
    (None, None, False),
    ("http://127.0.0.1:4318", None, True),
    (None, "http://127.0.0.1:4318", True),
], ids=["off", "setting", "env"])
def test_enabled_by_setting_or_env(monkeypatch, endpoint, env, on) -> None:
    """Tracing is on with `tracing.otlp_endpoint` or OTEL_EXPORTER_OTLP_ENDPOINT, else off."""
    monkeypatch.delenv(otel.ENV_ENDPOINT, raising=False)
    if env:
        monkeypatch.setenv(otel.ENV_ENDPOINT, env)
    assert otel.enabled(TracingSettings(otlp_endpoint=endpoint)) is on


def test_missing_package_is_one_line(monkeypatch, tmp_path, capsys) -> None:
    """Asked for but not installed: `check` prints one line naming the key and the extra."""
    import importlib.util

    from gateway.cli.checks import check_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name.startswith("opentelemetry") else real(name, *a))
    monkeypatch.delenv(otel.ENV_ENDPOINT, raising=False)
    assert otel.missing(TracingSettings()) is None
    config = tmp_path / "gateway.yaml"
    config.write_text(f"policies_dir: {ROOT / 'policies'}\nstate_dir: {tmp_path}\n"
                      f"audit: {{path: {tmp_path / 'audit.jsonl'}}}\n"
                      "tracing: {otlp_endpoint: 'http://127.0.0.1:4318'}\n")
    assert check_config(str(config)) == 1
    err = capsys.readouterr()
    out = err.out + err.err
    assert "tracing.otlp_endpoint: needs `pip install csr-gateway[otel]`" in out
    assert "Traceback" not in out


async def test_otlp_export_reaches_a_collector(make_gateway, aiohttp_server) -> None:
    """With `tracing.otlp_endpoint` the span is POSTed over OTLP/HTTP to the collector's
    /v1/traces (flushed at shutdown), with the service name and the request's trace id."""
    from aiohttp import web
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(collector)
    client = await make_gateway()
    tracer = otel.from_settings(TracingSettings(
        otlp_endpoint=str(server.make_url("")), service_name="gw-test"))
    assert tracer is not None
    gw_of(client).tracer = tracer
    await login(client, "buyer-alice")
    assert (await client.get("/cart")).status == 200
    trace_id = _request_line(client)["trace_id"]
    await asyncio.to_thread(tracer.shutdown)
    spans = [(resource.resource, span) for request in received
             for resource in request.resource_spans
             for scope in resource.scope_spans for span in scope.spans]
    assert trace_id in {span.trace_id.hex() for _r, span in spans}
    names = {a.value.string_value for r, _s in spans for a in r.attributes
             if a.key == "service.name"}
    assert names == {"gw-test"}
