"""The directory revision read before every impersonated request: shared by callers that ask
at the same time, never older than the moment each one asked, and failing closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis

from gateway.core.errors import ServiceUnavailable
from gateway.directory.revisions import RevisionBoard

URL = "redis://127.0.0.1:6379/0"


class HeldGets:
    """The real client, with each GET's answer held back until the test lets it through
    (so a test can place a change between a GET's reading and its answer)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.gates: list[asyncio.Event] = []
        self.fail_next = False

    async def get(self, key: str) -> Any:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("Redis went away")
        value = await self.client.get(key)
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return value

    async def release(self, count: int = 1) -> None:
        await until(lambda: len(self.gates) >= count)
        self.gates[count - 1].set()


async def until(check: Any) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached")


@pytest.fixture
async def board(redis_prefix: str) -> AsyncIterator[tuple[RevisionBoard, HeldGets, Any]]:
    client = redis.from_url(URL)
    held = HeldGets(client)
    found = RevisionBoard(held, redis.from_url(URL), redis_prefix)
    yield found, held, client
    await found.close()
    await client.aclose()


async def test_callers_arriving_together_share_one_get(board) -> None:
    found, held, client = board
    await client.set(found.key, 7)
    leader = asyncio.create_task(found.latest())
    await until(lambda: held.gates)
    waiting = [asyncio.create_task(found.latest()) for _ in range(20)]
    await asyncio.sleep(0.01)
    await held.release(1)
    assert await leader == 7
    await held.release(2)  # the one read that serves all twenty
    assert await asyncio.gather(*waiting) == [7] * 20
    assert found.reads == 2


async def test_a_change_during_a_get_reaches_whoever_asked_after_it_was_sent(board) -> None:
    """The leader's GET has read the old version; a change commits; a caller asking now must
    see the change, not share the answer already read."""
    found, held, client = board
    await client.set(found.key, 1)
    leader = asyncio.create_task(found.latest())
    await until(lambda: held.gates)  # its GET has read 1, the answer is held
    await client.set(found.key, 2)  # the revocation commits
    after = asyncio.create_task(found.latest())
    await asyncio.sleep(0.01)
    await held.release(1)
    assert await leader == 1
    await held.release(2)
    assert await after == 2


async def test_one_caller_at_a_time_is_one_get_each(board) -> None:
    found, held, client = board
    for version in (3, 4, 5):
        await client.set(found.key, version)
        task = asyncio.create_task(found.latest())
        await held.release(len(held.gates) + 1)
        assert await task == version
    assert found.reads == 3


async def test_a_cancelled_caller_leaves_the_others_their_answer(board) -> None:
    found, held, client = board
    await client.set(found.key, 9)
    leader = asyncio.create_task(found.latest())
    await until(lambda: held.gates)
    first, second = asyncio.create_task(found.latest()), asyncio.create_task(found.latest())
    await asyncio.sleep(0.01)
    first.cancel()
    leader.cancel()  # the client of the request that sent the GET went away
    await held.release(2)
    assert await second == 9
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_read_fails_every_waiter_closed_and_the_next_one_recovers(board) -> None:
    found, held, client = board
    await client.set(found.key, 5)
    leader = asyncio.create_task(found.latest())
    await until(lambda: held.gates)
    held.fail_next = True  # the read the waiters share fails
    waiting = [asyncio.create_task(found.latest()) for _ in range(3)]
    await asyncio.sleep(0.01)
    await held.release(1)
    assert await leader == 5
    for task in waiting:
        with pytest.raises(ServiceUnavailable) as err:
            await task
        assert err.value.reason == "session_store_unavailable"
    again = asyncio.create_task(found.latest())
    await held.release(2)
    assert await again == 5


async def test_closing_starts_no_further_read_and_cancels_who_still_waits(board) -> None:
    """At shutdown the read on its way is cancelled; callers queued behind it are cancelled
    too instead of having one more GET sent for them."""
    found, held, client = board
    await client.set(found.key, 4)
    leader = asyncio.create_task(found.latest())
    await until(lambda: held.gates)
    queued = asyncio.create_task(found.latest())
    await asyncio.sleep(0.01)
    await held.release(1)
    assert await leader == 4
    await until(lambda: len(held.gates) == 2)  # the next read, for `queued`, is on its way
    late = asyncio.create_task(found.latest())
    await asyncio.sleep(0.01)
    await found.close()
    for task in (queued, late):
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.02)
    assert len(held.gates) == 2 and found.reads == 2
