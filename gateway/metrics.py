"""Prometheus metrics of one gateway process, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("csrgw_requests_total", "Requests by decision and reason",
                                ["decision", "reason"], registry=r)
        self.duration = Histogram("csrgw_request_duration_seconds", "Time in the gateway",
                                  buckets=BUCKETS, registry=r)
        self.impersonations = Counter("csrgw_impersonations_total", "Impersonation events",
                                      ["event"], registry=r)
        self.policy_reloads = Counter("csrgw_policy_reloads_total", "Policy reloads",
                                      ["result"], registry=r)
        self.policy_ok = Gauge("csrgw_policy_loaded_ok",
                               "1 when the last policy load succeeded", registry=r)
        self.upstream_inflight = Gauge("csrgw_upstream_inflight",
                                       "Requests being forwarded now", registry=r)
        self.audit_healthy = Gauge("csrgw_audit_healthy", "1 when the audit sink writes",
                                   registry=r)
        self._children: dict[tuple[str, str], Counter] = {}
        self.policy_ok.set(1)
        self.audit_healthy.set(1)

    def observe(self, decision: str | None, reason: str | None, seconds: float) -> None:
        key = (decision or "none", reason or "none")
        counter = self._children.get(key)
        if counter is None:  # labels() is slow; the set of (decision, reason) is small
            counter = self._children[key] = self.requests.labels(*key)
        counter.inc()
        self.duration.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
