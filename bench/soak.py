"""The soak: one worker at half its saturation rate for many minutes, its RSS sampled.

`python -m bench --soak 30` (after the main table) or `python -m bench.soak --minutes 30`.
The worker runs as deployed with Redis sessions (its own key prefix, deleted afterwards),
holding `sessions` sessions written into Redis (logins would spend argon2 time); the
open-loop load sends each of them in turn, so every session is active and the worker's
per-session caches fill as with real traffic. Judged: RSS at the end (the per-worker memory
budget) and growth after the first fifth (flat memory: no leak, no unbounded cache).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import httpclient, load, targets
from bench.memory import make_sessions
from bench.procs import Server, free_port, status_kb
from bench.report import BudgetLine, markdown
from bench.scenarios import SCENARIOS, login

FLAT_MB = 4.0  # RSS growth allowed after the first fifth of the soak
SETTLE = 0.2  # the first fifth: imports, pools, caches filling


def soak(config: targets.GatewayConfig, minutes: float, sessions: int,
         points: int = 30) -> dict[str, Any]:
    import redis

    points = max(3, min(points, int(minutes * 60 / 3)))  # segments of 3 s at least
    made = list(make_sessions(sessions))
    store = redis.Redis.from_url(targets.REDIS_URL)
    try:
        pipe = store.pipeline(transaction=False)
        for session in made:
            pipe.set(f"{config.redis_prefix}session:{session.id}", session.to_json(), ex=7200)
        pipe.execute()
        server = _one_worker_on_redis(config)
        try:
            return _run(server, config, [s.id for s in made], minutes, points)
        finally:
            server.stop()
    finally:
        targets.drop_redis_keys(config.redis_prefix)
        store.close()


def _one_worker_on_redis(config: targets.GatewayConfig) -> Server:
    """`csr-gateway run` with one worker, sessions in Redis (as every replica has them)."""
    import yaml

    port = free_port()
    data = config.data(port, 1)
    data["sessions"]["store"] = "redis"
    data["audit"]["path"] = str(config.state / "audit-soak.jsonl")
    path = config.state / "gateway-soak.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    argv = [sys.executable, "-m", "gateway", "run", "--config", str(path), "--workers", "1",
            "--allow-demo-passwords"]
    return Server("gateway", argv, port, config.state / "gateway-soak.log").start(60)


def _run(server: Server, config: targets.GatewayConfig, sids: list[str], minutes: float,
         points: int) -> dict[str, Any]:
    name = config.cookie_name()
    scenario = SCENARIOS["buyer"]
    cookie = f"{name}={login(server.url, scenario, name)}"
    spec = load.Load("GET", scenario.path, (("Cookie", cookie),), 0, 32, 2.0)
    load.run_python(server.port, spec)  # the warm-up: pools, caches, the policy's first run
    raws = [httpclient.build_request("GET", scenario.path, server.port,
                                     {"Cookie": f"{name}={sid}"}) for sid in sids]
    # The saturation of the soak's own traffic: each of the sessions in turn. A session
    # comes round again only after its worker's copy has aged out (a few seconds), so
    # most requests read Redis; one warm session's saturation is about twice as high,
    # and half of it overloads the worker.
    mixed = httpclient.run(lambda: httpclient.closed_loop(server.port, raws, 32, 4.0))
    assert isinstance(mixed, httpclient.LoadResult)
    saturation = mixed.rps
    rate = saturation / 2
    pid = server.pids()[-1]  # with one worker: the serving process itself
    seconds = max(1.0, minutes * 60 / points)
    curve: list[dict[str, float]] = [{"t_s": 0.0, "rss_mb": status_kb(pid, "VmRSS") / 1024}]
    started, served, errors, bad = time.monotonic(), 0, 0, 0
    statuses: dict[int, int] = {}
    offset = 0
    for _ in range(points):
        batch = raws[offset:] + raws[:offset]  # every session in turn, across segments
        result = httpclient.run(lambda b=batch: httpclient.fixed_rate(  # type: ignore[misc]
            server.port, b, rate, seconds))
        assert isinstance(result, httpclient.LoadResult)
        offset = (offset + len(result.latencies)) % len(raws)
        served += len(result.latencies)
        errors += result.errors
        bad += sum(n for status, n in result.statuses.items() if status != 200)
        for status, n in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
        curve.append({"t_s": time.monotonic() - started,
                      "rss_mb": status_kb(pid, "VmRSS") / 1024,
                      "p99_ms": result.percentile_ms(99), "rps": result.rps})
    settled = curve[max(1, round(len(curve) * SETTLE))]["rss_mb"]
    return {"minutes": minutes, "sessions": len(sids), "rate": rate,
            "saturation": saturation, "served": served, "errors": errors, "non_200": bad,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "curve": curve, "settled_mb": settled, "final_mb": curve[-1]["rss_mb"],
            "growth_mb": max(p["rss_mb"] for p in curve[1:]) - settled,
            "peak_mb": status_kb(pid, "VmHWM") / 1024}


def curve_table(result: dict[str, Any]) -> str:
    lines: list[tuple[str, ...]] = [("minute", "RSS MB", "req/s", "p99 ms")]
    for p in result["curve"]:
        lines.append((f"{p['t_s'] / 60:.1f}", f"{p['rss_mb']:.1f}",
                      f"{p.get('rps', 0):,.0f}" if "rps" in p else "-",
                      f"{p['p99_ms']:.2f}" if "p99_ms" in p else "-"))
    return markdown(lines)


def lines(result: dict[str, Any], limit_mb: float) -> list[BudgetLine]:
    note = (f"{result['minutes']:g} min at {result['rate']:.0f} req/s (half of "
            f"{result['saturation']:.0f}); {result['served']:,} answered, "
            f"{result['non_200'] + result['errors']} not 200 "
            f"(statuses {result['statuses']}, {result['errors']} connection errors)")
    return [
        BudgetLine(f"soak: RSS growth after the first fifth, {result['sessions']:,} sessions",
                   result["growth_mb"] if not result["non_200"] else float("inf"), FLAT_MB,
                   "MB", at_least=False, note=note),
        BudgetLine(f"soak: RSS per worker at the end, {result['sessions']:,} sessions",
                   result["final_mb"], limit_mb, "MB", at_least=False,
                   note=f"peak (VmHWM) {result['peak_mb']:.1f} MB"),
    ]


def main() -> None:
    from bench.budget import MB_PER_WORKER
    from bench.report import Report, budget_table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="csrgw-soak-") as tmp:
        config = targets.GatewayConfig(Path(args.config) if args.config
                                       else targets.default_config(), Path(tmp) / "state",
                                       "")
        up = targets.upstream(Path(tmp))
        with contextlib.ExitStack() as stack:
            stack.callback(up.stop)
            up.start()
            config.upstream_url = up.url
            config.seed()
            result = soak(config, args.minutes, args.sessions)
    print(curve_table(result))
    print(budget_table(Report(budget=lines(result, MB_PER_WORKER))))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
