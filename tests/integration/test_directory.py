"""The directory on both databases: same code on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.directory import Directory
from gateway.directory.service import DirectoryService, ValidationFailed
from tests.support.gateway import ROOT
from tests.support.services import postgres_url

SEED = ROOT / "config" / "directory.yaml"


@pytest.fixture(params=["sqlite", "postgres"])
async def directory(request, tmp_path: Path) -> AsyncIterator[Directory]:
    """A seeded directory on SQLite or on a PostgreSQL database of this test's own."""
    if request.param == "sqlite":
        found = await Directory.open(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}", SEED)
        yield found
        await found.close()
        return
    urls = postgres_url()
    url = await urls.__anext__()
    found = await Directory.open(url, SEED)
    yield found
    await found.close()
    await urls.aclose()


async def test_seed_and_snapshot(directory: Directory) -> None:
    """The demo directory loads with groups, companies and assignments."""
    snap = directory.snapshot
    assert set(snap.companies) == {"acme", "globex", "initech"}
    assert snap.user("csr-carol").assigned_companies == ("acme", "globex")
    assert snap.user("prospect-pat").kind == "prospect"
    assert await directory.verify_password("buyer-bob", "demo-pass-1") is not None
    assert await directory.verify_password("buyer-bob", "wrong") is None
    assert await directory.verify_password("nobody-at-all", "demo-pass-1") is None


async def test_changes_move_the_version_for_every_replica(directory: Directory) -> None:
    """A change through one replica is seen by another at its next refresh."""
    other = Directory(directory.engine)
    await other.reload()
    await DirectoryService(directory).unassign("acme", "csr-carol")
    assert await other.refresh_if_changed() is True
    assert other.snapshot.user("csr-carol").assigned_companies == ("globex",)
    assert await other.refresh_if_changed() is False


async def test_rules_hold_on_this_database(directory: Directory) -> None:
    """Unique usernames, the undeletable CSR group and validation, on either database."""
    service = DirectoryService(directory)
    await service.create_user({"username": "buyer-zoe", "email": "z@acme.example",
                               "company": "acme", "groups": ["Buyer"]}, None)
    with pytest.raises(ValidationFailed):
        await service.create_user({"username": "buyer-zoe", "email": "z@acme.example"}, None)
    with pytest.raises(ValidationFailed):
        await service.delete_group("CSR")
    before, after = await service.assign("initech", ["csr-carol"], replace=False)
    assert "csr-carol" in after["csrs"] and "csr-carol" not in before["csrs"]
    _, company = await service.save_company({"id": "acme", "no_impersonation": True},
                                            creating=False)
    assert company["no_impersonation"] is True
    assert directory.snapshot.companies["acme"].no_impersonation is True


async def test_migrations_match_the_models(directory: Directory) -> None:
    """The Alembic revisions build exactly the schema the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gateway.directory.models import Base

    def diff(connection):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with directory.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


def test_head_revision_constant_is_the_newest_migration() -> None:
    """Starts skip Alembic when the schema is at HEAD_REVISION: it must be the real head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from gateway.directory.store import HEAD_REVISION, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


async def test_a_current_database_starts_without_alembic(tmp_path) -> None:
    """The second start of the same database finds it current and runs no migration."""
    import subprocess
    import sys

    url = f"sqlite+aiosqlite:///{tmp_path}/d.sqlite3"
    code = ("import asyncio, sys\n"
            "from gateway.directory import Directory\n"
            f"async def main():\n    d = await Directory.open({url!r})\n    await d.close()\n"
            "asyncio.run(main())\n"
            "print('alembic' in sys.modules)\n")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (first.stdout.strip(), second.stdout.strip()) == ("True", "False"), \
        first.stderr + second.stderr
