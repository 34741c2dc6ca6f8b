"""One refresh of a session's provider tokens at a time, in this worker and across them.

Providers that rotate refresh tokens (and treat a second use of the old one as theft,
revoking the whole grant) must never see two workers or replicas refresh the same session
at once: the loser would end a healthy session. A lock per session in this worker keeps its
own requests in line; with Redis sessions a Redis lock does the same across processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from gateway.core.errors import ServiceUnavailable

HOLD_SECONDS = 30.0  # a lock left by a dead worker frees itself after this
WAIT_SECONDS = 15.0  # a refresh (10 s at most against the provider) is waited for this long


class RefreshGuard:
    def __init__(self, redis: Any = None, prefix: str = "",
                 errors: tuple[type[BaseException], ...] = ()) -> None:
        self._redis = redis
        self._prefix = prefix
        self._errors = errors
        self._local: dict[str, asyncio.Lock] = {}
        self.wait_seconds = WAIT_SECONDS

    @asynccontextmanager
    async def hold(self, sid: str) -> AsyncIterator[None]:
        local = self._local.setdefault(sid, asyncio.Lock())
        try:
            async with local:
                if self._redis is None:
                    yield
                else:
                    async with self._shared(sid):
                        yield
        finally:
            if not local.locked() and self._local.get(sid) is local:
                del self._local[sid]

    @asynccontextmanager
    async def _shared(self, sid: str) -> AsyncIterator[None]:
        lock = self._redis.lock(self._prefix + sid, timeout=HOLD_SECONDS,
                                blocking_timeout=self.wait_seconds)
        try:
            acquired = await lock.acquire()
        except self._errors as exc:
            raise ServiceUnavailable("session_store_unavailable",
                                     detail=type(exc).__name__) from exc
        if not acquired:  # fail closed: another process holds it past any sane refresh
            raise ServiceUnavailable("session_store_unavailable",
                                     detail="refresh lock not acquired")
        try:
            yield
        finally:
            with suppress(*self._errors):  # expired or gone (LockError): the next one re-checks
                await lock.release()

    def __len__(self) -> int:
        return len(self._local)
