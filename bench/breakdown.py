"""Where the time goes in one request: each pipeline stage, and what is left for aiohttp's
server, the forwarding and the response, for a buyer and a CSR acting as one.

Both halves run in this one process, off the load: `bench.stages` times each stage on a
realistic request, `bench.inproc` the gateway's and the minimal proxy's whole CPU per
request over loopback. The default `python -m bench` prints this table after the budget, so
a regression shows its stage. `python -m bench.breakdown [--quick] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.report import markdown

SCENARIOS = ("buyer", "csr")


def measure(config: Path, quick: bool) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="csrgw-breakdown-") as tmp:
        for name in SCENARIOS:
            found[name] = _one(config, Path(tmp), name, quick)
    return found


def _one(config: Path, state: Path, name: str, quick: bool) -> dict[str, Any]:
    from bench import inproc, stages

    settings = stages.settings_for(config, state)  # seeded once, then reused
    costs = asyncio.run(stages.measure(settings, 500 if quick else 5_000,
                                       acting=name == "csr"))
    whole = inproc.run(config, name, 200 if quick else 1_000, 16, 1 if quick else 5,
                       state=state)
    direct = next(c.us_per_request for c in whole if c.name == "direct")
    own = {c.name: c.us_per_request - direct for c in whole if c.name != "direct"}
    return {"stages": costs, "own_us": own}


def stage_sum(costs: dict[str, float]) -> float:
    """The stages one request really runs: cached decision and assertion, no re-signing."""
    return sum(v for k, v in costs.items() if "uncached" not in k)


def table(found: dict[str, Any]) -> str:
    names = [n for n in SCENARIOS if n in found]
    stage_names = list(dict.fromkeys(k for n in names for k in found[n]["stages"]))
    lines: list[tuple[str, ...]] = [("stage (us of CPU per request, in-process)",
                                     *names)]
    for stage in stage_names:
        lines.append((stage, *(f"{found[n]['stages'][stage]:.2f}"
                               if stage in found[n]["stages"] else "-" for n in names)))
    sums = {n: stage_sum(found[n]["stages"]) for n in names}
    lines.append(("= the stages (cached decision and assertion)",
                  *(f"{sums[n]:.1f}" for n in names)))
    lines.append(("gateway's own CPU per request (whole)",
                  *(f"{found[n]['own_us']['gateway']:.1f}" for n in names)))
    lines.append(("  of it: server, forwarding, response (whole - stages)",
                  *(f"{found[n]['own_us']['gateway'] - sums[n]:.1f}" for n in names)))
    lines.append(("minimal proxy's own CPU per request",
                  *(f"{found[n]['own_us']['minproxy']:.1f}" for n in names)))
    lines.append(("minimal proxy / gateway",
                  *(f"{found[n]['own_us']['minproxy'] / found[n]['own_us']['gateway']:.2f}x"
                    for n in names)))
    return markdown(lines)


def run(config: Path, quick: bool) -> dict[str, Any]:
    """In a fresh process: the in-process gateway must not share this one's state."""
    argv = [sys.executable, "-m", "bench.breakdown", "--config", str(config), "--json"]
    if quick:
        argv.append("--quick")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"stage breakdown failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from bench.targets import default_config

    found = measure(Path(args.config) if args.config else default_config(), args.quick)
    print(json.dumps(found) if args.json else table(found))


if __name__ == "__main__":
    main()
