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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import budget, growth, httpclient, load, nginx, shared_memory, targets
from bench.procs import CpuMeter, Server, free_port, reset_peak, wait_quiet
from bench.report import Report, Row, plot, render
from bench.scenarios import SCENARIOS, Scenario, login, probe

QUICK: dict[str, Any] = {"duration": 0.3, "rounds": 1, "stream_mb": 64, "workers": "1,2"}
WORKERS = "1,2,4"
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
            wait_quiet=args.wait_quiet)

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
                    self.group(config, upstream, workers)
                finally:
                    if workers > 1:
                        targets.drop_redis_keys(config.redis_prefix)
            if self.opts.with_budget:
                self.memory_budget(config)
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
                        self.measure(rows[name, target], servers[target], SCENARIOS[name],
                                     cookies[name])
            if workers == 1 and self.opts.with_budget:
                self.latency_budget(upstream, servers, cookies[names[0]])
        if workers == 1 and self.opts.with_budget:
            self.stream_budget(config)

    def cookie(self, config: targets.GatewayConfig, gateway: Server, scenario: Scenario) -> str:
        name = config.cookie_name()
        return f"{name}={login(gateway.url, scenario, name)}"

    def rows(self, names: list[str], workers: int, servers: dict[str, Server],
             cookies: dict[str, str]) -> dict[tuple[str, str], Row]:
        rows = {}
        for name in names:
            for target, server in servers.items():
                row = Row(name, workers, target, status=probe(server.url, SCENARIOS[name],
                                                              cookies[name]))
                expected = SCENARIOS[name].gateway_status if target == "gateway" else 200
                if row.status != expected:
                    raise RuntimeError(f"{target} answered {row.status} to scenario {name}, "
                                       f"expected {expected}:\n{server.log_tail()}")
                rows[name, target] = row
                self.report.rows.append(row)
        return rows

    def warm_up(self, servers: dict[str, Server], scenario: Scenario, cookie: str) -> None:
        """Connection pools, caches, first-use allocations: not part of any round."""
        seconds = min(1.0, max(0.2, self.opts.duration / 5))
        for server in servers.values():
            load.run_python(server.port, load.Load(scenario.method, scenario.path,
                                                   (("Cookie", cookie),), scenario.body_size,
                                                   self.opts.connections, seconds))

    def measure(self, row: Row, server: Server, scenario: Scenario, cookie: str) -> None:
        spec = load.Load(scenario.method, scenario.path, (("Cookie", cookie),),
                         scenario.body_size, self.opts.connections, self.opts.duration)
        if self.opts.wait_quiet:
            wait_quiet(self.opts.wait_quiet)
        pids = server.pids()
        reset_peak(pids)
        generator = "wrk" if self.opts.use_wrk else "python"
        meter = CpuMeter(pids, self.upstream.pids() if self.upstream else [])
        sample = load.run_load(server.port, spec, self.folder, generator)
        used, other = meter.stop()
        row.samples.append(dataclasses.replace(sample, cpu_target=used, cpu_other=other))
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
    opts = Options.from_args(args)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise SystemExit("csr-gateway bench: --plot needs matplotlib: "
                         "pip install -e '.[bench]' (or leave --plot out)")
    growth_text = ""
    with tempfile.TemporaryDirectory(prefix="csrgw-bench-") as tmp:
        report = Harness(opts, Path(tmp)).run()
        if args.growth:
            growth_text, report.extra["growth"] = growth.run(Path(tmp) / "growth", opts.config,
                                                             quick=args.quick)
    print(describe(report))
    print(render(report))
    if growth_text:
        print("\n" + growth_text)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2))
    if args.plot:
        plot(report, Path(args.plot))
    sys.stdout.flush()
    missed = [b for b in report.budget if not b.met]
    return 1 if missed and args.fail_on_budget else 0
