"""Serving: one process or N workers on one port, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import http_parser, web

from gateway.app.build import build_gateway, create_app
from gateway.app.protocol_audit import runner_kwargs
from gateway.core.settings import Settings
from gateway.runtime.gateway import GATEWAY
from gateway.runtime.reload import reload_policy

log = logging.getLogger("csr_gateway")
SHUTDOWN_SECONDS = 15.0
# Start-up leaves a six-figure number of long-lived objects (SQLAlchemy, oso, aiohttp,
# jinja2, the directory); every full collection walked them all and stopped the loop.
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
    await runner.cleanup()  # finishes in-flight requests, then flushes and closes the audit


def worker_settings(settings: Settings, n: int) -> Settings:
    """Each worker chains its own audit file (audit.jsonl -> audit.w1.jsonl ...)."""
    path = Path(settings.audit.path)
    audit = dataclasses.replace(settings.audit, path=str(path.with_suffix(f".w{n}{path.suffix}")))
    return dataclasses.replace(settings, audit=audit)


def _worker(settings: Settings) -> None:
    # the master's handlers are inherited by fork: the worker's loop installs its own
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the loop's own handler is in
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, reuse_port=True, quiet=True))


def prepare_directory(settings: Settings) -> str:
    """Migrate (and seed an empty directory) once, before any worker starts."""
    # the master opens the directory once, before forking, then drops it
    from gateway.directory import Directory
    from gateway.directory.passwords import hasher_for

    async def once() -> str:
        directory = await Directory.open(settings.directory.url, settings.directory.seed,
                                         hasher_for(settings.directory))
        try:
            return directory.schema
        finally:
            await directory.close()

    return asyncio.run(once())


def run(settings: Settings, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT; with workers > 1, N supervised processes share the port."""
    install_uvloop()
    if workers <= 1:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings))
        return 0
    # The schema is brought up to date here, once, so the workers never race to migrate
    # (replicas starting together are serialised by the directory's migration lock).
    try:
        prepare_directory(settings)
    except Exception as exc:  # the database unreachable or refusing: one line, exit 1
        print(f"csr-gateway: the directory could not be opened: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    # Forked after the imports (and with the start-up heap frozen, so the collector does not
    # write to shared pages): the workers share the ~90 MB of code and modules instead of
    # importing everything N times. No event loop or thread is left in this process.
    settle_heap()
    return Supervisor(settings, workers).run()


RESTART_DELAY = (0.5, 30.0)  # first and longest back-off before a dead worker is restarted
STABLE_SECONDS = 30.0  # a worker that lived this long starts its back-off afresh


class Supervisor:
    """Starts N workers, restarts each one that dies (with back-off), and gives up (exit
    1, the other workers stopped) when more than `worker_max_deaths` die within
    `worker_death_window` seconds: a crash loop is for the service manager to see."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings, self.size = settings, workers
        self.ctx = multiprocessing.get_context("fork")
        self.procs: dict[int, multiprocessing.process.BaseProcess] = {}
        self.started: dict[int, float] = {}
        self.delay: dict[int, float] = {}
        self.due: dict[int, float] = {}  # slot -> when its restart is due
        self.deaths: collections.deque[float] = collections.deque()
        self.stopping: int | None = None
        self.hup = False

    def run(self) -> int:
        # the shared worker table exists only under --workers
        from gateway.services import workers as shared

        shared.share(self.size)
        for slot in range(1, self.size + 1):
            self._start(slot)
        print(f"csr-gateway: {self.size} workers on http://{self.settings.host}:"
              f"{self.settings.port}", flush=True)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        while self.stopping is None:
            if self.hup:
                self.hup = False
                self._signal_all(signal.SIGHUP)
            sentinels = [p.sentinel for p in self.procs.values()]
            multiprocessing.connection.wait(sentinels, timeout=0.2)
            if self._reap() > self.settings.worker_max_deaths:
                log.error("csr-gateway: %d workers died within %.0f s; stopping",
                          len(self.deaths), self.settings.worker_death_window)
                self._stop_all(signal.SIGTERM)
                return 1
            now = time.monotonic()
            for slot, at in list(self.due.items()):
                if now >= at and self.stopping is None:
                    del self.due[slot]
                    self._start(slot)
        self._stop_all(self.stopping)
        return 0

    def _start(self, slot: int) -> None:
        # the shared worker table exists only under --workers
        from gateway.services import workers as shared

        proc = self.ctx.Process(target=_worker, args=(worker_settings(self.settings, slot),),
                                daemon=False, name=f"csr-gateway-worker-{slot}")
        proc.start()
        self.procs[slot], self.started[slot] = proc, time.monotonic()
        shared.set_alive(len(self.procs))
        log.info("worker %d started (pid %s); %d of %d alive", slot, proc.pid,
                 len(self.procs), self.size)

    def _reap(self) -> int:
        """Collect dead workers, schedule their restarts; the deaths in the window."""
        # the shared worker table exists only under --workers
        from gateway.services import workers as shared

        now = time.monotonic()
        for slot, proc in list(self.procs.items()):
            if proc.is_alive():
                continue
            del self.procs[slot]
            shared.set_alive(len(self.procs))
            if self.stopping is not None:
                continue
            lived = now - self.started[slot]
            delay = RESTART_DELAY[0] if lived >= STABLE_SECONDS else \
                min(self.delay.get(slot, RESTART_DELAY[0] / 2) * 2, RESTART_DELAY[1])
            self.delay[slot], self.due[slot] = delay, now + delay
            self.deaths.append(now)
            log.error("worker %d (pid %s) died (exit code %s) after %.1f s; %d of %d alive; "
                      "restarting in %.1f s", slot, proc.pid, proc.exitcode, lived,
                      len(self.procs), self.size, delay)
        while self.deaths and now - self.deaths[0] > self.settings.worker_death_window:
            self.deaths.popleft()
        return len(self.deaths)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self.hup = True
        else:
            self.stopping = signum

    def _signal_all(self, signum: int) -> None:
        for proc in self.procs.values():
            if proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signum)

    def _stop_all(self, signum: int) -> None:
        """Each worker finishes its requests in flight (SHUTDOWN_SECONDS), then exits."""
        self._signal_all(signum)
        deadline = time.monotonic() + SHUTDOWN_SECONDS + 5
        for proc in self.procs.values():
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
