"""Registers `csr-gateway bench`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bench = sub.add_parser("bench", help="measure the gateway against baselines")
    bench.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    bench.add_argument("--rounds", type=int, default=2)
    bench.add_argument("--scenarios", default="buyer,csr,denied")
    bench.add_argument("--json", metavar="FILE")
    bench.add_argument("--plot", metavar="PNG")
    bench.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from gateway.bench.runner import main

    return main(args)
