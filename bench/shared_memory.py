"""Memory per worker as deployed: `csr-gateway run --workers N`, Redis sessions.

N forked workers share the interpreter, the modules and the start-up heap, so the fair size
of one worker is its PSS (each shared page counted 1/N in each process). Sessions are
written into Redis directly (logins would spend argon2 time), then every session makes one
request through the port, spread over the workers by the kernel, as real traffic is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import targets
from bench.memory import make_sessions, touch_all
from bench.procs import pss_kb, status_kb


def per_worker(config: targets.GatewayConfig, workers: int, sessions: int) -> dict[str, Any]:
    import redis

    made = list(make_sessions(sessions))
    store = redis.Redis.from_url(targets.REDIS_URL)
    pipe = store.pipeline(transaction=False)
    for session in made:
        pipe.set(f"{config.redis_prefix}session:{session.id}", session.to_json(), ex=3600)
    pipe.execute()
    server = targets.gateway(config, workers).start(60)
    try:
        served = asyncio.run(touch_all(server.port, config.cookie_name(),
                                       [s.id for s in made], 16))
        pids = server.pids()[1:]  # the workers, not the supervising parent
        pss = [pss_kb(pid) / 1024 for pid in pids]
        rss = [status_kb(pid, "VmRSS") / 1024 for pid in pids]
    finally:
        server.stop()
        targets.drop_redis_keys(config.redis_prefix)
    return {"workers": workers, "sessions": sessions, "requests_ok": served,
            "pss_mb": max(pss, default=0.0), "rss_mb": max(rss, default=0.0)}
