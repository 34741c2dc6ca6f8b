"""A customer's webhook on loopback, for the notification, approval and limit tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Hook:
    """A customer's webhook on loopback: answers the statuses given, then 204."""

    statuses: list[int]
    delay: float = 0.0
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    @property
    def received(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in self.calls]

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 204
        return web.Response(status=status)

    async def wait(self, n: int, timeout: float = 10) -> None:
        for _ in range(int(timeout * 20)):
            if len(self.calls) >= n:
                await asyncio.sleep(0.05)
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{len(self.calls)} calls, wanted {n}")
