"""Prometheus metrics of one gateway process, in a registry of its own."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = RequestTally()
        r.register(self.requests)
        self.impersonations = Counter("csrgw_impersonations_total", "Impersonation events",
                                      ["event"], registry=r)
        self.approvals = Counter("csrgw_approvals_total", "Four-eyes approval events",
                                 ["event"], registry=r)
        self.limits_exceeded = Counter("csrgw_impersonation_limits_exceeded_total",
                                       "A CSR went past a volume limit", ["limit", "mode"],
                                       registry=r)
        self.policy_reloads = Counter("csrgw_policy_reloads_total", "Policy reloads",
                                      ["result"], registry=r)
        self.policy_ok = Gauge("csrgw_policy_loaded_ok",
                               "1 when the last policy load succeeded", registry=r)
        self.upstream_inflight = Gauge("csrgw_upstream_inflight",
                                       "Requests being forwarded now", registry=r)
        self.audit_healthy = Gauge("csrgw_audit_healthy", "1 when the audit sink writes",
                                   registry=r)
        self.audit_refused = Gauge("csrgw_audit_refused",
                                   "Requests refused since the audit sink went down",
                                   registry=r)
        self.workers_alive = Gauge("csrgw_workers_alive",
                                   "Worker processes alive (run --workers N)", registry=r)
        self.workers_configured = Gauge("csrgw_workers_configured",
                                        "Worker processes configured", registry=r)
        self.workers_alive.set(1)
        self.workers_configured.set(1)
        self.policy_ok.set(1)
        self.audit_healthy.set(1)

    def observe(self, decision: str | None, reason: str | None, seconds: float) -> None:
        self.requests.observe(decision, reason, seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestTally(Collector):
    """Every request's decision, reason and duration: plain counts on the hot path
    (prometheus_client's Counter and Histogram take a lock per call), turned
    into metric families only when /_gateway/metrics is read. One event loop writes them."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one: above every bound (+Inf)
        self.total_seconds = 0.0

    def observe(self, decision: str | None, reason: str | None, seconds: float) -> None:
        key = (decision or "none", reason or "none")
        self.counts[key] = self.counts.get(key, 0) + 1
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total_seconds += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("csrgw_requests", "Requests by decision and reason",
                                       labels=("decision", "reason"))
        for (decision, reason), count in sorted(self.counts.items()):
            requests.add_metric((decision, reason), count)
        yield requests
        cumulative, running = [], 0
        for bound, count in zip((*map(floatToGoString, BUCKETS), "+Inf"), self.buckets,
                                strict=True):
            running += count
            cumulative.append((bound, running))
        yield HistogramMetricFamily("csrgw_request_duration_seconds", "Time in the gateway",
                                    buckets=cumulative, sum_value=self.total_seconds)
