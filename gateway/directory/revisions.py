"""Directory changes pushed to every worker and replica that shares Redis.

Polling the database version (directory.refresh_seconds) let a revoked CSR act as the
buyer for up to that long on the other workers. Now a change is announced before the
call that made it returns:

- the writer, after its commit, raises `<prefix>directory-revision` to the new version
  and PUBLISHes it on `<prefix>directory-changes` (one script: never one without the
  other); every worker's listener reloads its snapshot when the message arrives;
- a request of an impersonating session reads that revision and, when it is ahead of the
  worker's snapshot, reloads before deciding. So the next impersonated request on any
  worker is decided on the new directory even if the message is late or was lost; a Redis
  that cannot be read fails the request closed (503), never old data. Requests that ask
  at the same time share one GET, but only one sent after they asked (`_SharedRead`): a
  GET already on its way may have been answered before the change, so whoever arrives
  during it waits for the next one.

A policy reload through the admin API is pushed on the same channel: every worker
reloads its policy files (a replica with other files loads its own, as SIGHUP would).

The polling stays as the fallback for changes made outside the gateway (an import run by
another program) and for deployments without Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.core.errors import ServiceUnavailable

log = logging.getLogger("csr_gateway")

RAISE_AND_PUBLISH = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('PUBLISH', KEYS[2], ARGV[1])
"""


POLICY = b"policy"  # the message that asks every worker to reload its policy files


class RevisionBoard:
    """The newest directory version, kept in Redis, and the push of every change."""

    def __init__(self, client: Any, subscriber: Any, prefix: str) -> None:
        # redis is loaded only where Redis is configured
        from redis.exceptions import RedisError

        self.client, self.subscriber = client, subscriber
        self.key, self.channel = prefix + "directory-revision", prefix + "directory-changes"
        self.errors = (RedisError, OSError)
        self._read = _SharedRead(self._get)
        self.task: asyncio.Task[None] | None = None
        self.heard = 0  # pushes received (tests, metrics)
        self.mine = POLICY + b":" + secrets.token_hex(6).encode()  # our own policy pushes

    async def publish(self, version: int) -> int:
        """After the commit: the new version, announced; the number of listeners told."""
        try:
            return int(await self.client.eval(RAISE_AND_PUBLISH, 2, self.key, self.channel,
                                              version))
        except self.errors as exc:
            raise ServiceUnavailable("session_store_unavailable", detail=type(exc).__name__,
                                     public="The change is saved, but other gateway "
                                     "processes could not be told yet.") from exc

    async def latest(self) -> int:
        """The newest version announced, read after this call began."""
        return await self._read()

    @property
    def reads(self) -> int:
        """GETs sent so far (tests, the bench)."""
        return self._read.sent

    async def _get(self) -> int:
        try:
            raw = await self.client.get(self.key)
        except self.errors as exc:
            raise ServiceUnavailable("session_store_unavailable",
                                     detail=type(exc).__name__) from exc
        return int(raw or 0)

    async def publish_policy(self) -> int:
        """A policy reload on one worker: every other one reloads its policy files too."""
        try:
            return int(await self.client.publish(self.channel, self.mine))
        except self.errors as exc:
            log.warning("policy reload not pushed to other workers (they poll the files): "
                        "%r", exc)
            return 0

    def listen(self, on_change: Callable[[int], Awaitable[None]],
               on_policy: Callable[[], None] | None = None) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._listen(on_change, on_policy), name="directory-changes")

    async def _listen(self, on_change: Callable[[int], Awaitable[None]],
                      on_policy: Callable[[], None] | None) -> None:
        delay = 0.1
        while True:
            pubsub = self.subscriber.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        delay = 0.1
                    elif message["type"] == "message":
                        self.heard += 1
                        try:
                            data = message["data"]
                            if data.startswith(POLICY):
                                if on_policy is not None and data != self.mine:
                                    on_policy()
                            else:
                                await on_change(int(message["data"]))
                        except Exception:
                            log.exception("directory reload after a pushed change failed; "
                                          "the next impersonated request reloads")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("directory change push unavailable (polling meanwhile): %r", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await self._read.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        await self.subscriber.aclose()


class _SharedRead:
    """One read for every caller waiting at the same time, and never an older one.

    A caller that finds no read on its way sends one itself. A caller that arrives while one
    is on its way cannot use its answer (Redis may have answered before a change that
    committed since), so it waits for the next read, which starts the moment the one on its
    way ends and serves everybody who arrived meanwhile. Under load a worker sends one GET
    per round trip instead of one per impersonated request; with one request at a time it
    is exactly the plain GET. A caller that is cancelled leaves the others their answer.
    """

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self.read = read
        self.busy = False  # a read is on its way
        self.queued: asyncio.Future[int] | None = None  # the next read's answer
        self.next_task: asyncio.Task[None] | None = None
        self.sent = 0
        self.closed = False  # shutting down: no read is started any more

    async def __call__(self) -> int:
        if self.busy:
            if self.queued is None:
                self.queued = asyncio.get_running_loop().create_future()
                self.queued.add_done_callback(_retrieve)
            return await asyncio.shield(self.queued)
        self.busy = True
        try:
            self.sent += 1
            return await self.read()
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        queued, self.queued = self.queued, None
        if queued is None:
            self.busy = False
            return
        if self.closed:  # the callers still waiting are cancelled with the shutdown
            queued.cancel()
            self.busy = False
            return
        self.next_task = asyncio.get_running_loop().create_task(self._serve(queued))

    async def _serve(self, answer: asyncio.Future[int]) -> None:
        try:
            self.sent += 1
            value = await self.read()
        except Exception as exc:  # every waiter gets the failure (503), not a hang
            answer.set_exception(exc)
        except BaseException:  # cancelled (shutdown): so are the waiters
            answer.cancel()
            raise
        else:
            answer.set_result(value)
        finally:
            self._hand_on()

    async def close(self) -> None:
        self.closed = True
        task = self.next_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _retrieve(answer: asyncio.Future[int]) -> None:
    """A failure nobody waited for any more (all of them cancelled) is not an error."""
    if not answer.cancelled():
        answer.exception()
