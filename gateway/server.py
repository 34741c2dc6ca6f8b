"""Serving: one process or N workers on one port, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import multiprocessing
import signal
import sys
from pathlib import Path

from aiohttp import http_parser, web

from gateway.app import build_gateway, create_app
from gateway.framing import runner_kwargs
from gateway.reload import reload_policy
from gateway.settings import Settings
from gateway.state import GATEWAY

log = logging.getLogger("csr_gateway")
SHUTDOWN_SECONDS = 15.0
# Start-up leaves ~130,000 long-lived objects (SQLAlchemy, oso, aiohttp, jinja2, the
# directory); every full collection walked them all and stopped the loop for up to 100 ms.
# Frozen, they are never scanned again; the young generation then only sees request
# objects, most of them freed by reference counting long before 10,000 accumulate.
YOUNG_GC_THRESHOLD = 10_000


def c_parser_active() -> bool:
    return http_parser.HttpRequestParser.__module__.endswith("_http_parser")


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def start_gateway(settings: Settings, *, reuse_port: bool = False) -> web.AppRunner:
    gw = await build_gateway(settings)
    app = create_app(gw)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_SECONDS, **runner_kwargs(gw))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None,
                       backlog=1024)
    try:
        await site.start()
    except OSError:  # the port is taken: close what was opened, the caller says why
        await runner.cleanup()
        raise
    settle_heap()
    return runner


def settle_heap() -> None:
    """Move everything built at start-up out of the collector's sight (see above)."""
    gc.collect()
    gc.freeze()
    _young, mid, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, mid, old)


def hook_signals(runner: web.AppRunner, stop: asyncio.Event) -> None:
    gw = runner.app[GATEWAY]
    loop = asyncio.get_running_loop()

    def on_hup() -> None:
        reload_policy(gw, "sighup")
        gw.signer.reload_keys()
        gw.audit.reopen()

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)


async def serve(settings: Settings, *, reuse_port: bool = False, quiet: bool = False) -> None:
    runner = await start_gateway(settings, reuse_port=reuse_port)
    stop = asyncio.Event()
    hook_signals(runner, stop)
    if not quiet:
        print(f"csr-gateway listening on http://{settings.host}:{settings.port} "
              f"-> {settings.upstream.url}", flush=True)
    await stop.wait()
    runner.app[GATEWAY].draining = True
    await runner.cleanup()  # finishes in-flight requests, then flushes and closes the audit


def worker_settings(settings: Settings, n: int) -> Settings:
    """Each worker chains its own audit file (audit.jsonl -> audit.w1.jsonl ...)."""
    path = Path(settings.audit.path)
    audit = dataclasses.replace(settings.audit, path=str(path.with_suffix(f".w{n}{path.suffix}")))
    return dataclasses.replace(settings, audit=audit)


def _worker(settings: Settings) -> None:
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, reuse_port=True, quiet=True))


def run(settings: Settings, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT; with workers > 1, N processes share the port."""
    install_uvloop()
    if workers <= 1:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings))
        return 0
    # Forked after the imports (and with the start-up heap frozen, so the collector does not
    # write to shared pages): the workers share the ~90 MB of code and modules instead of
    # importing everything N times. No event loop or thread exists yet in this process.
    settle_heap()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(worker_settings(settings, n),), daemon=False)
             for n in range(1, workers + 1)]
    for proc in procs:
        proc.start()
    print(f"csr-gateway: {workers} workers on http://{settings.host}:{settings.port}",
          flush=True)

    def forward_signal(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    import os
                    os.kill(proc.pid, signum)
        if signum in (signal.SIGTERM, signal.SIGINT):
            sys.exit(0)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward_signal)
    for proc in procs:
        proc.join()
    return 0
