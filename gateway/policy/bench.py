"""Decisions per second, cached and uncached, for the default personas (for `bench`)."""

from __future__ import annotations

import time
from typing import Any

from gateway.domain import Actor
from gateway.policy.tools import Bench
from gateway.settings import Settings

SCENARIOS = (("buyer", "buyer-alice", None, "storefront"),
             ("csr", "csr-carol", None, "reports"),
             ("impersonated", "csr-carol", "buyer-alice", "checkout"),
             ("impersonation re-check", "csr-carol", "buyer-alice", None))


def _time(fn: Any, seconds: float) -> tuple[int, float]:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(count)
        count += 1
    return count, time.perf_counter() - start


def policy_benchmark(settings: Settings, seconds: float = 0.5) -> list[dict[str, Any]]:
    """Uncached: a new directory version per call (every cache key misses)."""
    bench = Bench(settings)
    rows = []
    for label, username, buyer_name, page_name in SCENARIOS:
        user = bench.user(username)
        buyer = bench.user(buyer_name) if buyer_name else None
        def ask(version: int, user=user, buyer=buyer, page_name=page_name,  # type: ignore[no-untyped-def]
                engine=bench.engine) -> None:
            actor = Actor(user, None if page_name is None else buyer,
                          directory_version=version)
            if page_name is None:
                engine.impersonation(actor, buyer, bench.directory)
            else:
                engine.page(actor, "view", settings.pages[page_name], bench.directory)

        n_cold, t_cold = _time(lambda i, ask=ask: ask(-10 - i), seconds)
        ask(-1)
        n_hot, t_hot = _time(lambda _i, ask=ask: ask(-1), seconds / 2)
        rows.append({"scenario": label, "uncached_us": round(t_cold / n_cold * 1e6, 1),
                     "cached_us": round(t_hot / n_hot * 1e6, 2),
                     "uncached_per_s": round(n_cold / t_cold),
                     "cached_per_s": round(n_hot / t_hot)})
    return rows
