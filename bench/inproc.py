"""CPU per request with everything in one process: noise-free A/B for hot-path changes.

Upstream, proxy (minimal or gateway) and load client share one event loop over loopback
TCP; `time.process_time()` counts only this process's CPU, so other jobs on the machine
(which make requests/s swing +-25% here) barely move the result. The proxy's own cost is
the total minus the same requests sent straight to the upstream. Many short rounds, and
the 20th percentile of them: other jobs only ever add time.
`python -m bench.inproc [--scenario buyer] [--requests 1000] [--rounds 15] [--authz]
[--profile OUT]`: `--authz` adds the forward-auth question about the same request (as nginx
asks it, `/_gateway/authz` with `X-Original-URI`); `--profile` runs cProfile over the
gateway's (or with `--authz` the forward-auth) rounds only and writes the sorted stats.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bench import httpclient
from bench.procs import free_port
from bench.scenarios import SCENARIOS, Scenario
from bench.upstream import ShopProtocol


@dataclass(frozen=True)
class Cost:
    name: str
    us_per_request: float  # client + proxy + upstream, CPU of this process (20th percentile)
    spread: float  # max - min over rounds
    rounds: tuple[float, ...] = ()


async def cpu_per_request(port: int, raw: bytes, requests: int, connections: int) -> float:
    """Closed loop until `requests` answers; CPU microseconds per request."""
    conns = [await httpclient.connect(port) for _ in range(connections)]
    left = requests
    statuses: dict[int, int] = {}

    async def worker(conn: httpclient.ClientConn) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status = await conn.exchange(raw)
            statuses[status] = statuses.get(status, 0) + 1

    start = time.process_time()
    await asyncio.gather(*(worker(c) for c in conns))
    used = time.process_time() - start
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return used / requests * 1e6


async def start_site(app: web.Application, **kwargs: Any) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, **kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    return runner, int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


async def login_cookie(port: int, scenario: Scenario, cookie_name: str) -> str:
    from bench.scenarios import _login

    sid = await _login(f"http://127.0.0.1:{port}", scenario.login, scenario.acting_as,
                       cookie_name)
    return f"{cookie_name}={sid}"


def authz_headers(scenario: Scenario, cookie: str) -> dict[str, str]:
    """What nginx's `auth_request` subrequest carries (docs/forward-auth.md)."""
    return {"Cookie": cookie, "X-Original-URI": scenario.path,
            "X-Original-Method": scenario.method, "X-Forwarded-For": "127.0.0.1",
            "Connection": "keep-alive"}


async def measure(config: Path, state: Path, scenario: Scenario, requests: int,
                  connections: int, rounds: int,
                  prepare: Callable[[], Awaitable[None]] | None = None,
                  authz: bool = False, profile: Path | None = None) -> list[Cost]:
    from bench.minproxy import make_app
    from bench.targets import GatewayConfig
    from gateway.app.server import start_gateway
    from gateway.config.load import load_settings

    loop = asyncio.get_running_loop()
    shop = await loop.create_server(ShopProtocol, "127.0.0.1", 0)
    up_port = int(shop.sockets[0].getsockname()[1])
    upstream = f"http://127.0.0.1:{up_port}"
    gc_config = GatewayConfig(config, state, upstream)
    settings = load_settings(gc_config.write(free_port(), 1))
    if prepare is not None:
        await prepare()
    # served exactly as `csr-gateway run` serves it (its GC settings included)
    gw_runner = await start_gateway(dataclasses.replace(settings, port=0))
    gw_port = int(gw_runner.addresses[0][1])
    mp_runner, mp_port = await start_site(make_app(upstream), access_log=None)
    cookie = await login_cookie(gw_port, scenario, settings.sessions.cookie_name)
    def plain(port: int) -> bytes:
        return httpclient.build_request(scenario.method, scenario.path, port,
                                        {"Cookie": cookie}, scenario.body_size)

    targets = {"direct": (up_port, plain(up_port)), "minproxy": (mp_port, plain(mp_port)),
               "gateway": (gw_port, plain(gw_port))}
    if authz:  # the question only: no body, no upstream
        targets["authz"] = (gw_port, httpclient.build_request(
            "GET", "/_gateway/authz", gw_port, authz_headers(scenario, cookie)))
    profiled = "authz" if authz else "gateway"
    found: dict[str, list[float]] = {name: [] for name in targets}
    prof = None
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
    try:
        for _ in range(rounds):
            for name, (port, raw) in targets.items():
                await cpu_per_request(port, raw, max(100, requests // 10), connections)
                if prof is not None and name == profiled:
                    prof.enable()
                found[name].append(await cpu_per_request(port, raw, requests, connections))
                if prof is not None and name == profiled:
                    prof.disable()
    finally:
        await gw_runner.cleanup()
        await mp_runner.cleanup()
        shop.close()
    if prof is not None and profile is not None:
        write_profile(prof, profile)
    return [Cost(name, low(v), max(v) - min(v), tuple(v)) for name, v in found.items()]


def write_profile(prof: Any, out: Path) -> None:
    import io
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("tottime").print_stats(60)
    stats.sort_stats("cumulative").print_stats(80)
    out.write_text(text.getvalue())
    stats.dump_stats(str(out.with_suffix(".pstats")))


def low(values: list[float]) -> float:
    """The 20th percentile: the rounds least disturbed by other jobs on the machine."""
    ordered = sorted(values)
    return ordered[len(ordered) // 5]


def table(costs: list[Cost]) -> str:
    from bench.report import markdown

    direct = next(c.us_per_request for c in costs if c.name == "direct")
    by_name = {c.name: c.us_per_request - direct for c in costs}
    lines: list[tuple[str, ...]] = [("path", "CPU us/request (all)", "rounds",
                                     "proxy's own us", "x minproxy")]
    for c in costs:
        own = c.us_per_request - direct
        ratio = by_name.get("minproxy", 0) / own if c.name != "direct" and own > 0 else 0
        lines.append((c.name, f"{c.us_per_request:.1f}",
                      f"{min(c.rounds):.0f}..{max(c.rounds):.0f} ({len(c.rounds)})",
                      f"{own:.1f}" if c.name != "direct" else "-",
                      f"{ratio:.2f}x" if c.name != "direct" else "-"))
    return markdown(lines)


def run(config: Path, scenario: str, requests: int, connections: int, rounds: int,
        prepare: Callable[[], Awaitable[None]] | None = None,
        state: Path | None = None, authz: bool = False,
        profile: Path | None = None) -> list[Cost]:
    """`state`: a folder of ours whose seeded directory is reused (argon2 is slow)."""
    from gateway.app.server import install_uvloop

    install_uvloop()
    with tempfile.TemporaryDirectory(prefix="csrgw-inproc-") as tmp:
        from bench.targets import GatewayConfig

        folder = state or Path(tmp)
        GatewayConfig(config, folder, "http://127.0.0.1:9").seed()  # once per folder
        return asyncio.run(measure(config, folder, SCENARIOS[scenario], requests,
                                   connections, rounds, prepare, authz, profile))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config")
    parser.add_argument("--scenario", default="buyer", choices=list(SCENARIOS))
    parser.add_argument("--requests", type=int, default=1000, help="per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--authz", action="store_true",
                        help="also the forward-auth question about the same request")
    parser.add_argument("--profile", type=Path, help="cProfile stats of the gateway's rounds")
    args = parser.parse_args()
    from bench.targets import default_config

    config = Path(args.config) if args.config else default_config()
    print(table(run(config, args.scenario, args.requests, args.connections, args.rounds,
                    authz=args.authz, profile=args.profile)))


if __name__ == "__main__":
    main()
