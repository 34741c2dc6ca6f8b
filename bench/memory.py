"""Memory of one gateway worker holding N active sessions, measured in a fresh process.

Logins would spend argon2 time, so sessions are saved straight into `gw.sessions`; then
every session makes one request through the real pipeline (that fills the per-identity
assertion cache too, as real traffic would). Prints JSON; run it as
`python -m bench.memory --config FILE --sessions 10000 [--steps 1000,5000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from bench import httpclient
from bench.procs import status_kb

IDENTITIES = (("buyer-alice", None), ("buyer-bob", None), ("buyer-ivan", None),
              ("csr-carol", "buyer-alice"), ("csr-carol", "buyer-bob"),
              ("csr-dave", "buyer-ivan"))


def rss_mb() -> dict[str, float]:
    import os

    pid = os.getpid()
    return {"rss_mb": status_kb(pid, "VmRSS") / 1024, "hwm_mb": status_kb(pid, "VmHWM") / 1024}


def make_sessions(count: int, idle_minutes: int = 60) -> Iterator[Any]:
    from gateway.core.domain import Impersonation
    from gateway.sessions.store import new_session

    for i in range(count):
        user, buyer = IDENTITIES[i % len(IDENTITIES)]
        imp = Impersonation(id=secrets.token_hex(8), csr=user, buyer=buyer,
                            reason=f"TICKET-{i}", started_at=time.time()) if buyer else None
        yield new_session(user, idle_minutes, "127.0.0.1", imp)


async def touch_all(port: int, cookie_name: str, sids: list[str], connections: int) -> int:
    """One GET /products/1 per session over `connections` keep-alive connections."""
    ok = 0

    async def worker(part: list[str]) -> None:
        nonlocal ok
        conn = await httpclient.connect(port)
        for sid in part:
            raw = httpclient.build_request("GET", "/products/1", port,
                                           {"Cookie": f"{cookie_name}={sid}"})
            if await conn.exchange(raw) == 200:
                ok += 1
        assert conn.transport is not None
        conn.transport.close()

    await asyncio.gather(*(worker(sids[i::connections]) for i in range(connections)))
    return ok


async def measure(config: str, total: int, steps: list[int], requests: bool) -> dict[str, Any]:
    from gateway.app.server import start_gateway
    from gateway.config.load import load_settings
    from gateway.runtime.gateway import GATEWAY

    settings = load_settings(config)
    runner = await start_gateway(settings)
    gw = runner.app[GATEWAY]
    port = settings.port
    cookie = settings.sessions.cookie_name
    points: list[dict[str, Any]] = []
    try:
        warm = list(make_sessions(len(IDENTITIES)))
        for session in warm:
            await gw.sessions.save(session)
        await touch_all(port, cookie, [s.id for s in warm], 2)  # imports, caches, pools
        gc.collect()
        points.append({"sessions": 0, **rss_mb()})
        sids: list[str] = []
        made = make_sessions(total)
        for step in sorted({*steps, total}):
            fresh = [next(made) for _ in range(step - len(sids))]
            for session in fresh:
                await gw.sessions.save(session)
            sids += [session.id for session in fresh]
            served = await touch_all(port, cookie, [x.id for x in fresh], 16) if requests else 0
            points.append({"sessions": len(sids), "requests_ok": served, **rss_mb()})
    finally:
        await runner.cleanup()
    first, last = points[0], points[-1]
    per_session = (last["rss_mb"] - first["rss_mb"]) * 1024 / max(1, last["sessions"])
    return {"points": points, "per_session_kb": per_session, "baseline_mb": first["rss_mb"],
            "final_mb": last["rss_mb"], "peak_mb": last["hwm_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--steps", default="", help="comma-separated intermediate counts")
    parser.add_argument("--no-requests", action="store_true")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    from gateway.app.server import install_uvloop

    install_uvloop()
    result = asyncio.run(measure(args.config, args.sessions, steps, not args.no_requests))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
