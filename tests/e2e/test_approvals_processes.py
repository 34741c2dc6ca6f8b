"""Approvals and volume limits across two gateway processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, CookieJar

from tests.support.gateway import PASSWORD
from tests.support.processes import start_gateway_process, stop_process, write_config
from tests.support.services import free_port, postgres_url


class Pair:
    """Two `csr-gateway run` processes, A and B, on one directory and one Redis."""

    def __init__(self, root: Path) -> None:
        self.root, self.bases, self.procs = root, [], []  # type: ignore[var-annotated]

    def audit(self) -> list[dict[str, Any]]:
        """Both processes' audit lines, once they have stopped (and flushed)."""
        for proc in self.procs:
            if proc.poll() is None:
                stop_process(proc)
        lines = []
        for name in ("a", "b"):
            path = self.root / name / "audit.jsonl"
            if path.exists():
                lines += [{**orjson.loads(raw), "_process": name}
                          for raw in path.read_bytes().splitlines() if raw.strip()]
        return lines


@pytest.fixture
async def pair_factory(tmp_path: Path, redis_prefix: str, upstream: Any
                       ) -> AsyncIterator[Any]:
    urls = postgres_url()
    url = await urls.__anext__()
    made: list[Pair] = []

    def make(**changes: Any) -> Pair:
        pair = Pair(tmp_path)
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            port = free_port()
            config = write_config(folder, upstream.url, port, directory={"url": url},
                                  sessions={"store": "redis", "redis_prefix": redis_prefix},
                                  **changes)
            pair.procs.append(start_gateway_process(config, port))
            pair.bases.append(f"http://127.0.0.1:{port}")
        made.append(pair)
        return pair

    yield make
    for pair in made:
        for proc in pair.procs:
            if proc.poll() is None:
                stop_process(proc)
    await urls.aclose()


async def signed_in(username: str, base: str) -> tuple[ClientSession, str]:
    session = ClientSession(cookie_jar=CookieJar(unsafe=True))
    async with session.post(f"{base}/_gateway/login", data={
            "username": username, "password": PASSWORD}, allow_redirects=False) as resp:
        assert resp.status == 303
    async with session.get(f"{base}/_gateway/whoami") as resp:
        return session, str((await resp.json())["csrf_token"])


async def start(session: ClientSession, base: str, token: str,
                buyer: str) -> tuple[int, Any]:
    async with session.post(f"{base}/_gateway/impersonate", json={
            "buyer": buyer, "reason": "TICKET-9", "csrf_token": token},
            headers={"Accept": "application/json"}, allow_redirects=False) as resp:
        body = await resp.json() if resp.status in (202, 403, 503) else \
            resp.headers.get("Location")
        return resp.status, body


async def stop(session: ClientSession, base: str, token: str) -> None:
    async with session.post(f"{base}/_gateway/impersonate/stop", data={"csrf_token": token},
                            allow_redirects=False) as resp:
        assert resp.status == 303


async def token_of(session: ClientSession, base: str) -> str:
    async with session.get(f"{base}/_gateway/whoami") as resp:
        return str((await resp.json())["csrf_token"])


async def test_approval_on_one_process_is_used_once_on_either(pair_factory) -> None:
    """Filed on A, approved on B (not by the requester), used once of two racing starts."""
    pair = pair_factory()
    a, b = pair.bases
    ann, ann_token = await signed_in("admin-ann", a)
    carol, token = await signed_in("csr-carol", a)
    try:
        async with ann.patch(f"{a}/_gateway/api/users/buyer-bob",
                             json={"tags": ["approval_required"]},
                             headers={"X-CSRF-Token": ann_token}) as resp:
            assert resp.status == 200
        status, body = await start(carol, a, token, "buyer-bob")
        assert status == 202 and body["status"] == "pending"
        request_id = body["request"]
        async with carol.post(f"{b}/_gateway/api/approvals/{request_id}/approve",
                              headers={"X-CSRF-Token": token}) as resp:
            assert (resp.status, (await resp.json())["error"]) == (403, "self_approval")
        async with ann.get(f"{b}/_gateway/api/approvals") as resp:
            assert [r["id"] for r in (await resp.json())["approvals"]] == [request_id]
        async with ann.post(f"{b}/_gateway/api/approvals/{request_id}/approve",
                            headers={"X-CSRF-Token": ann_token}) as resp:
            assert resp.status == 200
        results = await asyncio.gather(start(carol, a, token, "buyer-bob"),
                                       start(carol, b, token, "buyer-bob"))
        assert sorted(status for status, _ in results) == [202, 303]
        assert [body for status, body in results if status == 303] == ["/"]
        token = await token_of(carol, a)
        await stop(carol, b, token)
        token = await token_of(carol, b)
        status, body = await start(carol, b, token, "buyer-bob")
        assert status == 202 and body["request"] != request_id
    finally:
        await ann.close()
        await carol.close()
    lines = pair.audit()
    granted = [(r["_process"], r["approver"]) for r in lines if r["event"] ==
               "approval_granted"]
    assert granted == [("b", "admin-ann")]
    starts = [r for r in lines if r["event"] == "impersonation_start" and
              r["user"] == "buyer-bob"]
    assert len(starts) == 1
    # the first, and the racing loser's (the last start finds that one still pending)
    assert len([r for r in lines if r["event"] == "approval_requested"]) == 2


LIMITS = {"limits": {"buyers_per_hour": {"max": 1, "mode": "block"},
                     "impersonations_per_day": {"max": 1, "mode": "alert"},
                     "actions_per_hour": {"max": 1, "mode": "alert"}}}


async def test_limits_count_across_processes(pair_factory) -> None:
    """One CSR's starts and actions on A and B count together: one alert each, one block."""
    pair = pair_factory(impersonation=LIMITS)
    a, b = pair.bases
    carol, token = await signed_in("csr-carol", a)
    try:
        assert await start(carol, a, token, "buyer-alice") == (303, "/")
        token = await token_of(carol, a)
        for base in (a, b):
            async with carol.post(f"{base}/cart/add", data={"sku": "7",
                                                             "csrf_token": token}) as resp:
                assert resp.status == 200
        await stop(carol, a, token)
        token = await token_of(carol, b)
        status, body = await start(carol, b, token, "buyer-bob")
        assert (status, body["error"]) == (403, "limit_buyers_per_hour")
        assert await start(carol, b, token, "buyer-alice") == (303, "/")
        await asyncio.sleep(0.5)  # counting after the response; lines flushed each second
        metrics = 0.0
        for base in (a, b):
            async with carol.get(f"{base}/_gateway/metrics") as resp:
                for line in (await resp.text()).splitlines():
                    if line.startswith("csrgw_impersonation_limits_exceeded_total{"):
                        metrics += float(line.rsplit(" ", 1)[1])
    finally:
        await carol.close()
    lines = pair.audit()
    alerts = sorted((r["limit"], r["limit_count"]) for r in lines
                    if r["event"] == "impersonation_limit")
    assert alerts == [("actions_per_hour", 2), ("impersonations_per_day", 2)]
    assert metrics == 2.0
    denied = [(r["_process"], r["reason"]) for r in lines if r["event"] ==
              "impersonation_denied"]
    assert denied == [("b", "limit_buyers_per_hour")]
