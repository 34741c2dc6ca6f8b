"""Redis sessions a worker has read, kept while Redis tells it about every change.

A Redis GET through redis-py costs a worker about as much CPU as the rest of a request.
Sessions change rarely (login, logout, impersonation start and stop, the kill switch, and
last_seen every 15 s), so each worker keeps the ones it read, and every change is written
together with a PUBLISH of the session id (one MULTI: never one without the other) that
makes every worker drop its copy.

Safe by construction:
- nothing is cached while the subscription is not confirmed; when it breaks, the cache is
  emptied and reads go to Redis until it is back;
- a read that overlapped any invalidation is not cached (it may predate the change);
- a copy is used for at most MAX_AGE seconds even if a message were lost without the
  connection failing: a session ended on one worker is refused by every worker within that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.sessions.store import Session

log = logging.getLogger("csr_gateway")
MAX_AGE = 2.0  # seconds a copy is trusted without hearing from Redis
LIMIT = 100_000  # copies kept; past it the cache starts over


class SessionCache:
    def __init__(self, redis: Any, channel: str) -> None:
        self.redis, self.channel = redis, channel
        self.entries: dict[str, tuple[float, Session]] = {}
        self.live = False  # the subscription is confirmed: copies may be used
        self.changes = 0  # invalidations heard so far
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._listen(),
                                                               name="session-invalidations")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def get(self, sid: str) -> Session | None:
        if not self.live:
            return None
        found = self.entries.get(sid)
        if found is None or time.monotonic() - found[0] > MAX_AGE:
            return None
        return found[1]

    def put(self, session: Session, changes_before_read: int) -> None:
        """Keep what a read returned, unless an invalidation arrived while it was read."""
        if not self.live or self.changes != changes_before_read:
            return
        if len(self.entries) >= LIMIT:
            self.entries.clear()
        self.entries[session.id] = (time.monotonic(), session)

    def drop(self, sid: str) -> None:
        self.entries.pop(sid, None)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self.live, delay = True, 0.1
                    elif message["type"] == "message":
                        self.changes += 1
                        self.drop(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: no copies until it is back
                log.warning("session invalidations unavailable, reading Redis on every "
                            "request: %r", exc)
            finally:
                self.live = False
                self.entries.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
