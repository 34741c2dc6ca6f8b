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
    """Uncached: the decision cache is emptied before every question."""
    bench = Bench(settings)
    rows = []
    for label, username, buyer_name, page_name in SCENARIOS:
        user = bench.user(username)
        buyer = bench.user(buyer_name) if buyer_name else None
        actor = Actor(user, None if page_name is None else buyer)

        def ask(_i: int, actor: Actor = actor, buyer: Any = buyer,
                page_name: str | None = page_name) -> None:
            if page_name is None:
                bench.engine.impersonation(actor, buyer, bench.directory)
            else:
                bench.engine.page(actor, "view", settings.pages[page_name], bench.directory)

        def cold(i: int, ask: Any = ask) -> None:
            bench.engine.current.cache.clear()
            ask(i)

        n_cold, t_cold = _time(cold, seconds)
        ask(0)
        n_hot, t_hot = _time(ask, seconds / 2)
        rows.append({"scenario": label, "uncached_us": round(t_cold / n_cold * 1e6, 1),
                     "cached_us": round(t_hot / n_hot * 1e6, 2),
                     "uncached_per_s": round(n_cold / t_cold),
                     "cached_per_s": round(n_hot / t_hot)})
    return rows
