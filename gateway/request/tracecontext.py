"""W3C trace context: which trace a request belongs to, and the span the gateway opens in it."""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from gateway.core import ids

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
# The trace of the request being handled: every audit line written meanwhile (login,
# impersonation events) carries it without each caller passing it on.
CURRENT_TRACE: ContextVar[str | None] = ContextVar("csrgw_trace_id", default=None)


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str  # the gateway's span: the shop's work is its child
    parent_id: str | None = None  # the caller's span, when a trusted proxy named one
    flags: str = "00"
    state: str | None = None  # tracestate, kept only from a trusted proxy

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def headers(self) -> list[tuple[str, str]]:
        out = [(TRACEPARENT, self.traceparent())]
        if self.state:
            out.append((TRACESTATE, self.state))
        return out

    @property
    def sampled(self) -> bool:
        return int(self.flags, 16) & 1 == 1


def parse(value: str | None) -> tuple[str, str, str] | None:
    """(trace_id, parent_id, flags) of a valid traceparent, else None (start a new trace).
    Versions after 00 may append fields; only ff is invalid."""
    if not value:
        return None
    value = value.strip()
    found = _PARENT.match(value)
    if found is None:
        return None
    version, trace_id, parent_id, flags = found.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if len(value) != 55 and (version == "00" or value[55:56] != "-"):
        return None
    return trace_id, parent_id, flags


def start(traceparent: str | None, tracestate: str | None, trusted: bool,
          sample: bool = False) -> TraceContext:
    """Continue the caller's trace when a trusted proxy sent one; otherwise a new trace (a
    client must not pick the trace its requests are filed under)."""
    found = parse(traceparent) if trusted else None
    span = ids.token_hex(8)
    if found is None:
        return TraceContext(ids.token_hex(16), span, flags="01" if sample else "00")
    trace_id, parent_id, flags = found
    return TraceContext(trace_id, span, parent_id, flags, (tracestate or None))
