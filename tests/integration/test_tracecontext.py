"""W3C trace context: accepted from trusted proxies only, a child span to the shop, the
trace id on every audit line of the request."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from gateway.request.tracecontext import parse, start
from tests.support.gateway import audit_lines, login

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(("value", "expected"), [
    (VALID, (TRACE, PARENT, "01")),
    (f" {VALID} ", (TRACE, PARENT, "01")),
    (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, "00")),
    (f"01-{TRACE}-{PARENT}-01-later-field", (TRACE, PARENT, "01")),
    (f"00-{TRACE}-{PARENT}-01-extra", None),
    (f"ff-{TRACE}-{PARENT}-01", None),
    (f"00-{'0' * 32}-{PARENT}-01", None),
    (f"00-{TRACE}-{'0' * 16}-01", None),
    (f"00-{TRACE.upper()}-{PARENT}-01", None),
    (f"00-{TRACE[:-1]}-{PARENT}-01", None),
    (f"00-{TRACE}-{PARENT}", None),
    ("", None),
    (None, None),
    ("garbage", None),
], ids=["valid", "spaces", "not-sampled", "future-version", "v00-extra", "version-ff",
        "zero-trace", "zero-parent", "uppercase", "short-trace", "no-flags", "empty", "absent",
        "garbage"])
def test_parse(value, expected) -> None:
    """Only a well-formed traceparent is continued; anything else starts a new trace."""
    assert parse(value) == expected


def test_untrusted_caller_cannot_choose_the_trace() -> None:
    """From an untrusted address a valid traceparent is ignored: a new trace id."""
    found = start(VALID, "vendor=x", trusted=False)
    assert found.trace_id != TRACE and found.parent_id is None and found.state is None
    assert len(found.trace_id) == 32 and len(found.span_id) == 16


async def _cart(client, headers):
    await login(client, "buyer-alice")
    resp = await client.get("/cart", headers=headers)
    assert resp.status == 200


def _sent(upstream) -> tuple[list[str], list[str]]:
    return upstream.last.all("traceparent"), upstream.last.all("tracestate")


@pytest.mark.parametrize("header", ["traceparent", "TraceParent", "TRACEPARENT"])
async def test_client_trace_is_replaced(make_gateway, upstream, header) -> None:
    """A client's traceparent (any spelling) and tracestate never reach the shop: it gets
    exactly one traceparent of a new trace, and the audit line names that trace."""
    client = await make_gateway()
    await _cart(client, {header: VALID, "tracestate": "vendor=spoofed"})
    (sent,), states = _sent(upstream)
    assert states == []
    version, trace_id, span_id, flags = sent.split("-")
    assert (version, flags) == ("00", "00") and trace_id != TRACE and span_id != PARENT
    request = [r for r in audit_lines(client) if r["event"] == "request"][-1]
    assert request["trace_id"] == trace_id


async def test_trusted_proxy_trace_is_continued(make_gateway, upstream) -> None:
    """From a trusted proxy the trace goes on: same trace id and flags, a new span id for
    the gateway (the shop's parent), tracestate kept, the trace id in the audit."""
    client = await make_gateway(trusted_proxies=(ip_network("127.0.0.1/32"),))
    await _cart(client, {"traceparent": VALID, "tracestate": "vendor=ok"})
    (sent,), states = _sent(upstream)
    assert states == ["vendor=ok"]
    _v, trace_id, span_id, flags = sent.split("-")
    assert (trace_id, flags) == (TRACE, "01") and span_id != PARENT
    request = [r for r in audit_lines(client) if r["event"] == "request"][-1]
    assert request["trace_id"] == TRACE


async def test_every_audit_line_of_a_request_has_its_trace(make_gateway, upstream) -> None:
    """Event lines written while handling a request (login) carry its trace id; each
    request its own."""
    client = await make_gateway()
    await login(client, "buyer-alice")
    await client.get("/cart")
    lines = audit_lines(client)
    assert all("trace_id" in r for r in lines)
    login_line = next(r for r in lines if r["event"] == "login")
    login_request = next(r for r in lines if r["event"] == "request"
                         and r["request_id"] == login_line["request_id"])
    assert login_line["trace_id"] == login_request["trace_id"] is not None
    traces = [r["trace_id"] for r in lines if r["event"] == "request"]
    assert len(set(traces)) == len(traces)
