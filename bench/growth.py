"""How cost grows: with policy size, with the number of sessions, with body size.

`csr-gateway bench --growth` prints these tables after the main one (docs/performance.md).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import budget, targets
from bench.procs import Server, _jiffies, free_port
from bench.report import markdown
from bench.scenarios import SCENARIOS, login

POLICY_SIZES = (0, 100, 1_000, 10_000)
SESSION_STEPS = "1000,10000,50000"
BODY_SIZES = (64 * 1024, 1024 ** 2, 16 * 1024 ** 2, 256 * 1024 ** 2)


def extra_facts(count: int, same_group: bool) -> str:
    """`count` more grant facts: for groups nobody has, or for the buyer's own group."""
    lines = [f'grant("{"Buyer" if same_group else f"Group {i}"}", "page_{i}", "view");'
             for i in range(count)]
    return "\n".join(lines) + "\n"


def decision_us(settings: Any, policies: Path, calls: int) -> dict[str, float]:
    """Uncached (the cache emptied before each call) and cached decisions, in us."""
    from gateway.core.domain import Actor
    from gateway.policylab.harness import Harness

    started = time.perf_counter()
    bench = Harness(settings, policies)
    load_s = time.perf_counter() - started
    # facts ids as the live directory gives them: without them nothing is cached
    directory = dataclasses.replace(bench.directory, facts={
        name: i for i, name in enumerate(bench.directory.users, 1)})
    buyer, csr = directory.users["buyer-alice"], directory.users["csr-carol"]
    page = settings.pages["storefront"]
    found = {"load_ms": load_s * 1000}
    for label, actor in (("buyer", Actor(buyer)), ("impersonated", Actor(csr, buyer))):
        cache = bench.engine.current.cache
        start = time.perf_counter()
        for _ in range(calls):
            cache.clear()
            bench.engine.page(actor, "view", page, directory)
        found[f"{label}_uncached_us"] = (time.perf_counter() - start) / calls * 1e6
        start = time.perf_counter()
        for _ in range(calls * 20):
            bench.engine.page(actor, "view", page, directory)
        found[f"{label}_cached_us"] = (time.perf_counter() - start) / (calls * 20) * 1e6
    return found


def policy_growth(config: Path, sizes: tuple[int, ...] = POLICY_SIZES,
                  calls: int = 300) -> list[dict[str, Any]]:
    from gateway.config.load import load_settings

    settings = load_settings(config)
    decision_us(settings, settings.policies_dir, 10)  # first use loads the engine library
    rows = []
    with tempfile.TemporaryDirectory(prefix="csrgw-policies-") as tmp:
        for same_group, size in itertools.product((False, True), sizes):
            if same_group and size == 0:
                continue
            folder = Path(tmp) / f"{int(same_group)}-{size}"
            folder.mkdir()
            for path in settings.policies_dir.glob("*.polar"):
                shutil.copy(path, folder)
            (folder / "zz_bench_extra.polar").write_text(extra_facts(size, same_group))
            rows.append({"extra_facts": size, "for": "Buyer group" if same_group else
                         "other groups", **decision_us(settings, folder, calls)})
    return rows


def policy_table(rows: list[dict[str, Any]]) -> str:
    lines: list[tuple[str, ...]] = [("extra grant facts", "for", "load ms", "buyer uncached us",
                                     "impersonated uncached us", "cached us")]
    for r in rows:
        lines.append((f"{r['extra_facts']:,}", r["for"], f"{r['load_ms']:.0f}",
                      f"{r['buyer_uncached_us']:.0f}", f"{r['impersonated_uncached_us']:.0f}",
                      f"{r['buyer_cached_us']:.2f}"))
    return markdown(lines)


def session_table(result: dict[str, Any]) -> str:
    lines: list[tuple[str, ...]] = [("active sessions", "RSS MB", "peak RSS MB")]
    for point in result["points"]:
        lines.append((f"{point['sessions']:,}", f"{point['rss_mb']:.1f}",
                      f"{point['hwm_mb']:.1f}"))
    lines.append(("per session", f"{result['per_session_kb']:.2f} kB", ""))
    return markdown(lines)


def body_growth(folder: Path, config: Path, sizes: tuple[int, ...] = BODY_SIZES
                ) -> list[dict[str, Any]]:
    """One body each way through the minimal proxy and the gateway: MB/s and CPU per MB."""
    up = targets.upstream(folder)
    rows: list[dict[str, Any]] = []
    try:
        up.start()
        gc_config = targets.GatewayConfig(config, folder / "growth-state", up.url)
        gc_config.seed()
        servers = {"minproxy": targets.minproxy(folder, up.url, 1),
                   "gateway": targets.gateway(gc_config, 1)}
        try:
            for server in servers.values():
                server.start(timeout=60)
            name = gc_config.cookie_name()
            cookie = f"{name}={login(servers['gateway'].url, SCENARIOS['buyer'], name)}"
            for size, (target, server) in itertools.product(sizes, servers.items()):
                for method, path in (("POST", "/saved-jobs"),
                                     ("GET", f"/products/download-{size}")):
                    rows.append({"target": target, **_one_body(server, method, path, size,
                                                               cookie)})
        finally:
            for server in servers.values():
                server.stop()
    finally:
        up.stop()
    return rows


def _one_body(server: Server, method: str, path: str, size: int, cookie: str
              ) -> dict[str, Any]:
    repeat = max(1, (64 * 1024 ** 2) // size)  # small bodies: enough of them to time
    tick = os.sysconf("SC_CLK_TCK")
    jiffies = _jiffies(server.pids())
    seconds, peak = 0.0, 0.0
    for _ in range(repeat):
        result = budget.stream(server, method, path, size, cookie)
        seconds += result["seconds"]
        peak = max(peak, result["growth_mb"])
    cpu_s = (_jiffies(server.pids()) - jiffies) / tick
    mb = size * repeat / 1024 ** 2
    return {"method": method, "size": size, "mb_per_s": mb / seconds,
            "cpu_ms_per_mb": cpu_s * 1000 / mb, "rss_growth_mb": peak}


def body_table(rows: list[dict[str, Any]]) -> str:
    lines: list[tuple[str, ...]] = [("body", "direction", "target", "MB/s", "CPU ms per MB",
                                     "RSS growth MB")]
    for r in rows:
        size = r["size"]
        label = f"{size // 1024 ** 2} MB" if size >= 1024 ** 2 else f"{size // 1024} KB"
        lines.append((label, "upload" if r["method"] == "POST" else "download", r["target"],
                      f"{r['mb_per_s']:.0f}", f"{r['cpu_ms_per_mb']:.2f}",
                      f"{r['rss_growth_mb']:.1f}"))
    return markdown(lines)


def run(folder: Path, config: Path, quick: bool = False) -> tuple[str, dict[str, Any]]:
    """All three tables as text, and their numbers."""
    sizes = (0, 1_000) if quick else POLICY_SIZES
    policy = policy_growth(config, sizes, calls=50 if quick else 300)
    gc_config = targets.GatewayConfig(config, folder / "sessions-state", "http://127.0.0.1:9")
    gc_config.seed()
    sessions = budget.memory(gc_config.write(free_port(), 1), 10_000 if quick else 50_000,
                             requests=False, steps="1000" if quick else "1000,10000")
    bodies = body_growth(folder, config, BODY_SIZES[:2] if quick else BODY_SIZES)
    text = "\n\n".join([
        "Policy size (uncached decision; the cache makes every repeat cost the cached "
        "column):\n" + policy_table(policy),
        "Sessions (one worker, memory store, sessions stored without requests):\n"
        + session_table(sessions),
        "Body size (one body at a time, streamed both ways):\n" + body_table(bodies)])
    return text, {"policy": policy, "sessions": sessions, "bodies": bodies}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(run(Path(tmp), targets.default_config(), quick="--quick" in sys.argv)[0])
