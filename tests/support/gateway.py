"""A gateway in the test's own process, in front of a recording upstream, and the helpers
that log in, impersonate, read the audit and change the directory."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config.load import load_settings
from gateway.core.settings import Settings
from gateway.directory.models import AssignmentRow, CompanyRow, MembershipRow, UserRow
from gateway.runtime.gateway import GATEWAY, Gateway
from gateway.sessions.store import Session

ROOT = Path(__file__).resolve().parent.parent.parent


PASSWORD = "demo-pass-1"


IN_CI = os.environ.get("CI") == "true"
# Logins in tests cost microseconds, not argon2's production cost: set by the tests'
# configuration (directory.password_*), never by weakening the product's defaults.
CHEAP_PASSWORDS = {"password_time_cost": 1, "password_memory_kib": 64,
                   "password_parallelism": 1}


@dataclass
class Upstream:
    """A shop stand-in that records what reached it and answers per path."""

    server: TestServer
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def last(self) -> Seen:
        return self.seen[-1]


UPSTREAM = web.AppKey("upstream", Upstream)


async def record(request: web.Request) -> web.StreamResponse:
    upstream = request.app[UPSTREAM]
    body = await request.read()
    delay = float(request.headers.get("X-Test-Delay", "0"))
    if delay:
        await asyncio.sleep(delay)
    upstream.seen.append(Seen(request.method, request.raw_path,
                              [(k.decode(), v.decode()) for k, v in request.raw_headers], body))
    if request.path.endswith(".html") or request.path in ("/", "/cart", "/checkout"):
        return web.Response(text="<html><body><h1>shop page</h1></body></html>",
                            content_type="text/html")
    return web.json_response({"path": request.raw_path, "method": request.method})


def test_settings(tmp_path: Path, upstream_url: str, **changes: Any) -> Settings:
    base = load_settings(ROOT / "config" / "gateway.yaml")
    sections = {k: v for k, v in changes.items() if isinstance(v, dict)}
    flat = {k: v for k, v in changes.items() if not isinstance(v, dict)}
    replaced = {name: dataclasses.replace(getattr(base, name), **values)
                for name, values in sections.items()}
    directory_url = sections.get("directory", {}).get(
        "url", f"sqlite+aiosqlite:///{tmp_path / 'directory.sqlite3'}")
    return dataclasses.replace(
        base, state_dir=tmp_path, watch_policies=False,
        directory=dataclasses.replace(replaced.pop("directory", base.directory),
                                      url=directory_url, **CHEAP_PASSWORDS),
        upstream=dataclasses.replace(replaced.pop("upstream", base.upstream), url=upstream_url),
        assertion=dataclasses.replace(replaced.pop("assertion", base.assertion),
                                      keys_dir=tmp_path / "keys"),
        audit=dataclasses.replace(replaced.pop("audit", base.audit),
                                  path=str(tmp_path / "audit.jsonl")),
        **replaced, **flat)


GatewayFactory = Callable[..., Awaitable[TestClient]]


def gw_of(client: TestClient) -> Gateway:
    return client.server.app[GATEWAY]


async def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    resp = await client.post("/_gateway/login", data={"username": username,
                                                      "password": password, "next": "/"},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def whoami(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/_gateway/whoami", headers={"Accept": "application/json"})
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


async def impersonate(client: TestClient, buyer: str, reason: str = "TICKET-1") -> int:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/impersonate", data={
        "buyer": buyer, "reason": reason, "csrf_token": token}, allow_redirects=False)
    return resp.status


def audit_lines(client: TestClient) -> list[dict[str, Any]]:
    gw = gw_of(client)
    gw.audit.flush()
    with open(gw.settings.audit.path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def events(client: TestClient, name: str) -> list[dict[str, Any]]:
    return [r for r in audit_lines(client) if r["event"] == name]


async def only_session(client: TestClient) -> Session:
    (session,) = await gw_of(client).sessions.all()
    return session


async def age(client: TestClient, *, started: float = 0, idle: float = 0) -> None:
    """Move the running impersonation's start and the session's last use into the past."""
    gw, session = gw_of(client), await only_session(client)
    assert session.impersonation is not None
    imp = dataclasses.replace(session.impersonation,
                              started_at=session.impersonation.started_at - started)
    await gw.sessions.save(dataclasses.replace(session, impersonation=imp,
                                               last_seen=session.last_seen - idle))


async def acting(client: TestClient, buyer: str = "buyer-alice") -> None:
    await login(client, "csr-carol")
    assert await impersonate(client, buyer, "TICKET-3") == 303
    assert (await client.get("/cart")).status == 200


RowChange = Callable[[AsyncSession], Awaitable[Any]]


async def change_rows(client: TestClient, *changes: RowChange) -> None:
    """Write directory rows as an admin tool would: one transaction, version bumped, reload."""
    directory = gw_of(client).directory
    async with directory.sessions.begin() as db:
        for change in changes:
            await change(db)
        await directory.bump(db)
    await directory.reload()


def unassign(csr: str, company: str) -> RowChange:
    return lambda db: db.execute(delete(AssignmentRow).where(
        AssignmentRow.username == csr, AssignmentRow.company_id == company))


def set_user(username: str, **values: Any) -> RowChange:
    return lambda db: db.execute(update(UserRow).where(UserRow.username == username)
                                 .values(**values))


def set_company(company: str, **values: Any) -> RowChange:
    return lambda db: db.execute(update(CompanyRow).where(CompanyRow.id == company)
                                 .values(**values))


def drop_group(username: str, group: str) -> RowChange:
    return lambda db: db.execute(delete(MembershipRow).where(
        MembershipRow.username == username, MembershipRow.group == group))


def add_group(username: str, group: str) -> RowChange:
    async def change(db: AsyncSession) -> None:
        db.add(MembershipRow(username=username, group=group))
    return change


def remove_user(username: str) -> RowChange:
    async def change(db: AsyncSession) -> None:
        await db.delete(await db.get(UserRow, username))
    return change


def denied_lines(client: TestClient) -> list[dict[str, Any]]:
    return [r for r in audit_lines(client) if r["event"] == "impersonation_denied"]


@dataclass
class Seen:
    method: str
    raw_path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[0] if found else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower().replace("_", "-") == name.lower()]
test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def edited_policies(tmp_path: Path, old: str, new: str, file: str = "pages.polar") -> Path:
    """A copy of the shipped policies with one text replaced (which must be there)."""
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target, dirs_exist_ok=True)
    path = target / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    return target
