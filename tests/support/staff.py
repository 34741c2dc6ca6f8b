"""A second signed-in person on the same gateway (approvals, the customer's view)."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from tests.support.gateway import PASSWORD


class Staff:
    """A second signed-in person on the same gateway, with a cookie jar of their own."""

    def __init__(self, client: TestClient, session: ClientSession) -> None:
        self.client, self.session, self.token = client, session, ""

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def login(self, username: str) -> Staff:
        async with self.session.post(self.url("/_gateway/login"), data={
                "username": username, "password": PASSWORD}, allow_redirects=False) as resp:
            assert resp.status == 303
        async with self.session.get(self.url("/_gateway/whoami")) as resp:
            self.token = (await resp.json())["csrf_token"]
        return self

    async def decide(self, request_id: str, decision: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url(f"/_gateway/api/approvals/{request_id}/"
                                              f"{decision}"),
                                     headers={"X-CSRF-Token": self.token}) as resp:
            return resp.status, await resp.json()

    async def queue(self) -> list[dict[str, Any]]:
        async with self.session.get(self.url("/_gateway/api/approvals")) as resp:
            assert resp.status == 200
            return list((await resp.json())["approvals"])
