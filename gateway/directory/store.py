"""Directory access: one in-memory snapshot for the hot path, the database behind it."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import Connection, inspect, select, text, update
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gateway.core.domain import BUILTIN_GROUPS, Company, DirectorySnapshot, User
from gateway.directory.models import CompanyRow, GroupRow, MetaRow, UserRow
from gateway.directory.passwords import HASHER, verify
from gateway.directory.revisions import RevisionBoard
from gateway.directory.seed import load_seed

log = logging.getLogger("csr_gateway")
_FACT_IDS = itertools.count(1)


def to_user(row: UserRow) -> User:
    return User(
        username=row.username, email=row.email, kind=row.kind, company=row.company_id,
        groups=tuple(sorted(m.group for m in row.groups)), first_name=row.first_name,
        last_name=row.last_name, mobile=row.mobile, account_number=row.account_number,
        active=row.active, idle_minutes=row.idle_minutes, features=tuple(row.features or ()),
        tags=tuple(row.tags or ()), allow_assistance=row.allow_assistance,
        language=row.language or "",
        assigned_companies=tuple(sorted(a.company_id for a in row.assignments)),
        ip_fence=tuple(sorted(f.cidr for f in row.fences)),
    )


def to_company(row: CompanyRow) -> Company:
    return Company(row.id, row.name, row.allow_assistance, row.no_impersonation)


class Directory:
    """Owns the engine; serves `snapshot` (frozen) and refreshes it when the version moves."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.hasher = HASHER  # argon2 at the configured cost (Directory.open)
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.snapshot = DirectorySnapshot(version=-1)
        self._facts: dict[tuple[User, Company | None], int] = {}
        self.schema = ""  # the Alembic revision found or reached at open
        self.board: RevisionBoard | None = None  # changes pushed through Redis, if shared
        self._reloading = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, seed: Path | None = None,
                   hasher: PasswordHasher = HASHER) -> Directory:
        if url.startswith("sqlite") and ":///" in url:
            Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        directory = cls(create_async_engine(url))
        directory.hasher = hasher
        try:
            async with setup_lock(directory.engine, url):
                async with directory.engine.begin() as conn:
                    await conn.run_sync(migrate)
                    revision: str | None = await conn.run_sync(schema_revision)
                directory.schema = revision or ""
                await directory.ensure_builtin_groups()
                if seed is not None and not await directory.has_users():
                    await load_seed(directory, seed)
            await directory.reload()
        except BaseException:
            await directory.engine.dispose()
            raise
        return directory

    async def close(self) -> None:
        await self.engine.dispose()

    async def has_users(self) -> bool:
        async with self.sessions() as db:
            return (await db.scalar(select(UserRow.username).limit(1))) is not None

    async def ensure_builtin_groups(self) -> None:
        async with self.sessions.begin() as db:
            have = set((await db.scalars(select(GroupRow.name))).all())
            db.add_all(GroupRow(name=g, builtin=True) for g in BUILTIN_GROUPS if g not in have)

    async def version(self) -> int:
        async with self.sessions() as db:
            return int(await db.scalar(select(MetaRow.value).where(MetaRow.key == "version"))
                       or 0)

    async def reload(self) -> DirectorySnapshot:
        async with self.sessions() as db:
            version = int(await db.scalar(
                select(MetaRow.value).where(MetaRow.key == "version")) or 0)
            users = (await db.scalars(select(UserRow))).all()
            companies = (await db.scalars(select(CompanyRow))).all()
        by_id = {row.id: to_company(row) for row in companies}
        people = {row.username: to_user(row) for row in users}
        self.snapshot = DirectorySnapshot(version=version, users=people, companies=by_id,
                                          facts=self._intern(people, by_id))
        return self.snapshot

    def _intern(self, users: dict[str, User],
                companies: dict[str, Company]) -> dict[str, int]:
        """Equal facts keep their id across reloads; changed facts get a new one."""
        if len(self._facts) > 1_000_000:
            self._facts = {}  # ids keep counting up, so old cache keys can never match
        facts = {}
        for name, user in users.items():
            key = (user, companies.get(user.company or ""))
            found = self._facts.get(key)
            if found is None:
                found = self._facts[key] = next(_FACT_IDS)
            facts[name] = found
        return facts

    async def changed(self) -> None:
        """After a committed write: this process's snapshot, then every other's (pushed)."""
        await self.reload()
        if self.board is not None:
            await self.board.publish(self.snapshot.version)

    async def catch_up(self) -> None:
        """Before an impersonated request is decided: never on a snapshot older than the
        newest change announced by any worker or replica."""
        if self.board is None:
            return
        latest = await self.board.latest()
        if latest <= self.snapshot.version:
            return
        async with self._reloading:  # one reload for every request that found it stale
            if latest > self.snapshot.version:
                await self.reload()

    async def reload_to(self, version: int) -> None:
        """A pushed change: reload unless the snapshot has it already."""
        if version > self.snapshot.version:
            async with self._reloading:
                if version > self.snapshot.version:
                    await self.reload()

    async def refresh_if_changed(self) -> bool:
        if await self.version() != self.snapshot.version:
            await self.reload()
            return True
        return False

    async def bump(self, db: AsyncSession) -> None:
        """Call inside a write transaction: every replica sees the version move and reloads."""
        row = await db.get(MetaRow, "version")
        if row is None:
            db.add(MetaRow(key="version", value=1))
        else:
            await db.execute(update(MetaRow).where(MetaRow.key == "version")
                             .values(value=MetaRow.value + 1))

    async def verify_password(self, username: str, password: str) -> User | None:
        """argon2 off the event loop; unknown users cost the same as known ones."""
        async with self.sessions() as db:
            row = await db.get(UserRow, username)
            stored = row.password_hash if row and row.active else None
        ok = await asyncio.to_thread(verify, self.hasher, stored, password)
        if not (ok and stored and row):
            return None
        return self.snapshot.user(username) or to_user(row)

    async def set_language(self, username: str, language: str) -> None:
        """The person's own choice for the gateway's pages; every worker sees it."""
        async with self.sessions.begin() as db:
            await db.execute(update(UserRow).where(UserRow.username == username)
                             .values(language=language))
            await self.bump(db)
        await self.changed()

    async def set_password(self, username: str, password: str) -> None:
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        async with self.sessions.begin() as db:
            await db.execute(update(UserRow).where(UserRow.username == username)
                             .values(password_hash=hashed))


MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (tests/integration/test_directory.py checks it is): a
# database already there starts without importing Alembic (~10 MB of every worker).
HEAD_REVISION = "0004"


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest Alembic revision (same code on SQLite and PostgreSQL)."""
    if schema_revision(connection) == HEAD_REVISION:
        return
    # Alembic (megabytes in every worker) only when the schema must move
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    log.info("directory schema upgraded to revision %s", HEAD_REVISION)


MIGRATION_LOCK = 0x637372677701  # PostgreSQL advisory lock key of this schema's setup


@contextlib.asynccontextmanager
async def setup_lock(engine: AsyncEngine, url: str) -> AsyncIterator[None]:
    """One process at a time migrates, creates the built-in groups and seeds: workers and
    replicas starting together on a new database would otherwise all try, and all but one
    die on a unique violation. PostgreSQL: an advisory lock on a connection of its own;
    SQLite: an exclusive lock on a file beside the database."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": MIGRATION_LOCK})
                await conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(database + ".lock", "a+b") as handle:
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def schema_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
