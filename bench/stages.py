"""What each pipeline stage costs per request, measured in-process (microseconds per call).

Calls the stages the way `pipeline.proxy` does, on one realistic request, so a change to a
stage shows up here without the noise of sockets. Run it as
`python -m bench.stages --config FILE` (a temp state dir is used).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.9", "Accept-Encoding": "gzip, deflate, br",
    "Referer": "http://127.0.0.1/products", "Connection": "keep-alive",
}


REPEATS = 5  # best of: other jobs on the machine only ever add time


def per_call_us(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(max(1, n // REPEATS)):
            fn()
        best = min(best, (time.perf_counter() - start) / max(1, n // REPEATS))
    return best * 1e6


async def per_await_us(fn: Callable[[], Awaitable[object]], n: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(max(1, n // REPEATS)):
            await fn()
        best = min(best, (time.perf_counter() - start) / max(1, n // REPEATS))
    return best * 1e6


async def measure(settings: Any, n: int, acting: bool = False) -> dict[str, float]:
    from aiohttp.test_utils import make_mocked_request

    from gateway.app.build import build_gateway
    from gateway.core.domain import Impersonation
    from gateway.pipeline.authn import cookie_value, session_actor
    from gateway.pipeline.identity import identity_headers
    from gateway.request import hygiene
    from gateway.request.canon import canonicalize
    from gateway.runtime.context import RequestContext
    from gateway.runtime.impersonation import lapse_reason
    from gateway.sessions.store import new_session

    gw = await build_gateway(settings)
    gw.audit.open()
    imp = Impersonation(secrets.token_hex(8), "csr-carol", "buyer-alice", "T-1", time.time()) \
        if acting else None
    session = new_session("csr-carol" if acting else "buyer-alice", 60, "127.0.0.1", imp)
    await gw.sessions.save(session)
    cookie = f"{settings.sessions.cookie_name}={session.id}; _ga=GA1.1.123; theme=dark"
    request = make_mocked_request("GET", "/products/1", headers={**BROWSER_HEADERS,
                                                                  "Cookie": cookie})
    raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
    ctx = RequestContext(method="GET", client_ip="127.0.0.1")
    actor = await session_actor(gw, ctx, session)
    assert actor is not None
    page = gw.settings.pages["storefront"]
    snapshot = gw.directory.snapshot
    ctx.allow(gw.policy.rev)

    def uncached_policy() -> object:
        gw.policy.current.cache.clear()
        return gw.policy.page(actor, "view", page, snapshot)

    costs = {
        "request id + context": per_call_us(
            lambda: RequestContext(method="GET", client_ip="127.0.0.1"), n),
        "client address": per_call_us(lambda: hygiene.client_address(
            "127.0.0.1", request.headers, settings.trusted_proxies), n),
        "canonical path": per_call_us(lambda: canonicalize("/products/1",
                                                           allow_semicolon=True), n),
        "raw headers decode": per_call_us(lambda: [(k.decode("latin-1"), v.decode("latin-1"))
                                                   for k, v in request.raw_headers], n),
        "scrub request headers": per_call_us(lambda: hygiene.scrub_request_headers(
            raw_headers, gw.header_policy, (settings.sessions.cookie_name,)), n),
        "route match": per_call_us(lambda: gw.routes.match("GET", "/products/1"), n),
        "cookie read (ours only)": per_call_us(
            lambda: cookie_value((cookie,), settings.sessions.cookie_name), n),
        "session get": await per_await_us(lambda: gw.sessions.get(session.id), n),
        "session -> actor": await per_await_us(lambda: session_actor(gw, ctx, session), n),
        "policy decision (cached)": per_call_us(
            lambda: gw.policy.page(actor, "view", page, snapshot), n),
        "policy decision (uncached)": per_call_us(uncached_policy, max(50, n // 100)),
        "identity headers + JWT (cached)": per_call_us(lambda: identity_headers(
            settings.headers, actor, session, ctx.request_id, gw.signer, gw.policy.rev), n),
        "forwarded headers": per_call_us(lambda: hygiene.forwarded_headers(
            "127.0.0.1", "http", "127.0.0.1:8080", None), n),
        "audit line": per_call_us(lambda: gw.audit.emit("request", **ctx.audit_fields(200)),
                                  n),
        "metrics": per_call_us(lambda: gw.metrics.observe("allow", "ok", 0.001), n),
    }
    if acting:
        costs["impersonation re-check"] = per_call_us(lambda: lapse_reason(gw, actor), n)
    signer = gw.signer
    claims = {"iss": "x", "aud": "y", "sub": "buyer-alice", "company": "acme",
              "groups": ["Buyer"], "sid": "s", "policy_rev": "r", "iat": 1, "exp": 2}
    costs["JWT sign (uncached)"] = per_call_us(lambda: signer.encode(claims), max(50, n // 20))
    gw.audit.close()
    await gw.directory.close()
    return costs


def settings_for(config: Path, state: Path) -> Any:
    from bench.targets import GatewayConfig
    from gateway.config.load import load_settings

    gc = GatewayConfig(config, state, "http://127.0.0.1:9")
    gc.seed()
    path = gc.write(9, 1)
    settings = load_settings(path)
    return dataclasses.replace(settings, watch_policies=False)


def table(costs: dict[str, float]) -> str:
    from bench.report import markdown

    per_request = sum(v for k, v in costs.items() if "uncached" not in k)
    lines: list[tuple[str, ...]] = [("stage", "us per call")]
    lines += [(name, f"{value:.2f}") for name, value in costs.items()]
    lines.append(("sum per request (cached paths)", f"{per_request:.2f}"))
    return markdown(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=None)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--acting", action="store_true", help="a CSR acting as a buyer")
    args = parser.parse_args()
    from bench.targets import default_config

    with tempfile.TemporaryDirectory(prefix="csrgw-stages-") as tmp:
        settings = settings_for(Path(args.config) if args.config else default_config(),
                                Path(tmp))
        costs = asyncio.run(measure(settings, args.n, args.acting))
    print(table(costs))


if __name__ == "__main__":
    main()
