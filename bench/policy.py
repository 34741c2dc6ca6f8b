"""Decisions per second, cached and uncached, for the questions the gateway asks (`bench`).

Rounds are interleaved across scenarios and the best round of each counts, so a burst of
other work on the machine moves every scenario alike and does not decide the numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.core.domain import Actor
from gateway.core.settings import Settings
from gateway.policy.decision import Decision
from gateway.policylab.harness import Harness

# (scenario, user, acting as, question): a page name, "impersonate <buyer>" or "admin <area>"
SCENARIOS = (
    ("buyer page", "buyer-alice", None, "storefront"),
    ("CSR page", "csr-carol", None, "reports"),
    ("impersonated page", "csr-carol", "buyer-alice", "checkout"),
    ("impersonation re-check", "csr-carol", None, "impersonate buyer-alice"),
    ("impersonation refused", "csr-carol", None, "impersonate buyer-ivan"),
    ("admin area", "admin-ann", None, "admin users"),
)
UNCACHED_BATCH, CACHED_BATCH = 20, 2000


def question(bench: Harness, user: str, acting: str | None, asked: str) -> Callable[[], Decision]:
    """One decision as the gateway asks it, through the engine's cache."""
    directory, engine = bench.directory, bench.engine
    actor = Actor(bench.user(user), bench.user(acting) if acting else None)
    kind, _, name = asked.partition(" ")
    if kind == "impersonate":
        buyer = bench.user(name)
        return lambda: engine.impersonation(actor, buyer, directory)
    if kind == "admin":
        return lambda: engine.admin(actor, "read", name, directory)
    page = bench.settings.pages[asked]
    action = "order" if asked == "checkout" else "view"
    return lambda: engine.page(actor, action, page, directory)


def _per_call(fn: Callable[[], Any], calls: int, before: Callable[[], Any] | None) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        if before is not None:
            before()
        fn()
    return (time.perf_counter() - start) / calls


def policy_benchmark(settings: Settings, seconds: float = 2.0) -> list[dict[str, Any]]:
    """Uncached: the decision cache is emptied before every question (the cost of the
    first request after a change); cached: the same question again."""
    bench = Harness(settings)
    asks = [(label, question(bench, *spec)) for label, *spec in SCENARIOS]
    clear = bench.engine.current.cache.clear
    best = {label: [float("inf"), float("inf")] for label, _ in asks}
    deadline = time.perf_counter() + seconds
    while True:
        for label, ask in asks:
            best[label][0] = min(best[label][0], _per_call(ask, UNCACHED_BATCH, clear))
            ask()
            best[label][1] = min(best[label][1], _per_call(ask, CACHED_BATCH, None))
        if time.perf_counter() > deadline:
            break
    return [{"scenario": label, "uncached_us": round(cold * 1e6, 1),
             "cached_us": round(hot * 1e6, 2), "uncached_per_s": round(1 / cold),
             "cached_per_s": round(1 / hot)} for label, (cold, hot) in best.items()]


def render(rows: list[dict[str, Any]]) -> str:
    """A plain table for the terminal."""
    lines = [f"{'scenario':24} {'uncached us':>12} {'per s':>8} {'cached us':>10} {'per s':>10}"]
    lines += [f"{r['scenario']:24} {r['uncached_us']:>12} {r['uncached_per_s']:>8} "
              f"{r['cached_us']:>10} {r['cached_per_s']:>10}" for r in rows]
    return "\n".join(lines)
