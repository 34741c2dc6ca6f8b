"""How cost grows: with policy size, with the number of sessions, with body size.

`csr-gateway bench --growth` prints these tables after the main one (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import budget, targets
from bench.procs import Server, _jiffies, free_port
from bench.report import markdown
from bench.scenarios import SCENARIOS, login

POLICY_SIZES = (10, 100, 1_000, 10_000)
DIRECTORY_SIZES = (100, 1_000, 10_000, 100_000)
SESSION_COUNTS = (1_000, 10_000, 100_000, 1_000_000)
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
    """Each size in a fresh process, so its memory is its own: RSS before and after the
    engine loaded the policy with that many more grant facts."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="csrgw-policies-") as tmp:
        for same_group, size in itertools.product((False, True), sizes):
            out = subprocess.run([sys.executable, "-m", "bench.growth", "--policy-point",
                                  str(config), tmp, str(size), str(int(same_group)),
                                  str(calls)], capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"policy growth point failed:\n{out.stderr[-3000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def policy_point(config: Path, tmp: Path, size: int, same_group: bool, calls: int
                 ) -> dict[str, Any]:
    from gateway.config.load import load_settings

    settings = load_settings(config)
    decision_us(settings, settings.policies_dir, 10)  # first use loads the engine library
    gc.collect()
    before = _rss_mb()
    folder = tmp / f"{int(same_group)}-{size}"
    folder.mkdir()
    for path in settings.policies_dir.glob("*.polar"):
        shutil.copy(path, folder)
    (folder / "zz_bench_extra.polar").write_text(extra_facts(size, same_group))
    found = decision_us(settings, folder, calls)
    return {"extra_facts": size, "for": "Buyer group" if same_group else "other groups",
            **found, "memory_mb": _rss_mb() - before}


def _rss_mb() -> float:
    from bench.procs import status_kb

    return status_kb(os.getpid(), "VmRSS") / 1024


def grown_directory(base: Any, size: int) -> Any:
    """The seed directory plus `size` buyers in size/10 companies, all assigned to
    csr-carol (an assignment each): what the hot path reads, built straight in memory."""
    from gateway.core.domain import Company, DirectorySnapshot

    users, companies = dict(base.users), dict(base.companies)
    count = max(1, size // 10)
    for c in range(count):
        companies[f"co-{c}"] = Company(f"co-{c}", f"Company {c}")
    buyer = base.users["buyer-alice"]
    for i in range(size):
        users[f"buyer-{i}"] = dataclasses.replace(buyer, username=f"buyer-{i}",
                                                  email=f"buyer-{i}@example.com",
                                                  company=f"co-{i % count}")
    csr = base.users["csr-carol"]
    users["csr-carol"] = dataclasses.replace(csr, assigned_companies=(
        *csr.assigned_companies, *(f"co-{c}" for c in range(count))))
    return DirectorySnapshot(version=2, users=users, companies=companies,
                             facts={name: i for i, name in enumerate(users, start=1)})


def directory_growth(config: Path, sizes: tuple[int, ...] = DIRECTORY_SIZES,
                     calls: int = 300) -> list[dict[str, Any]]:
    """Decisions against a directory of `size` more users (and CSR assignments): page
    (buyer), impersonation (CSR as a buyer); memory of the snapshot (tracemalloc)."""
    from gateway.config.load import load_settings
    from gateway.core.domain import Actor
    from gateway.policylab.harness import Harness

    settings = load_settings(config)
    bench = Harness(settings)
    page = settings.pages["storefront"]
    rows = []
    for size in sizes:
        tracemalloc.start()
        directory = grown_directory(bench.directory, size)
        memory = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        buyer, csr = directory.users["buyer-alice"], directory.users["csr-carol"]
        last = directory.users[f"buyer-{size - 1}"]
        found: dict[str, Any] = {"users": size, "memory_mb": memory / 1024 ** 2}
        asks: dict[str, Callable[[], object]] = {
            "page": functools.partial(bench.engine.page, Actor(buyer), "view", page,
                                      directory),
            "impersonate": functools.partial(bench.engine.impersonation, Actor(csr), last,
                                             directory)}
        for label, ask in asks.items():
            found[f"{label}_uncached_us"], found[f"{label}_cached_us"] = _time_both(
                ask, bench.engine.current.cache, calls)
        found["allowed"] = bench.engine.impersonation(Actor(csr), last, directory).allowed
        rows.append(found)
    return rows


def _time_both(ask: Callable[[], object], cache: dict[Any, Any], calls: int
               ) -> tuple[float, float]:
    """Microseconds per call: the cache emptied before each call, then cached."""
    start = time.perf_counter()
    for _ in range(calls):
        cache.clear()
        ask()
    uncached = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for _ in range(calls * 20):
        ask()
    return uncached, (time.perf_counter() - start) / (calls * 20) * 1e6


def directory_table(rows: list[dict[str, Any]]) -> str:
    lines: list[tuple[str, ...]] = [("users + assignments", "snapshot MB", "page uncached us",
                                     "page cached us", "impersonate uncached us",
                                     "impersonate cached us")]
    for r in rows:
        lines.append((f"{r['users']:,}", f"{r['memory_mb']:.1f}",
                      f"{r['page_uncached_us']:.0f}", f"{r['page_cached_us']:.2f}",
                      f"{r['impersonate_uncached_us']:.0f}",
                      f"{r['impersonate_cached_us']:.2f}"))
    return markdown(lines)


def session_growth(counts: tuple[int, ...] = SESSION_COUNTS, probes: int = 2_000
                   ) -> list[dict[str, Any]]:
    """Sessions in Redis (a key prefix of our own, deleted afterwards): the bytes each
    costs Redis, a worker's lookup of one it has no copy of (a Redis GET) and of one it
    has, and what the worker's copies weigh (tracemalloc; the copies are capped)."""
    return asyncio.run(_session_growth(counts, probes))


async def _session_growth(counts: tuple[int, ...], probes: int) -> list[dict[str, Any]]:
    import random

    import redis

    from bench.memory import make_sessions
    from gateway.sessions.redis import RedisSessions

    prefix = f"csrgw-bench-growth-{secrets.token_hex(6)}:"
    sync = redis.Redis.from_url(targets.REDIS_URL)
    store = RedisSessions(targets.REDIS_URL, prefix, 7200)
    await store.start()
    rows: list[dict[str, Any]] = []
    try:
        base = int(sync.info("memory")["used_memory"])
        sids: list[str] = []
        made = make_sessions(max(counts))
        for count in counts:
            while len(sids) < count:
                pipe = sync.pipeline(transaction=False)
                for _ in range(min(10_000, count - len(sids))):
                    session = next(made)
                    pipe.set(f"{prefix}session:{session.id}", session.to_json(), ex=7200)
                    sids.append(session.id)
                pipe.execute()
            used = int(sync.info("memory")["used_memory"]) - base
            sample = random.sample(sids, min(probes, len(sids)))
            store.cache.entries.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            for sid in sample:
                assert await store.get(sid) is not None
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            store.cache.entries.clear()  # again, under tracemalloc (slow): the copies' size
            tracemalloc.start()
            for sid in sample:
                await store.get(sid)
            copies = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            start = time.perf_counter()
            for _ in range(5):
                for sid in sample:
                    await store.get(sid)
            cached = (time.perf_counter() - start) / (5 * len(sample))
            rows.append({"sessions": count, "redis_bytes_per_session": used / count,
                         "uncached_us": wall / len(sample) * 1e6,
                         "uncached_cpu_us": cpu / len(sample) * 1e6,
                         "cached_us": cached * 1e6,
                         "copy_bytes": copies / len(sample)})
    finally:
        await store.close()
        targets.drop_redis_keys(prefix)
        sync.close()
    return rows


def redis_session_table(rows: list[dict[str, Any]]) -> str:
    lines: list[tuple[str, ...]] = [("sessions in Redis", "Redis bytes each",
                                     "lookup, no copy us", "of it CPU us", "lookup, copy us",
                                     "worker copy bytes each")]
    for r in rows:
        lines.append((f"{r['sessions']:,}", f"{r['redis_bytes_per_session']:.0f}",
                      f"{r['uncached_us']:.0f}", f"{r['uncached_cpu_us']:.0f}",
                      f"{r['cached_us']:.2f}", f"{r['copy_bytes']:.0f}"))
    return markdown(lines)


def policy_table(rows: list[dict[str, Any]]) -> str:
    lines: list[tuple[str, ...]] = [("extra grant facts", "for", "load ms", "memory MB",
                                     "buyer uncached us", "impersonated uncached us",
                                     "cached us")]
    for r in rows:
        lines.append((f"{r['extra_facts']:,}", r["for"], f"{r['load_ms']:.0f}",
                      f"{r['memory_mb']:.1f}", f"{r['buyer_uncached_us']:.0f}",
                      f"{r['impersonated_uncached_us']:.0f}", f"{r['buyer_cached_us']:.2f}"))
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
    """Every table as text, and their numbers."""
    sizes = (10, 1_000) if quick else POLICY_SIZES
    policy = policy_growth(config, sizes, calls=50 if quick else 300)
    directory = directory_growth(config, DIRECTORY_SIZES[:2] if quick else DIRECTORY_SIZES,
                                 calls=50 if quick else 300)
    redis_sessions = session_growth(SESSION_COUNTS[:2] if quick else SESSION_COUNTS,
                                    probes=200 if quick else 2_000) \
        if targets.redis_up() else []
    gc_config = targets.GatewayConfig(config, folder / "sessions-state", "http://127.0.0.1:9")
    gc_config.seed()
    sessions = budget.memory(gc_config.write(free_port(), 1), 10_000 if quick else 50_000,
                             requests=False, steps="1000" if quick else "1000,10000")
    bodies = body_growth(folder, config, BODY_SIZES[:2] if quick else BODY_SIZES)
    text = "\n\n".join([
        "Policy size (uncached decision; the cache makes every repeat cost the cached "
        "column):\n" + policy_table(policy),
        "Directory size (uncached decisions against the directory snapshot; the cache makes "
        "every repeat cost the cached columns):\n" + directory_table(directory),
        "Sessions in Redis (what a worker pays per lookup, what Redis and the worker hold):\n"
        + (redis_session_table(redis_sessions) if redis_sessions else "(Redis not running)"),
        "Sessions (one worker, memory store, sessions stored without requests):\n"
        + session_table(sessions),
        "Body size (one body at a time, streamed both ways):\n" + body_table(bodies)])
    return text, {"policy": policy, "directory": directory, "redis_sessions": redis_sessions,
                  "sessions": sessions, "bodies": bodies}


def plot(found: dict[str, Any], path: Path) -> None:
    """Decision (or lookup) time and memory against each size, log-log (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("policy size (extra grant facts, other groups)",
         [r for r in found["policy"] if r["for"] == "other groups"], "extra_facts",
         {"page uncached us": "buyer_uncached_us", "impersonated uncached us":
          "impersonated_uncached_us", "cached us": "buyer_cached_us"}, "memory_mb"),
        ("directory size (users + assignments)", found["directory"], "users",
         {"page uncached us": "page_uncached_us", "impersonate uncached us":
          "impersonate_uncached_us", "cached us": "page_cached_us"}, "memory_mb"),
        ("sessions in Redis", found.get("redis_sessions") or [], "sessions",
         {"lookup, no copy us": "uncached_us", "lookup, copy us": "cached_us"},
         "redis_bytes_per_session"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.5))
    for ax, (title, rows, x_key, series, memory_key) in zip(axes, panels, strict=True):
        if not rows:
            ax.set_title(title + " (not measured)")
            continue
        xs = [r[x_key] for r in rows]
        for label, key in series.items():
            ax.plot(xs, [max(r[key], 1e-3) for r in rows], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(title)
        ax.set_ylabel("microseconds")
        twin = ax.twinx()
        twin.plot(xs, [r[memory_key] for r in rows], color="grey", linestyle="--",
                  marker="s", label="bytes per session in Redis" if
                  memory_key == "redis_bytes_per_session" else "memory MB")
        twin.set_ylabel("bytes per session" if memory_key == "redis_bytes_per_session"
                        else "MB")
        lines1, labels1 = ax.get_legend_handles_labels()
        lines2, labels2 = twin.get_legend_handles_labels()
        ax.legend(lines1 + lines2, labels1 + labels2, fontsize=7, loc="upper left")
    fig.suptitle("csr-gateway bench --growth: cost against size (log-log)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--policy-point"]:
        cfg, where, n, same, times = sys.argv[2:7]
        print(json.dumps(policy_point(Path(cfg), Path(where), int(n), same == "1",
                                      int(times))))
        raise SystemExit(0)
    with tempfile.TemporaryDirectory() as tmp:
        print(run(Path(tmp), targets.default_config(), quick="--quick" in sys.argv)[0])
