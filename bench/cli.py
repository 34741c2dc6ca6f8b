"""The benchmark's arguments: `python -m bench` (and `csr-gateway bench` from a checkout)."""

from __future__ import annotations

import argparse

from bench.scenarios import SCENARIOS


def build_parser(prog: str = "python -m bench") -> argparse.ArgumentParser:
    bench = argparse.ArgumentParser(
        prog=prog,
        description="Runs a fast upstream, the minimal aiohttp proxy, the gateway and nginx "
                    "proxy_pass side by side under the same load, then checks the budget.")
    bench.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    bench.add_argument("--rounds", type=int, default=3,
                       help="rounds alternating the targets (the table shows the median)")
    bench.add_argument("--scenarios", default=",".join(SCENARIOS),
                       help=f"comma-separated, from: {', '.join(SCENARIOS)}")
    bench.add_argument("--workers", default=None,
                       help="worker counts, >1 needs Redis (default 1,2)")
    bench.add_argument("--scale", default="buyer,csr",
                       help="scenarios measured at every worker count (the rest at 1 only)")
    bench.add_argument("--connections", type=int, default=32)
    bench.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                       help="auto: wrk when installed and runs last >= 1 s")
    bench.add_argument("--upstream", choices=("python", "nginx"), default="python",
                       help="the stand-in shop (nginx answers uploads before reading them)")
    bench.add_argument("--no-nginx", action="store_true", help="skip the nginx baseline")
    bench.add_argument("--no-budget", action="store_true",
                       help="skip latency, streaming and memory budget lines")
    bench.add_argument("--no-breakdown", action="store_true",
                       help="skip the per-stage breakdown of one request")
    bench.add_argument("--soak", type=float, default=0.0, metavar="MINUTES",
                       help="also: this long at half load, the RSS curve and a flat-memory "
                            "check (the budget asks for 30)")
    bench.add_argument("--stream-mb", type=int, default=1024,
                       help="size of the streamed body budget line")
    bench.add_argument("--sessions", type=int, default=10_000,
                       help="active sessions for the memory budget line")
    bench.add_argument("--config", metavar="FILE", help="gateway YAML (config/gateway.yaml)")
    bench.add_argument("--policies", metavar="DIR", help="policy directory to measure")
    bench.add_argument("--growth", action="store_true",
                       help="also: cost against policy size, session count and body size")
    bench.add_argument("--quick", action="store_true",
                       help="a few seconds in all (tests, CI): short runs, one round")
    bench.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                       help="before each run, wait up to this long for other jobs to leave "
                            "the CPUs")
    bench.add_argument("--fail-on-budget", action="store_true",
                       help="exit 1 when a budget line is missed")
    bench.add_argument("--json", metavar="FILE", help="write every number as JSON")
    bench.add_argument("--plot", metavar="PNG", help="bar chart (needs matplotlib)")
    bench.add_argument("--growth-plot", metavar="PNG",
                       help="with --growth: cost against size, log-log (needs matplotlib)")
    return bench


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    from bench.runner import main as run

    return run(build_parser(prog).parse_args(argv))
