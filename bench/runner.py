"""`csr-gateway bench`: every target under the same load, rounds alternating, one table."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    breakdown,
    budget,
    growth,
    httpclient,
    load,
    nginx,
    shared_memory,
    soak,
    targets,
)
from bench.procs import CpuMeter, Server, free_port, reset_peak, wait_quiet
from bench.report import Report, Row, plot, render
from bench.scenarios import SCENARIOS, Scenario, login, probe

QUICK: dict[str, Any] = {"duration": 0.3, "rounds": 1, "stream_mb": 64, "workers": "1,2"}
WORKERS = "1,2"  # 2 cores here: more workers only share them (--workers 1,2,4)
AUTHZ_SCENARIOS = ("buyer", "csr", "denied")  # also measured through nginx auth_request
SHARED_WORKERS = 2  # the memory-per-worker line as deployed: forked workers, Redis sessions


@dataclass(frozen=True)
class Options:
    duration: float
    rounds: int
    scenarios: tuple[str, ...]
    workers: tuple[int, ...]
    scale: tuple[str, ...]  # scenarios measured at every worker count (the rest at 1)
    connections: int
    generator: str
    upstream: str
    with_nginx: bool
    with_budget: bool
    stream_mb: int
    sessions: int
    session_requests: bool  # each injected session also makes a request (slow: not quick)
    config: Path
    policies: Path | None
    wait_quiet: float
    soak_minutes: float = 0.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        quick: dict[str, Any] = dict(QUICK) if args.quick else {}
        names = _names(args.scenarios)
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise SystemExit(f"csr-gateway bench: unknown scenario {unknown[0]!r} "
                             f"(known: {', '.join(SCENARIOS)})")
        return cls(
            duration=float(quick.get("duration", args.duration)),
            rounds=int(quick.get("rounds", args.rounds)), scenarios=names,
            workers=tuple(int(w) for w in _names(args.workers or quick.get("workers", WORKERS))),
            scale=_names(args.scale),
            connections=args.connections, generator=args.generator, upstream=args.upstream,
            with_nginx=not args.no_nginx and nginx.available() is not None,
            with_budget=not args.no_budget, stream_mb=int(quick.get("stream_mb",
                                                                     args.stream_mb)),
            sessions=args.sessions, session_requests=not args.quick,
            config=Path(args.config) if args.config else targets.default_config(),
            policies=Path(args.policies).resolve() if args.policies else None,
            wait_quiet=args.wait_quiet, soak_minutes=args.soak)

    @property
    def use_wrk(self) -> bool:
        """wrk takes whole seconds only: sub-second (quick) runs use the Python client."""
        if self.generator == "python" or load.wrk_binary() is None:
            return False
        return self.generator == "wrk" or self.duration >= 1


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


class Harness:
    def __init__(self, opts: Options, folder: Path) -> None:
        self.opts = opts
        self.folder = folder
        self.report = Report(setup=setup_facts(opts))
        self.stack = contextlib.ExitStack()
        self.upstream: Server | None = None

    def start(self, server: Server) -> Server:
        self.stack.callback(server.stop)
        return server.start()

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Seconds per phase, printed at the end (the default run must stay short)."""
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = self.report.extra.setdefault("seconds", {})
            seconds[phase] = seconds.get(phase, 0.0) + time.monotonic() - started

    def run(self) -> Report:
        with self.stack:
            upstream = self.start(targets.upstream(self.folder, self.opts.upstream == "nginx",
                                                   self.opts.stream_mb))
            self.upstream = upstream
            self.report.setup["upstream"] = upstream.name
            config = targets.GatewayConfig(self.opts.config, self.folder / "state",
                                           upstream.url, self.opts.policies)
            config.seed()
            for workers in self.opts.workers:
                if workers > 1 and not targets.redis_up():
                    self.report.notes.append(f"{workers} workers skipped: they share sessions "
                                             "in Redis, which is not on 127.0.0.1:6379")
                    continue
                try:
                    with self.timed(f"{workers} worker{'s' if workers > 1 else ''}"):
                        self.group(config, upstream, workers)
                finally:
                    if workers > 1:
                        targets.drop_redis_keys(config.redis_prefix)
            if self.opts.with_budget:
                with self.timed("memory"):
                    self.memory_budget(config)
            if self.opts.soak_minutes:
                with self.timed("soak"):
                    self.soak_budget(config)
        self.report.budget[:0] = budget.throughput_lines(self.report)
        return self.report

    def group(self, config: targets.GatewayConfig, upstream: Server, workers: int) -> None:
        """Start the targets with this many workers, then alternate them round by round."""
        servers = {"gateway": targets.gateway(config, workers),
                   "minproxy": targets.minproxy(self.folder, upstream.url, workers)}
        proxy = targets.nginx_proxy(self.folder, upstream.port, workers) \
            if self.opts.with_nginx else None
        if proxy is not None:
            servers["nginx"] = proxy
            authz = targets.authz_proxy(self.folder, servers["gateway"].port, upstream.port,
                                        workers)
            if authz is not None:
                servers["authz"] = authz
        audit = targets.AuditCounter(config.state, workers, nginx.AUTHZ_SOURCE)
        with contextlib.ExitStack() as stack:
            for server in servers.values():
                stack.callback(server.stop)
                server.launch()
            for server in servers.values():
                server.wait_listening(60)
            names = [s for s in self.opts.scenarios if workers == 1 or s in self.opts.scale]
            cookies = {name: self.cookie(config, servers["gateway"], SCENARIOS[name])
                       for name in names}
            rows = self.rows(names, workers, servers, cookies)
            self.warm_up(servers, SCENARIOS[names[0]], cookies[names[0]])
            for round_no in range(self.opts.rounds):
                order = list(servers)
                order = order[round_no % len(order):] + order[:round_no % len(order)]
                for name in names:
                    for target in order:
                        if (name, target) not in rows:
                            continue
                        cpu = list(servers["gateway"].pids()) if target == "authz" else []
                        self.measure(rows[name, target], servers[target], SCENARIOS[name],
                                     cookies[name], cpu,
                                     audit if target == "authz" else None)
            if workers == 1 and self.opts.with_budget:
                with self.timed("latency"):
                    self.latency_budget(upstream, servers, cookies[names[0]])
        if workers == 1 and self.opts.with_budget:
            with self.timed("streaming"):
                self.stream_budget(config)

    def cookie(self, config: targets.GatewayConfig, gateway: Server, scenario: Scenario) -> str:
        name = config.cookie_name()
        return f"{name}={login(gateway.url, scenario, name)}"

    def rows(self, names: list[str], workers: int, servers: dict[str, Server],
             cookies: dict[str, str]) -> dict[tuple[str, str], Row]:
        rows = {}
        for name in names:
            for target, server in servers.items():
                if target == "authz" and name not in AUTHZ_SCENARIOS:
                    continue
                row = Row(name, workers, target, status=probe(server.url, SCENARIOS[name],
                                                              cookies[name]))
                expected = SCENARIOS[name].gateway_status if target in ("gateway", "authz") \
                    else 200
                if row.status != expected:
                    raise RuntimeError(f"{target} answered {row.status} to scenario {name}, "
                                       f"expected {expected}:\n{server.log_tail()}")
                rows[name, target] = row
                self.report.rows.append(row)
        return rows

    def warm_up(self, servers: dict[str, Server], scenario: Scenario, cookie: str) -> None:
        """Connection pools, caches, first-use allocations: not part of any round."""
        seconds = min(1.0, max(0.2, self.opts.duration / 5))
        for server in servers.values():  # (the authz target warms the gateway's decisions too)
            load.run_python(server.port, load.Load(scenario.method, scenario.path,
                                                   (("Cookie", cookie),), scenario.body_size,
                                                   self.opts.connections, seconds))

    def measure(self, row: Row, server: Server, scenario: Scenario, cookie: str,
                also: list[int] | None = None,
                audit: targets.AuditCounter | None = None) -> None:
        """One run; `also`: more processes whose CPU counts (forward-auth: the gateway
        deciding for nginx); `audit`: count the gateway's audit lines of this run."""
        spec = load.Load(scenario.method, scenario.path, (("Cookie", cookie),),
                         scenario.body_size, self.opts.connections, self.opts.duration)
        if self.opts.wait_quiet:
            wait_quiet(self.opts.wait_quiet)
        pids = server.pids()
        reset_peak(pids)
        generator = "wrk" if self.opts.use_wrk else "python"
        if audit is not None:
            audit.mark()
        meter = CpuMeter(pids + (also or []), self.upstream.pids() if self.upstream else [])
        sample = load.run_load(server.port, spec, self.folder, generator)
        used, other = meter.stop()
        audited = audit.wait_for(sample.requests) if audit is not None else -1
        row.samples.append(dataclasses.replace(
            sample, cpu_target=used, cpu_other=other, audited=audited,
            cpu_us=meter.target_s / max(1, sample.requests) * 1e6))
        largest, total = server.rss_mb("VmHWM")
        row.rss_mb, row.rss_total_mb = max(row.rss_mb, largest), max(row.rss_total_mb, total)
        row.pss_mb = max(row.pss_mb, server.rss_mb("Pss")[0])

    def latency_budget(self, upstream: Server, servers: dict[str, Server], cookie: str) -> None:
        row = self.report.find(self.opts.scenarios[0], 1, "gateway")
        if row is None or not row.rps:
            return
        scenario = SCENARIOS[row.scenario]
        ports = {"direct": upstream.port, **{k: s.port for k, s in servers.items()}}
        raw = {k: httpclient.build_request(scenario.method, scenario.path, port,
                                                {"Cookie": cookie}, scenario.body_size)
               for k, port in ports.items()}
        pids = {k: s.pids() for k, s in servers.items()}
        # One run is at the mercy of a single stall of this shared machine: the median of
        # the rounds, each target's runs alternating with the others'.
        runs = [budget.fixed_rate_latency(ports, raw, row.rps / 2,
                                          max(0.5, self.opts.duration), pids)
                for _ in range(self.opts.rounds)]
        found = budget.median_latency(runs)
        self.report.extra["latency_at_half_saturation"] = found
        self.report.budget.append(budget.latency_line(found))

    def stream_budget(self, config: targets.GatewayConfig) -> None:
        """A fresh gateway (its RSS not already raised by the load), one huge body each way."""
        size = self.opts.stream_mb * 1024 * 1024
        gateway = targets.gateway(config, 1)
        try:
            gateway.start(timeout=60)
            cookie = self.cookie(config, gateway, SCENARIOS["buyer"])
            probe(gateway.url, SCENARIOS["upload"], cookie)  # first-use allocations
            streams = [budget.stream(gateway, "POST", "/saved-jobs", size, cookie),
                       budget.stream(gateway, "GET",
                                     f"/products/download-{self.opts.stream_mb}m", size,
                                     cookie)]
        finally:
            gateway.stop()
        self.report.extra["streams"] = streams
        self.report.budget += [budget.stream_line(s) for s in streams]

    def soak_budget(self, config: targets.GatewayConfig) -> None:
        if not targets.redis_up():
            self.report.notes.append("soak not run: it needs Redis on 127.0.0.1:6379")
            return
        result = soak.soak(config, self.opts.soak_minutes, self.opts.sessions)
        self.report.extra["soak"] = result
        self.report.budget += soak.lines(result, budget.MB_PER_WORKER)

    def memory_budget(self, config: targets.GatewayConfig) -> None:
        path = config.write(free_port(), 1)
        result = budget.memory(path, self.opts.sessions, self.opts.session_requests)
        self.report.extra["memory"] = result
        self.report.budget += budget.memory_lines(result, self.opts.sessions)
        if targets.redis_up():
            sessions = self.opts.sessions if self.opts.session_requests else 1_000
            shared = shared_memory.per_worker(config, SHARED_WORKERS, sessions)
            self.report.extra["memory_workers"] = shared
            self.report.budget.append(budget.shared_memory_line(shared))
        else:
            self.report.notes.append("PSS per worker not measured: it needs Redis on "
                                     "127.0.0.1:6379 for the workers' shared sessions")


def setup_facts(opts: Options) -> dict[str, Any]:
    import aiohttp

    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop = "asyncio"
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "aiohttp": aiohttp.__version__, "loop": loop, "machine": platform.machine(),
            "generator": "wrk -t1" if opts.use_wrk else "python raw-asyncio client",
            "connections": opts.connections, "duration_s": opts.duration,
            "rounds": opts.rounds, "config": str(opts.config)}


def describe(report: Report) -> str:
    s = report.setup
    return (f"{s['cpus']} CPUs, Python {s['python']}, aiohttp {s['aiohttp']}, {s['loop']}; "
            f"load: {s['generator']}, {s['connections']} connections, {s['duration_s']:g} s "
            f"x {s['rounds']} rounds (median); upstream: {s.get('upstream')}")


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    opts = Options.from_args(args)
    if (args.plot or args.growth_plot) and importlib.util.find_spec("matplotlib") is None:
        raise SystemExit("csr-gateway bench: --plot needs matplotlib: "
                         "pip install -e '.[bench]' (or leave --plot out)")
    growth_text = ""
    with tempfile.TemporaryDirectory(prefix="csrgw-bench-") as tmp:
        bench = Harness(opts, Path(tmp))
        report = bench.run()
        if not args.no_breakdown:
            with bench.timed("breakdown"):
                report.extra["breakdown"] = breakdown.run(opts.config, quick=args.quick)
        if args.growth:
            growth_text, report.extra["growth"] = growth.run(Path(tmp) / "growth", opts.config,
                                                             quick=args.quick)
    print(describe(report))
    print(render(report))
    if "soak" in report.extra:
        print("\nSoak at half load, RSS of the worker:\n" + soak.curve_table(report.extra["soak"]))
    if "breakdown" in report.extra:
        print("\nWhere the time goes in one request (in-process, off the load):\n"
              + breakdown.table(report.extra["breakdown"]))
    if growth_text:
        print("\n" + growth_text)
    seconds = report.extra.get("seconds", {})
    print(f"\nThe bench took {time.monotonic() - started:.0f} s: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2))
    if args.plot:
        plot(report, Path(args.plot))
    if args.growth_plot and "growth" in report.extra:
        growth.plot(report.extra["growth"], Path(args.growth_plot))
    sys.stdout.flush()
    missed = [b for b in report.budget if not b.met]
    return 1 if missed and args.fail_on_budget else 0
